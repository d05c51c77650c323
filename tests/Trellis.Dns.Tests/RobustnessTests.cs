using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CsCheck;
using Trellis.Dns.Tests.Support;

namespace Trellis.Dns.Tests;

/// <summary>
/// Random and mutated packets: the parsers only ever throw <see cref="DnsFormatException"/>, and the live
/// server answers each one with exactly the reply its handler computes (a valid message echoing the id) or
/// drops it — and still answers normally afterwards.
/// </summary>
public sealed class RobustnessTests
{
    private const int PacketCount = 100_000;

    /// <summary>Well-formed queries the mutations start from (names that hit, miss, compress and carry EDNS).</summary>
    private static readonly byte[][] s_seeds =
    [
        DnsClient.Query("web.default.svc.cluster.local.", 1),
        DnsClient.Query("_http._tcp.headless.default.svc.cluster.local.", 33, edns: false),
        DnsClient.Query("20.0.96.10.in-addr.arpa.", 12),
        DnsClient.Query("www.example.com.default.svc.cluster.local.", 28),
        DnsClient.Query("ext-in.default.svc.cluster.local.", 255),
        DnsClient.Query("10-244-1-5.default.pod.cluster.local.", 1),
        DnsClient.Query("cluster.local.", 6),
        // A packet with a compressed name in the additional section, for pointer mutations.
        [.. DnsClient.Query("a.cluster.local.", 1, edns: false)[..^0], 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4],
    ];

