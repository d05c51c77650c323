using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trellis.DnsServer;

/// <summary>
/// /ready (200 once the first snapshot is loaded, else 503), /healthz and /metrics over a minimal HTTP/1.1:
/// one request per connection. Small enough to read in full, and no web framework in a NativeAOT binary.
/// </summary>
internal sealed class HealthServer : IDisposable
{
    private readonly Socket _listener;
    private readonly DnsMetrics _metrics;
    private readonly TextWriter _log;

    public HealthServer(IPEndPoint endPoint, DnsMetrics metrics, TextWriter log)
    {
        _metrics = metrics;
        _log = log;
        _listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(endPoint);
        _listener.Listen(64);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            _ = ServeAsync(client, ct);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken ct)
    {
        using (client)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                var buffer = new byte[8192];
                int read = 0;
                while (read < buffer.Length)
                {
                    int n = await client.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }
                    read += n;
                    if (buffer.AsSpan(0, read).IndexOf("\r\n\r\n"u8) >= 0)
                    {
                        break;
                    }
                }
                string head = Encoding.ASCII.GetString(buffer, 0, read);
                string[] requestLine = head.Split("\r\n", 2)[0].Split(' ');
                string path = requestLine.Length >= 2 ? requestLine[1] : "";
                (int code, string body, string type) = path switch
                {
                    "/ready" => _metrics.Ready ? (200, "ok\n", "text/plain") : (503, "no snapshot loaded yet\n", "text/plain"),
                    "/healthz" => (200, "ok\n", "text/plain"),
                    "/metrics" => (200, _metrics.Render(), "text/plain; version=0.0.4"),
                    _ => (404, "not found\n", "text/plain"),
                };
                string reason = code switch { 200 => "OK", 503 => "Service Unavailable", _ => "Not Found" };
                byte[] bodyBytes = Encoding.UTF8.GetBytes(body);
                string header = $"HTTP/1.1 {code} {reason}\r\nContent-Type: {type}\r\nContent-Length: {bodyBytes.Length}\r\nConnection: close\r\n\r\n";
                await client.SendAsync(Encoding.ASCII.GetBytes(header), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                await client.SendAsync(bodyBytes, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                _log.WriteLine($"trellis-dns: health: {e.Message}");
            }
        }
    }

    public void Dispose() => _listener.Dispose();
}
