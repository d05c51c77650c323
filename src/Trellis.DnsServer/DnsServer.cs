using System.Net;
using System.Net.Sockets;
using Trellis.Core.Dns;
using Trellis.Store;

namespace Trellis.DnsServer;

/// <summary>
/// trellis-dns as a library: the zone watcher, UDP and TCP listeners on one address and port, and the
/// optional health/metrics endpoint. Tests start it in-process; Program starts it from the command line.
/// </summary>
public sealed class DnsServer : IAsyncDisposable
{
    private const int MaxTcpConnections = 512;

    // Queries waiting on an upstream at once over UDP; beyond this they are dropped (the client retries),
    // so a dead or slow upstream cannot pile up unbounded tasks and buffers.
    private const int MaxPendingForwards = 1024;
    private static readonly TimeSpan s_tcpIdle = TimeSpan.FromSeconds(10); // RFC 7766 §6.2.3 suggests seconds, not minutes

    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly HealthServer? _health;
    // --metrics: the same endpoints on a second address, as CoreDNS serves Prometheus on :9153 apart from health on :8080.
    private readonly HealthServer? _metricsServer;
    private readonly TextWriter _log;
    private int _tcpConnections;
    private int _pendingForwards;

    private DnsServer(DnsServerOptions options, IClusterStore store, TextWriter log)
    {
        _log = log;
        Metrics = new DnsMetrics();
        Watcher = new ZoneWatcher(store, options.Zone, Metrics, log);
        Forwarder = options.Upstreams.Count > 0 ? new Forwarder(options.Upstreams, options.UpstreamTimeout, options.CacheEntries, Metrics) : null;
        Handler = new QueryHandler(() => Watcher.Current, Forwarder, Metrics);
        (_udp, _tcp) = Bind(options.Listen);
        if (options.Health is { } h)
        {
            _health = new HealthServer(h, Metrics, log);
        }
        if (options.Metrics is { } m)
        {
            _metricsServer = new HealthServer(m, Metrics, log);
        }
    }

    public DnsMetrics Metrics { get; }

    public ZoneWatcher Watcher { get; }

    public Forwarder? Forwarder { get; }

    public QueryHandler Handler { get; }

    public IPEndPoint UdpEndPoint => (IPEndPoint)_udp.LocalEndPoint!;

    public IPEndPoint TcpEndPoint => (IPEndPoint)_tcp.LocalEndPoint!;

    public IPEndPoint? HealthEndPoint => _health?.EndPoint;

    public DnsZone Zone => Watcher.Current;

    /// <summary>Binds and starts serving (answers come from an empty zone until <see cref="ZoneWatcher.Ready"/>).</summary>
    public static DnsServer Start(DnsServerOptions options, IClusterStore store, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(store);
        var server = new DnsServer(options, store, log ?? TextWriter.Null);
        server.Run();
        return server;
    }

    private void Run()
    {
        var ct = _stop.Token;
        _tasks.Add(Task.Run(() => Watcher.RunAsync(ct), ct));
        // One receive loop per core (at least two) on the same socket: the kernel hands each datagram to one waiter.
        for (int i = 0; i < Math.Max(2, Environment.ProcessorCount); i++)
        {
            _tasks.Add(Task.Run(() => UdpLoopAsync(ct), ct));
        }
        _tasks.Add(Task.Run(() => TcpAcceptLoopAsync(ct), ct));
        if (_health is not null)
        {
            _tasks.Add(Task.Run(() => _health.RunAsync(ct), ct));
        }
        if (_metricsServer is not null)
        {
            _tasks.Add(Task.Run(() => _metricsServer.RunAsync(ct), ct));
        }
    }