    internal static IEnumerable<byte[]> Packets(int count, int seed)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var p = s_seeds[rng.Next(s_seeds.Length)].ToArray();
            switch (rng.Next(9))
            {
                case 0: // pure noise of any length
                    var noise = new byte[rng.Next(0, 600)];
                    rng.NextBytes(noise);
                    yield return noise;
                    break;
                case 1: // truncated anywhere
                    yield return p[..rng.Next(0, p.Length)];
                    break;
                case 2: // a few flipped bytes
                    for (int k = rng.Next(1, 4); k > 0; k--)
                    {
                        p[rng.Next(p.Length)] = (byte)rng.Next(256);
                    }
                    yield return p;
                    break;
                case 3: // huge or wrong counts
                    p[4 + (2 * rng.Next(4))] = (byte)rng.Next(256);
                    p[5 + (2 * rng.Next(4))] = (byte)rng.Next(256);
                    yield return p;
                    break;
                case 4: // a bad label length inside the question name
                    if (p.Length > 13)
                    {
                        p[12 + rng.Next(Math.Min(20, p.Length - 12))] = (byte)rng.Next(64, 256);
                    }
                    yield return p;
                    break;
                case 5: // compression pointers to anywhere, including themselves and forwards (loops)
                    int at = 12 + rng.Next(Math.Max(1, p.Length - 13));
                    if (at + 1 < p.Length)
                    {
                        int target = rng.Next(3) == 0 ? at : rng.Next(p.Length + 4);
                        p[at] = (byte)(0xC0 | (target >> 8));
                        p[at + 1] = (byte)target;
                    }
                    yield return p;
                    break;
                case 6: // the QR bit, opcodes, rcodes and Z bits
                    p[2] = (byte)rng.Next(256);
                    p[3] = (byte)rng.Next(256);
                    yield return p;
                    break;
                case 7: // garbage appended
                    var tail = new byte[rng.Next(1, 64)];
                    rng.NextBytes(tail);
                    yield return [.. p, .. tail];
                    break;
                default: // the seed as it is (the server must keep answering good queries among the bad)
                    yield return p;
                    break;
            }
        }
    }

    [Fact]
    public void Parsers_reject_bad_packets_only_with_format_errors()
    {
        int parsed = 0, rejected = 0;
        foreach (var packet in Packets(PacketCount, seed: 1))
        {
            try
            {
                DnsMessage.Parse(packet);
                parsed++;
            }
            catch (DnsFormatException)
            {
                rejected++;
            }
            DnsRequest.TryParse(packet, out _, out _); // never throws
        }
        Assert.Equal(PacketCount, parsed + rejected);
        Assert.True(parsed > 1000 && rejected > 1000, $"parsed {parsed}, rejected {rejected}: the mix should exercise both");
    }

    [Fact]
    public void Written_names_and_records_round_trip() =>
        Gen.Select(
                Gen.String[Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-"], 1, 20].Array[1, 6],
                Gen.UInt,
                Gen.Int[0, 5])
            .Sample((labels, ttl, repeat) =>
            {
                string name = string.Join('.', labels) + ".";
                var buf = new byte[4096];
                var w = new DnsWriter(buf, new int[64]);
                w.WriteHeader(1, DnsFlags.QR, 0, 0);
                w.WriteQuestion(name, 1, 1);
                for (int i = 0; i < repeat; i++)
                {
                    // Repeated names, and names that repeat their own suffix, must compress without loops.
                    w.WriteNameRecord(name, DnsRecordType.CNAME, ttl, $"{labels[0]}.{name}");
                }
                w.SetCounts(1, repeat, 0, 0);
                var msg = DnsMessage.Parse(buf.AsSpan(0, w.Position));
                Assert.Equal(name, msg.Questions[0].Name);
                Assert.All(msg.Answers, a => Assert.Equal($"{name} {ttl} IN CNAME {labels[0]}.{name}", a.ToString()));
            }, iter: 2000);

    [Fact]
    public async Task The_live_server_answers_or_drops_every_bad_packet_and_keeps_serving()
    {
        await using var t = await TestServer.StartAsync();
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        await udp.ConnectAsync(t.Server.UdpEndPoint);
        var expected = new byte[4096];
        var received = new byte[65535];
        int answered = 0, dropped = 0;
        var sw = Stopwatch.StartNew();
        foreach (var packet in Packets(PacketCount, seed: 2))
        {
            int n = t.Server.Handler.TryAnswer(packet, expected, tcp: false, out bool upstream);
            Assert.False(upstream); // no upstreams configured: nothing may wait on one
            await udp.SendAsync(packet, SocketFlags.None);
            if (n == 0)
            {
                dropped++;
                continue;
            }
            using var cts = new CancellationTokenSource(2000);
            int m = await udp.ReceiveAsync(received, SocketFlags.None, cts.Token);
            // Same zone, same question: the live reply is byte for byte what the handler computes...
            Assert.True(expected.AsSpan(0, n).SequenceEqual(received.AsSpan(0, m)), $"packet {Convert.ToHexString(packet)}");
            // ...and a well-formed response to that id.
            var reply = DnsMessage.Parse(received.AsSpan(0, m));
            Assert.True(reply.IsResponse);
            Assert.Equal((packet[0] << 8) | packet[1], reply.Id);
            answered++;
        }
        Assert.Equal(PacketCount, answered + dropped);
        Assert.True(answered > 10_000 && dropped > 1000, $"answered {answered}, dropped {dropped}");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed}");
        var ok = await t.Client.UdpAsync("web.default.svc.cluster.local.", DnsRecordType.A);
        Assert.Equal("10.96.0.20", Assert.Single(ok.Answers).Data.ToString());
        var okTcp = await t.Client.TcpAsync("web.default.svc.cluster.local.", DnsRecordType.A);
        Assert.Single(okTcp.Answers);
    }

    [Fact]
    public async Task Bad_packets_over_tcp_get_formerr_or_close_the_connection()
    {
        await using var t = await TestServer.StartAsync();
        int handled = 0, answered = 0;
        var packets = Packets(300, seed: 3).Where(p => p.Length > 0).ToList();
        foreach (var packet in packets)
        {
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await tcp.ConnectAsync(t.Server.TcpEndPoint);
            await tcp.SendAsync(new byte[] { (byte)(packet.Length >> 8), (byte)packet.Length }.Concat(packet).ToArray(), SocketFlags.None);
            var buf = new byte[65537];
            using var cts = new CancellationTokenSource(2000);
            int read = 0, n;
            while ((n = await tcp.ReceiveAsync(buf.AsMemory(read), SocketFlags.None, cts.Token)) > 0)
            {
                read += n;
                if (read >= 2 && read >= 2 + ((buf[0] << 8) | buf[1]))
                {
                    break;
                }
            }
            if (read > 0)
            {
                Assert.True(DnsMessage.Parse(buf.AsSpan(2, read - 2)).IsResponse);
                answered++;
            }
            handled++;
        }
        Assert.Equal(packets.Count, handled);
        Assert.True(answered > 100, $"answered {answered} of {handled}");
    }
}
