using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Trellis.Dns;

namespace Trellis.Cli.Lab;

/// <summary>
/// The lab's "internet resolver": a small authoritative server for the zone <c>test</c> on the outside host's
/// address (port 53, UDP and TCP) in the underlay netns. The cluster DNS pods forward names outside the
/// cluster domain here, and pods with dnsPolicy Default use it directly, so outside resolution is real and
/// nothing ever reaches the host's resolvers (DESIGN.md §5).
/// </summary>
public static class LabDnsStub
{
    /// <summary>An address in TEST-NET-1 (RFC 5737) for a name that is not the outside host.</summary>
    public static readonly IPAddress ExampleAddress = IPAddress.Parse("192.0.2.80");

    public static StaticZone Zone(LabState lab)
    {
        ArgumentNullException.ThrowIfNull(lab);
        var outside = IPAddress.Parse(lab.OutsideIp);
        return new StaticZone("test",
        [
            new("outside.test", outside),
            new("example.test", ExampleAddress),
            new("www.example.test", ExampleAddress),
        ]);
    }

    public static async Task RunAsync(LabState lab, TextWriter log, CancellationToken ct)
    {
        var zone = Zone(lab);
        var endPoint = new IPEndPoint(IPAddress.Parse(lab.OutsideIp), 53);
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        udp.Bind(endPoint);
        tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        tcp.Bind(endPoint);
        tcp.Listen(64);
        log.WriteLine($"{Now()} dns-stub: serving zone {zone.Apex} on udp+tcp {endPoint}");
        await Task.WhenAll(UdpAsync(udp, zone, ct), TcpAsync(tcp, zone, ct)).ConfigureAwait(false);
    }

    private static async Task UdpAsync(Socket udp, StaticZone zone, CancellationToken ct)
    {
        var request = new byte[65535];
        var response = new byte[512];
        var remote = new SocketAddress(AddressFamily.InterNetwork);
        while (!ct.IsCancellationRequested)
        {
            int n;
            try
            {
                n = await udp.ReceiveFromAsync(request, SocketFlags.None, remote, ct).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                continue; // an ICMP error from an earlier reply's client
            }
            int len = zone.Respond(request.AsSpan(0, n), response);
            if (len > 0)
            {
                await udp.SendToAsync(response.AsMemory(0, len), SocketFlags.None, remote, ct).ConfigureAwait(false);
            }
        }
    }

    private static async Task TcpAsync(Socket listener, StaticZone zone, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var client = await listener.AcceptAsync(ct).ConfigureAwait(false);
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try
                    {
                        using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                        idle.CancelAfter(TimeSpan.FromSeconds(10));
                        var lenBuf = new byte[2];
                        var response = new byte[2 + 4096];
                        // RFC 7766: length-prefixed messages, several per connection.
                        while (await ReadExactlyAsync(client, lenBuf, idle.Token).ConfigureAwait(false))
                        {
                            var request = new byte[BinaryPrimitives.ReadUInt16BigEndian(lenBuf)];
                            if (!await ReadExactlyAsync(client, request, idle.Token).ConfigureAwait(false))
                            {
                                return;
                            }
                            int len = zone.Respond(request, response.AsSpan(2));
                            if (len == 0)
                            {
                                return;
                            }
                            BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)len);
                            await client.SendAsync(response.AsMemory(0, len + 2), SocketFlags.None, idle.Token).ConfigureAwait(false);
                        }
                    }
                    catch (Exception e) when (e is SocketException or OperationCanceledException)
                    {
                        // A client that went away or idled out: nothing to do.
                    }
                }
            }, CancellationToken.None);
        }
    }

    private static async Task<bool> ReadExactlyAsync(Socket s, byte[] buffer, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await s.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                return false;
            }
            read += n;
        }
        return true;
    }

    private static string Now() => DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
}