    private static (Socket Udp, Socket Tcp) Bind(IPEndPoint listen)
    {
        // Port 0 (tests): take the UDP port the kernel picks and bind TCP to the same number, retrying on a clash.
        for (int attempt = 0; ; attempt++)
        {
            var udp = new Socket(listen.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            var tcp = new Socket(listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                udp.Bind(listen);
                tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                tcp.Bind(new IPEndPoint(listen.Address, ((IPEndPoint)udp.LocalEndPoint!).Port));
                tcp.Listen(512);
                return (udp, tcp);
            }
            catch (SocketException) when (listen.Port == 0 && attempt < 20)
            {
                udp.Dispose();
                tcp.Dispose();
            }
            catch
            {
                udp.Dispose();
                tcp.Dispose();
                throw;
            }
        }
    }

    private async Task UdpLoopAsync(CancellationToken ct)
    {
        var request = new byte[65535];
        var response = new byte[4096];
        var remote = new SocketAddress(_udp.AddressFamily);
        while (!ct.IsCancellationRequested)
        {
            int n;
            try
            {
                n = await _udp.ReceiveFromAsync(request, SocketFlags.None, remote, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue; // an ICMP error from an earlier reply, or an oversized datagram: nothing to answer
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            int length = Handler.TryAnswer(request.AsSpan(0, n), response, tcp: false, out bool needsUpstream);
            if (needsUpstream)
            {
                if (Interlocked.Increment(ref _pendingForwards) > MaxPendingForwards)
                {
                    Interlocked.Decrement(ref _pendingForwards);
                    Metrics.Drop();
                    continue;
                }
                // The upstream round trip must not stall this loop: copy what it needs and carry on.
                var copy = request.AsSpan(0, n).ToArray();
                var to = new SocketAddress(remote.Family, remote.Size);
                remote.Buffer.CopyTo(to.Buffer);
                _ = ForwardUdpAsync(copy, to, ct);
                continue;
            }
            if (length > 0)
            {
                await SendUdpAsync(response.AsMemory(0, length), remote, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task ForwardUdpAsync(byte[] request, SocketAddress remote, CancellationToken ct)
    {
        try
        {
            var response = new byte[4096];
            int length = await Handler.AnswerAsync(request, response, tcp: false, ct).ConfigureAwait(false);
            if (length > 0)
            {
                await SendUdpAsync(response.AsMemory(0, length), remote, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            Interlocked.Decrement(ref _pendingForwards);
        }
    }

    private async ValueTask SendUdpAsync(ReadOnlyMemory<byte> data, SocketAddress remote, CancellationToken ct)
    {
        try
        {
            await _udp.SendToAsync(data, SocketFlags.None, remote, ct).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            // A client that went away, or a full socket buffer under load: UDP is lossy, the client retries.
            if (e.SocketErrorCode is not (SocketError.ConnectionRefused or SocketError.NoBufferSpaceAvailable or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.AccessDenied))
            {
                _log.WriteLine($"trellis-dns: udp send: {e.Message}");
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private async Task TcpAcceptLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _tcp.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            if (Interlocked.Increment(ref _tcpConnections) > MaxTcpConnections)
            {
                Interlocked.Decrement(ref _tcpConnections);
                client.Dispose();
                continue;
            }
            _ = ServeTcpAsync(client, ct);
        }
    }

    /// <summary>RFC 7766: length-prefixed messages, several per connection, answered in order; idle connections are closed.</summary>
    private async Task ServeTcpAsync(Socket client, CancellationToken ct)
    {
        var length = new byte[2];
        var request = new byte[65535];
        var response = new byte[65537];
        try
        {
            using (client)
            {
                while (!ct.IsCancellationRequested)
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    idle.CancelAfter(s_tcpIdle);
                    if (!await ReadExactlyAsync(client, length, idle.Token).ConfigureAwait(false))
                    {
                        return;
                    }
                    int n = (length[0] << 8) | length[1];
                    if (n == 0 || !await ReadExactlyAsync(client, request.AsMemory(0, n), idle.Token).ConfigureAwait(false))
                    {
                        return;
                    }
                    int m = await Handler.AnswerAsync(request.AsMemory(0, n), response.AsMemory(2), tcp: true, ct).ConfigureAwait(false);
                    if (m == 0)
                    {
                        return; // a packet we drop (not a query): end the connection rather than leave the client waiting
                    }
                    response[0] = (byte)(m >> 8);
                    response[1] = (byte)m;
                    await client.SendAsync(response.AsMemory(0, m + 2), SocketFlags.None, ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client closed, reset or idled out; nothing to report.
        }
        finally
        {
            Interlocked.Decrement(ref _tcpConnections);
        }
    }

    private static async Task<bool> ReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer[read..], SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                return false;
            }
            read += n;
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _udp.Dispose();
        _tcp.Dispose();
        _health?.Dispose();
        _metricsServer?.Dispose();
        try
        {
            await Task.WhenAll(_tasks).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or ObjectDisposedException or SocketException)
        {
        }
        _stop.Dispose();
    }
}
