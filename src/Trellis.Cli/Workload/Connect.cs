using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trellis.Cli.Workload;

/// <summary>
/// One fresh connection to HOST:PORT; prints the server's answer. Exit codes are the contract
/// of DESIGN.md §6: 0 answered, 1 refused or unreachable, 3 timed out.
/// </summary>
internal static class Connect
{
    public const int Answered = 0;
    public const int Refused = 1;
    public const int TimedOut = 3;

    public static async Task<int> RunAsync(string target, string protocol, TimeSpan timeout, TextWriter stdout, TextWriter stderr, int sourcePort = 0)
    {
        if (sourcePort is < 0 or > 65535)
        {
            throw new UsageException($"--source-port: {sourcePort} is not a port number 0-65535");
        }
        var (host, port) = ParseTarget(target);
        IPAddress address;
        if (!IPAddress.TryParse(host, out address!))
        {
            try
            {
                var addrs = await System.Net.Dns.GetHostAddressesAsync(host).ConfigureAwait(false);
                address = addrs.First();
            }
            catch (SocketException e)
            {
                await stderr.WriteLineAsync($"connect: cannot resolve '{host}': {e.Message}").ConfigureAwait(false);
                return Refused;
            }
        }
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            string answer = protocol switch
            {
                "tcp" => await TcpAsync(new IPEndPoint(address, port), sourcePort, cts.Token).ConfigureAwait(false),
                "udp" => await UdpAsync(new IPEndPoint(address, port), sourcePort, cts.Token).ConfigureAwait(false),
                _ => throw new UsageException($"--protocol: '{protocol}' is not tcp or udp"),
            };
            await stdout.WriteAsync(answer).ConfigureAwait(false);
            return Answered;
        }
        catch (OperationCanceledException)
        {
            await stderr.WriteLineAsync($"connect: {target}/{protocol}: timed out after {timeout.TotalSeconds:0.###}s").ConfigureAwait(false);
            return TimedOut;
        }
        catch (SocketException e)
        {
            await stderr.WriteLineAsync($"connect: {target}/{protocol}: {e.SocketErrorCode}: {e.Message}").ConfigureAwait(false);
            return e.SocketErrorCode == SocketError.TimedOut ? TimedOut : Refused;
        }
    }

    public static (string Host, int Port) ParseTarget(string target)
    {
        int colon = target.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(target.AsSpan(colon + 1), out int port) || port is < 1 or > 65535)
        {
            throw new UsageException($"target: '{target}' is not HOST:PORT");
        }
        string host = target[..colon].Trim('[', ']');
        return (host, port);
    }

    private static Socket Open(IPEndPoint ep, SocketType type, ProtocolType proto, int sourcePort)
    {
        var s = new Socket(ep.AddressFamily, type, proto);
        if (sourcePort > 0)
        {
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            s.Bind(new IPEndPoint(ep.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, sourcePort));
        }
        return s;
    }

    private static async Task<string> TcpAsync(IPEndPoint ep, int sourcePort, CancellationToken ct)
    {
        using var s = Open(ep, SocketType.Stream, ProtocolType.Tcp, sourcePort);
        await s.ConnectAsync(ep, ct).ConfigureAwait(false);
        var sb = new StringBuilder();
        var buf = new byte[4096];
        int n;
        while ((n = await s.ReceiveAsync(buf, SocketFlags.None, ct).ConfigureAwait(false)) > 0)
        {
            sb.Append(Encoding.UTF8.GetString(buf, 0, n));
        }
        return sb.ToString();
    }

    private static async Task<string> UdpAsync(IPEndPoint ep, int sourcePort, CancellationToken ct)
    {
        using var s = Open(ep, SocketType.Dgram, ProtocolType.Udp, sourcePort);
        // A connected UDP socket turns an ICMP port-unreachable into ECONNREFUSED on receive.
        await s.ConnectAsync(ep, ct).ConfigureAwait(false);
        await s.SendAsync("hello\n"u8.ToArray(), SocketFlags.None, ct).ConfigureAwait(false);
        var buf = new byte[2048];
        int n = await s.ReceiveAsync(buf, SocketFlags.None, ct).ConfigureAwait(false);
        return Encoding.UTF8.GetString(buf, 0, n) + "\n";
    }
}

/// <summary>A command-line mistake: exit code 2, message naming the flag.</summary>
internal sealed class UsageException : Exception
{
    public UsageException(string message) : base(message) { }

    public UsageException() { }

    public UsageException(string message, Exception inner) : base(message, inner) { }
}
