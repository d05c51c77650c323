using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trellis.Agent.Proxy;

/// <summary>
/// kube-proxy's service health checks: for every Service with <c>externalTrafficPolicy: Local</c> and a
/// <c>healthCheckNodePort</c>, an HTTP server on that port of the node answers 200 while this node has a local
/// endpoint of the Service and 503 when it has none — what a cloud load balancer polls to send traffic only to
/// nodes that will not drop it. Body and headers as kube-proxy writes them:
/// <c>{"service":{"namespace":"ns","name":"svc"},"localEndpoints":1,"serviceProxyHealthy":true}</c>.
/// Counts are swapped in as one immutable map per sync; request handling reads it without locks.
/// </summary>
public sealed class HealthCheckServer(TextWriter log) : IDisposable
{
    private readonly ConcurrentDictionary<int, (TcpListener Listener, CancellationTokenSource Stop)> _listeners = new();
    private volatile IReadOnlyDictionary<int, (string Namespace, string Name, int LocalEndpoints)> _services =
        new Dictionary<int, (string, string, int)>();

    /// <summary>The ports now served, for tests and logs.</summary>
    public IReadOnlyCollection<int> Ports => _listeners.Keys.ToList();

    /// <summary>Serve exactly these ports, with these counts. A port that cannot be bound is logged and retried next sync.</summary>
    public void Update(IReadOnlyDictionary<int, (string Namespace, string Name, int LocalEndpoints)> services)
    {
        _services = services;
        foreach (var port in _listeners.Keys.Where(p => !services.ContainsKey(p)).ToList())
        {
            if (_listeners.TryRemove(port, out var l))
            {
                l.Stop.Cancel();
                l.Listener.Stop();
                l.Stop.Dispose();
            }
        }
        foreach (var port in services.Keys.Where(p => !_listeners.ContainsKey(p)))
        {
            var listener = new TcpListener(IPAddress.Any, port);
            try
            {
                listener.Start();
            }
            catch (SocketException e)
            {
                log.WriteLine($"healthCheckNodePort {port}: cannot listen: {e.Message}");
                listener.Dispose();
                continue;
            }
            var stop = new CancellationTokenSource();
            _listeners[port] = (listener, stop);
            _ = AcceptLoopAsync(port, listener, stop.Token);
        }
    }

    private async Task AcceptLoopAsync(int port, TcpListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return; // stopped
            }
            _ = ServeAsync(port, client);
        }
    }

    private async Task ServeAsync(int port, Socket client)
    {
        using var _ = client;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            // Read the request head (we answer every path alike, as kube-proxy does), then reply and close.
            var buffer = new byte[4096];
            int total = 0;
            while (total < buffer.Length)
            {
                int n = await client.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }
                total += n;
                if (buffer.AsSpan(0, total).IndexOf("\r\n\r\n"u8) >= 0)
                {
                    break;
                }
            }
            await client.SendAsync(Response(port), SocketFlags.None, timeout.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException)
        {
            // a client that hangs up or stalls gets nothing more
        }
    }

    /// <summary>The HTTP response for a port, from the current counts.</summary>
    public byte[] Response(int port)
    {
        bool known = _services.TryGetValue(port, out var s);
        int local = known ? s.LocalEndpoints : 0;
        string body = known
            ? string.Create(CultureInfo.InvariantCulture, $"{{\"service\":{{\"namespace\":\"{s.Namespace}\",\"name\":\"{s.Name}\"}},\"localEndpoints\":{local},\"serviceProxyHealthy\":true}}")
            : "{}";
        string status = local > 0 ? "200 OK" : "503 Service Unavailable";
        string head = string.Create(CultureInfo.InvariantCulture,
            $"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: {local}\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n");
        return Encoding.UTF8.GetBytes(head + body);
    }

    public void Dispose()
    {
        foreach (var port in _listeners.Keys.ToList())
        {
            if (_listeners.TryRemove(port, out var l))
            {
                l.Stop.Cancel();
                l.Listener.Stop();
                l.Stop.Dispose();
            }
        }
    }
}
