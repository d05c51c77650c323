using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trellis.Cli.Workload;

/// <summary>A port to serve: number and protocol, as written on the command line ("80", "53/udp").</summary>
internal readonly record struct ServePort(int Port, ProtocolType Protocol, string ProtocolName)
{
    public static ServePort Parse(string text)
    {
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        string num = slash < 0 ? text : text[..slash];
        string proto = slash < 0 ? "tcp" : text[(slash + 1)..].ToLowerInvariant();
        if (!int.TryParse(num, out int port) || port is < 1 or > 65535)
        {
            throw new UsageException($"--port: '{text}' is not a port number 1-65535");
        }
        return proto switch
        {
            "tcp" => new ServePort(port, ProtocolType.Tcp, proto),
            "udp" => new ServePort(port, ProtocolType.Udp, proto),
            "sctp" => new ServePort(port, ProtocolType.Unknown, proto),
            _ => throw new UsageException($"--port: protocol '{proto}' in '{text}' is not tcp, udp or sctp"),
        };
    }
}

/// <summary>
/// The test workload of every pod without a command, like agnhost's serve-hostname: each TCP
/// connection gets the name and a newline, each UDP datagram is answered with the name.
/// </summary>
internal static class ServeHostname
{
    public static async Task<int> RunAsync(string name, IReadOnlyList<ServePort> ports, bool reportClient, CancellationToken ct)
    {
        // With reportClient, a second line names the peer as this socket saw it — after any DNAT and
        // masquerade on the way — which is how tests see whether the client's address was preserved.
        Func<EndPoint?, byte[]> tcpAnswer = reportClient ? ep => Encoding.UTF8.GetBytes($"{name}\n{Peer(ep)}\n") : _ => Encoding.UTF8.GetBytes(name + "\n");
        Func<EndPoint?, byte[]> udpAnswer = reportClient ? ep => Encoding.UTF8.GetBytes($"{name}\n{Peer(ep)}") : _ => Encoding.UTF8.GetBytes(name);
        var tasks = new List<Task>();
        foreach (var p in ports)
        {
            if (p.Protocol == ProtocolType.Unknown)
            {
                // This kernel has no SCTP sockets (DESIGN.md §7): the port is declared, not served.
                await Console.Error.WriteLineAsync($"serve-hostname: skipping {p.Port}/sctp: SCTP sockets are not available on this kernel").ConfigureAwait(false);
                continue;
            }
            tasks.Add(p.Protocol == ProtocolType.Tcp ? ServeTcpAsync(p.Port, tcpAnswer, ct) : ServeUdpAsync(p.Port, udpAnswer, ct));
        }
        // Binding happens synchronously at the start of each server task: a port that cannot be
        // bound fails now, before "serving" is claimed.
        if (tasks.FirstOrDefault(t => t.IsFaulted) is { } failed)
        {
            await Console.Error.WriteLineAsync($"serve-hostname: {failed.Exception!.InnerException!.Message}").ConfigureAwait(false);
            return 1;
        }
        await Console.Error.WriteLineAsync($"serve-hostname: {name} serving {string.Join(' ', ports.Select(p => $"{p.Port}/{p.ProtocolName}"))}").ConfigureAwait(false);
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
        return 0;
    }

    private static Socket Bind(int port, SocketType type, ProtocolType proto)
    {
        // Dual-stack so pods with IPv6 addresses are served by the same listener.
        var s = new Socket(AddressFamily.InterNetworkV6, type, proto) { DualMode = true };
        s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        s.Bind(new IPEndPoint(IPAddress.IPv6Any, port));
        return s;
    }

    /// <summary>"10.244.1.5:34567": IPv4 peers of the dual-stack socket without their ::ffff: prefix.</summary>
    private static string Peer(EndPoint? ep) => ep is IPEndPoint ip
        ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address) + ":" + ip.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)
        : "?";

    private static async Task ServeTcpAsync(int port, Func<EndPoint?, byte[]> answer, CancellationToken ct)
    {
        using var listener = Bind(port, SocketType.Stream, ProtocolType.Tcp);
        listener.Listen(512);
        while (!ct.IsCancellationRequested)
        {
            var conn = await listener.AcceptAsync(ct).ConfigureAwait(false);
            _ = Task.Run(async () =>
            {
                using (conn)
                {
                    try
                    {
                        await conn.SendAsync(answer(conn.RemoteEndPoint), SocketFlags.None, ct).ConfigureAwait(false);
                        conn.Shutdown(SocketShutdown.Both);
                    }
                    catch (SocketException)
                    {
                        // The client went away first; nothing to serve.
                    }
                }
            }, ct);
        }
    }

    private static async Task ServeUdpAsync(int port, Func<EndPoint?, byte[]> answer, CancellationToken ct)
    {
        using var socket = Bind(port, SocketType.Dgram, ProtocolType.Udp);
        var buf = new byte[2048];
        EndPoint any = new IPEndPoint(IPAddress.IPv6Any, 0);
        while (!ct.IsCancellationRequested)
        {
            var r = await socket.ReceiveFromAsync(buf, SocketFlags.None, any, ct).ConfigureAwait(false);
            try
            {
                await socket.SendToAsync(answer(r.RemoteEndPoint), SocketFlags.None, r.RemoteEndPoint, ct).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                // An unreachable client must not stop the server.
            }
        }
    }
}
