using System.Net;
using System.Net.Sockets;

namespace Trellis.Dns.Tests.Support;

/// <summary>A stub resolver for tests: one question over UDP or TCP, the reply parsed.</summary>
internal sealed class DnsClient(IPEndPoint server)
{
    private static int s_id;

    public static byte[] Query(string name, ushort type, bool edns = true, ushort udpSize = 1232, ushort? id = null, ushort cls = DnsClass.IN)
    {
        var buf = new byte[600];
        var w = new DnsWriter(buf, new int[16]);
        w.WriteHeader(id ?? (ushort)Interlocked.Increment(ref s_id), DnsFlags.RD, DnsOpcode.Query, 0);
        w.WriteQuestion(name, type, cls);
        if (edns)
        {
            w.WriteOpt(udpSize, 0, 0, false);
        }
        w.SetCounts(1, 0, 0, edns ? 1 : 0);
        return buf[..w.Position];
    }

    public Task<DnsMessage> UdpAsync(string name, DnsRecordType type, bool edns = true, ushort udpSize = 1232) =>
        UdpRawAsync(Query(name, (ushort)type, edns, udpSize)).ContinueWith(t => DnsMessage.Parse(t.Result), TaskScheduler.Default);

    public async Task<byte[]> UdpRawAsync(byte[] query, int timeoutMs = 3000)
    {
        using var udp = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        await udp.ConnectAsync(server);
        await udp.SendAsync(query, SocketFlags.None);
        var buf = new byte[65535];
        using var cts = new CancellationTokenSource(timeoutMs);
        int n = await udp.ReceiveAsync(buf, SocketFlags.None, cts.Token);
        return buf[..n];
    }

    public async Task<DnsMessage> TcpAsync(string name, DnsRecordType type, bool edns = true)
    {
        var q = Query(name, (ushort)type, edns);
        using var tcp = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await tcp.ConnectAsync(server);
        var framed = new byte[q.Length + 2];
        framed[0] = (byte)(q.Length >> 8);
        framed[1] = (byte)q.Length;
        q.CopyTo(framed, 2);
        await tcp.SendAsync(framed, SocketFlags.None);
        using var cts = new CancellationTokenSource(3000);
        var len = new byte[2];
        await ReadAsync(tcp, len, cts.Token);
        var reply = new byte[(len[0] << 8) | len[1]];
        await ReadAsync(tcp, reply, cts.Token);
        return DnsMessage.Parse(reply);
    }

    private static async Task ReadAsync(Socket s, Memory<byte> buf, CancellationToken ct)
    {
        int read = 0;
        while (read < buf.Length)
        {
            int n = await s.ReceiveAsync(buf[read..], SocketFlags.None, ct);
            if (n == 0)
            {
                throw new IOException("connection closed");
            }
            read += n;
        }
    }
}
