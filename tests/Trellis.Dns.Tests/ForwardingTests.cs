using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Trellis.Dns.Tests.Support;

namespace Trellis.Dns.Tests;

/// <summary>A fake upstream on loopback answers every question with A 192.0.2.x (PTR: host.example.) and counts what it is asked.</summary>
public sealed class ForwardingTests : IAsyncLifetime
{
    private readonly FakeUpstream _upstream = new();
    private TestServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await TestServer.StartAsync(configure: o => o with { Upstreams = [_upstream.EndPoint], UpstreamTimeout = TimeSpan.FromSeconds(1) });

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _upstream.Dispose();
    }

    [Fact]
    public async Task Outside_names_are_forwarded_once_then_served_from_the_cache()
    {
        var first = await _server.Client.UdpAsync("www.Example.com.", DnsRecordType.A);
        Assert.Equal(DnsRcode.NoError, first.ResponseCode);
        Assert.Equal("www.Example.com.", first.Questions[0].Name); // the client's spelling comes back
        Assert.Equal("192.0.2.1", Assert.Single(first.Answers).Data.ToString());
        Assert.True((first.Flags & DnsFlags.RA) != 0);
        Assert.True((first.Flags & DnsFlags.AA) == 0);
        var second = await _server.Client.TcpAsync("www.example.com.", DnsRecordType.A);
        Assert.Equal("192.0.2.1", Assert.Single(second.Answers).Data.ToString());
        Assert.InRange(second.Answers[0].Ttl, 299u, 300u);
        Assert.Equal(1, _upstream.Asked("www.example.com."));
        Assert.Equal(1, _server.Server.Metrics.CacheHits);
    }

    [Fact]
    public async Task Negative_upstream_answers_are_cached_too()
    {
        var first = await _server.Client.UdpAsync("nxdomain.example.org.", DnsRecordType.A);
        Assert.Equal(DnsRcode.NXDomain, first.ResponseCode);
        Assert.Equal(DnsRecordType.SOA, Assert.Single(first.Authority).RecordType);
        await _server.Client.UdpAsync("nxdomain.example.org.", DnsRecordType.A);
        Assert.Equal(1, _upstream.Asked("nxdomain.example.org."));
    }

    [Fact]
    public async Task Cluster_names_and_their_search_expansions_are_never_forwarded()
    {
        Assert.Equal(DnsRcode.NoError, (await _server.Client.UdpAsync("web.default.svc.cluster.local.", DnsRecordType.A)).ResponseCode);
        Assert.Equal(DnsRcode.NXDomain, (await _server.Client.UdpAsync("nope.default.svc.cluster.local.", DnsRecordType.A)).ResponseCode);
        Assert.Equal(DnsRcode.NXDomain, (await _server.Client.UdpAsync("www.example.com.default.svc.cluster.local.", DnsRecordType.A)).ResponseCode);
        Assert.Equal(DnsRcode.NoError, (await _server.Client.UdpAsync("20.0.96.10.in-addr.arpa.", DnsRecordType.PTR)).ResponseCode);
        Assert.Equal(0, _upstream.Total);
    }

    [Fact]
    public async Task Reverse_lookups_of_addresses_the_cluster_does_not_own_are_forwarded()
    {
        var reply = await _server.Client.UdpAsync("8.8.8.8.in-addr.arpa.", DnsRecordType.PTR);
        Assert.Equal(DnsRcode.NoError, reply.ResponseCode);
        Assert.Equal("host.example.", Assert.Single(reply.Answers).Data.ToString());
        Assert.Equal(1, _upstream.Asked("8.8.8.8.in-addr.arpa."));
    }

    [Fact]
    public async Task ExternalName_targets_outside_the_cluster_are_resolved_upstream()
    {
        var reply = await _server.Client.UdpAsync("ext.default.svc.cluster.local.", DnsRecordType.A);
        Assert.Equal(
            ["ext.default.svc.cluster.local. 30 IN CNAME example.com.", "example.com. 300 IN A 192.0.2.1"],
            reply.Answers.Select(a => a.ToString()).ToArray());
        Assert.True((reply.Flags & DnsFlags.AA) != 0);
    }

    [Fact]
    public async Task A_dead_upstream_gives_servfail_not_a_hang()
    {
        using var dead = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        dead.Bind(new IPEndPoint(IPAddress.Loopback, 0)); // bound, never answers
        await using var t = await TestServer.StartAsync(configure: o => o with { Upstreams = [(IPEndPoint)dead.LocalEndPoint!], UpstreamTimeout = TimeSpan.FromMilliseconds(300) });
        var reply = await t.Client.UdpAsync("www.example.com.", DnsRecordType.A);
        Assert.Equal(DnsRcode.ServFail, reply.ResponseCode);
        Assert.Equal(DnsRcode.NoError, (await t.Client.UdpAsync("web.default.svc.cluster.local.", DnsRecordType.A)).ResponseCode);
    }

    [Fact]
    public async Task Truncated_upstream_replies_are_retried_over_tcp()
    {
        var reply = await _server.Client.TcpAsync("big.example.net.", DnsRecordType.A);
        Assert.Equal(60, reply.Answers.Length);
        Assert.Equal(1, _upstream.TcpQueries);
    }

    private sealed class FakeUpstream : IDisposable
    {
        private readonly Socket _udp;
        private readonly TcpListener _tcp;
        private readonly ConcurrentDictionary<string, int> _asked = new();
        private readonly CancellationTokenSource _stop = new();
        private int _tcpQueries;

        public FakeUpstream()
        {
            // One port for UDP and TCP: the kernel picks a free UDP port, but its TCP twin may be taken by
            // another process on this busy machine, so try again with a new pick (it failed once in CI).
            for (int attempt = 0; ; attempt++)
            {
                var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                var tcp = new TcpListener(IPAddress.Loopback, ((IPEndPoint)udp.LocalEndPoint!).Port);
                try
                {
                    tcp.Start();
                    _udp = udp;
                    _tcp = tcp;
                    break;
                }
                catch (SocketException) when (attempt < 50)
                {
                    udp.Dispose();
                }
            }
            _ = Task.Run(UdpLoop);
            _ = Task.Run(TcpLoop);
        }

        public IPEndPoint EndPoint => (IPEndPoint)_udp.LocalEndPoint!;

        public int Total => _asked.Values.Sum();

        public int TcpQueries => _tcpQueries;

        public int Asked(string name) => _asked.GetValueOrDefault(name.ToLowerInvariant());

        private async Task UdpLoop()
        {
            var buf = new byte[65535];
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            while (!_stop.IsCancellationRequested)
            {
                SocketReceiveFromResult r;
                try
                {
                    r = await _udp.ReceiveFromAsync(buf, SocketFlags.None, from, _stop.Token);
                }
                catch (Exception)
                {
                    return;
                }
                var reply = Answer(buf.AsSpan(0, r.ReceivedBytes).ToArray(), tcp: false);
                await _udp.SendToAsync(reply, SocketFlags.None, r.RemoteEndPoint);
            }
        }

        private async Task TcpLoop()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient c;
                try
                {
                    c = await _tcp.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception)
                {
                    return;
                }
                using (c)
                {
                    var s = c.GetStream();
                    var len = new byte[2];
                    await s.ReadExactlyAsync(len);
                    var q = new byte[(len[0] << 8) | len[1]];
                    await s.ReadExactlyAsync(q);
                    Interlocked.Increment(ref _tcpQueries);
                    var reply = Answer(q, tcp: true);
                    await s.WriteAsync(new byte[] { (byte)(reply.Length >> 8), (byte)reply.Length });
                    await s.WriteAsync(reply);
                }
            }
        }

        private byte[] Answer(byte[] query, bool tcp)
        {
            var q = DnsMessage.Parse(query);
            var question = q.Questions[0];
            string name = question.Name.ToLowerInvariant();
            if (!tcp)
            {
                _asked.AddOrUpdate(name, 1, (_, n) => n + 1);
            }
            var buf = new byte[65535];
            var w = new DnsWriter(buf, new int[64]);
            bool nx = name.StartsWith("nxdomain.", StringComparison.Ordinal);
            bool big = name.StartsWith("big.", StringComparison.Ordinal);
            w.WriteHeader(q.Id, DnsFlags.QR | DnsFlags.RD | DnsFlags.RA, 0, nx ? 3 : 0);
            w.WriteQuestion(question.Name, question.Type, question.Class);
            int an = 0, ns = 0;
            if (nx)
            {
                w.WriteSoa("example.org.", 600, "ns.example.org.", "admin.example.org.", 1, 2, 3, 4, 60);
                ns = 1;
            }
            else if (big && !tcp)
            {
                w.SetFlag(DnsFlags.TC);
            }
            else if (question.Type == (ushort)DnsRecordType.PTR)
            {
                w.WriteNameRecord(question.Name, DnsRecordType.PTR, 300, "host.example.");
                an = 1;
            }
            else
            {
                for (int i = 0; i < (big ? 60 : 1); i++)
                {
                    w.WriteAddress(question.Name, 300, IPAddress.Parse($"192.0.2.{i + 1}"));
                    an++;
                }
            }
            w.SetCounts(1, an, ns, 0);
            return buf[..w.Position];
        }

        public void Dispose()
        {
            _stop.Cancel();
            _udp.Dispose();
            _tcp.Stop();
            _stop.Dispose();
        }
    }
}
