using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trellis.Agent.Metrics;

/// <summary>
/// A minimal HTTP/1.1 endpoint serving Prometheus text on <c>GET /metrics</c> (any other path: 404). Written on a
/// TcpListener rather than HttpListener/Kestrel: trellisd is NativeAOT and one read-only page needs neither. Each
/// request gets a fresh page from the writers given (they read kernel counters on demand).
/// </summary>
public sealed class MetricsServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IReadOnlyList<Action<StringBuilder>> _writers;
    private readonly TextWriter _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public MetricsServer(IPEndPoint endpoint, IReadOnlyList<Action<StringBuilder>> writers, TextWriter log)
    {
        _writers = writers;
        _log = log;
        _listener = new TcpListener(endpoint);
        _listener.Start();
        _loop = Task.Run(() => AcceptLoopAsync(_stop.Token));
    }

    /// <summary>The bound endpoint (port 0 in the request picks a free one).</summary>
    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>"ADDR:PORT" (IPv4, or [IPv6]:PORT).</summary>
    public static bool TryParseEndpoint(string text, out IPEndPoint? endpoint) => IPEndPoint.TryParse(text, out endpoint) && endpoint.Port > 0;

    public string Render()
    {
        var w = new StringBuilder();
        foreach (var write in _writers)
        {
            write(w);
        }
        return w.ToString();
    }

    private async Task AcceptLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException && ct.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client, ct), ct);
        }
    }

    private async Task ServeAsync(TcpClient client, CancellationToken ct)
    {
        using (client)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                var stream = client.GetStream();
                using var reader = new StreamReader(stream, Encoding.ASCII, leaveOpen: true);
                string requestLine = await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false) ?? "";
                // Headers are read and ignored: the page is the same for every client.
                while (await reader.ReadLineAsync(timeout.Token).ConfigureAwait(false) is { Length: > 0 })
                {
                }
                var parts = requestLine.Split(' ');
                string path = parts.Length > 1 ? parts[1].Split('?')[0] : "";
                bool ok = parts.Length > 1 && parts[0] is "GET" or "HEAD" && path is "/metrics" or "/";
                string body = ok ? Render() : "not found: try /metrics\n";
                byte[] bytes = Encoding.UTF8.GetBytes(body);
                string head = string.Create(CultureInfo.InvariantCulture,
                    $"HTTP/1.1 {(ok ? "200 OK" : "404 Not Found")}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n");
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head), timeout.Token).ConfigureAwait(false);
                if (parts[0] != "HEAD")
                {
                    await stream.WriteAsync(bytes, timeout.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
                // a client that went away or stalled: nothing to do
            }
#pragma warning disable CA1031 // a broken writer must not take the agent down; it is logged once per request
            catch (Exception e)
            {
                _log.WriteLine($"metrics: {e.GetType().Name}: {e.Message}");
            }
#pragma warning restore CA1031
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
