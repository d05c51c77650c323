using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Trellis.Core.Dns;
using Trellis.Dns.Tests.Support;

namespace Trellis.Dns.Tests;

public sealed class ServerTests
{
    private static IEnumerable<JsonObject> BigHeadless(int endpoints)
    {
        yield return Objects.Namespace("default");
        yield return Objects.Service("default", "big", "None", """[{"name":"http","port":80}]""");
        yield return Objects.Slice("default", "big", "big-1",
            Enumerable.Range(0, endpoints).Select(i => ($"10.244.{i / 250}.{(i % 250) + 1}", (string?)null, (bool?)true)),
            """[{"name":"http","port":8080,"protocol":"TCP"}]""");
    }

    [Fact]
    public async Task Answers_that_do_not_fit_in_udp_set_tc_and_come_whole_over_tcp()
    {
        await using var t = await TestServer.StartAsync(BigHeadless(100));
        // 100 A records: 12 + 35 (question) + 100 × 16 = 1647 octets — over 512 and over the 1232 EDNS size.
        var plain = await t.Client.UdpAsync("big.default.svc.cluster.local.", DnsRecordType.A, edns: false);
        Assert.True((plain.Flags & DnsFlags.TC) != 0);
        Assert.Empty(plain.Answers);
        Assert.Equal("big.default.svc.cluster.local.", Assert.Single(plain.Questions).Name);
        var small = await t.Client.UdpAsync("big.default.svc.cluster.local.", DnsRecordType.A, edns: true, udpSize: 1232);
        Assert.True((small.Flags & DnsFlags.TC) != 0);
        Assert.NotNull(small.Edns);
        // A client that advertises 4096 gets it all over UDP.
        var large = await t.Client.UdpAsync("big.default.svc.cluster.local.", DnsRecordType.A, edns: true, udpSize: 4096);
        Assert.True((large.Flags & DnsFlags.TC) == 0);
        Assert.Equal(100, large.Answers.Length);
        var tcp = await t.Client.TcpAsync("big.default.svc.cluster.local.", DnsRecordType.A, edns: false);
        Assert.True((tcp.Flags & DnsFlags.TC) == 0);
        Assert.Equal(100, tcp.Answers.Length);
        Assert.Equal(100, tcp.Answers.Select(a => a.Data.ToString()).Distinct().Count());
        // SRV with 100 targets: the full names make it ~6 KB, still whole over TCP.
        var srv = await t.Client.TcpAsync("_http._tcp.big.default.svc.cluster.local.", DnsRecordType.SRV);
        Assert.Equal(100, srv.Answers.Length);
        Assert.All(srv.Answers, a => Assert.Equal("0 1 8080", string.Join(' ', a.Data.ToString()!.Split(' ')[..3])));
        Assert.True(t.Server.Metrics.ResponsesWith(0) >= 5);
    }

    [Fact]
    public async Task Small_answers_fit_in_512_octets_without_edns()
    {
        await using var t = await TestServer.StartAsync(BigHeadless(20));
        var reply = await t.Client.UdpAsync("big.default.svc.cluster.local.", DnsRecordType.A, edns: false);
        Assert.True((reply.Flags & DnsFlags.TC) == 0);
        Assert.Equal(20, reply.Answers.Length);
    }

    [Theory]
    [InlineData(1, 0, (ushort)1, DnsClass.IN, "NOTIMP")] // opcode IQUERY
    [InlineData(0, 1, (ushort)1, DnsClass.IN, "BADVERS")] // EDNS version 1
    [InlineData(0, 0, (ushort)252, DnsClass.IN, "REFUSED")] // AXFR
    [InlineData(0, 0, (ushort)1, DnsClass.CH, "REFUSED")] // CHAOS class
    [InlineData(0, 0, (ushort)41, DnsClass.IN, "FORMERR")] // OPT as a question type
    public async Task Queries_we_do_not_serve_get_the_rcode_that_says_why(int opcode, int ednsVersion, ushort type, ushort cls, string rcode)
    {
        await using var t = await TestServer.StartAsync();
        var buf = new byte[512];
        var w = new DnsWriter(buf, new int[16]);
        w.WriteHeader(77, DnsFlags.RD, opcode, 0);
        w.WriteQuestion("web.default.svc.cluster.local.", type, cls);
        w.WriteOpt(1232, 0, (byte)ednsVersion, false);
        w.SetCounts(1, 0, 0, 1);
        var reply = DnsMessage.Parse(await t.Client.UdpRawAsync(buf[..w.Position]));
        Assert.Equal(77, reply.Id);
        Assert.Equal(rcode, DnsServer.DnsMetrics.RcodeName(reply.Rcode));
        Assert.Empty(reply.Answers);
    }

    [Fact]
    public async Task A_store_change_is_served_within_a_second()
    {
        await using var t = await TestServer.StartAsync();
        var before = await t.Client.UdpAsync("fresh.default.svc.cluster.local.", DnsRecordType.A);
        Assert.Equal(DnsRcode.NXDomain, before.ResponseCode);
        var sw = Stopwatch.StartNew();
        await Objects.ApplyAsync(t.Store, Objects.Service("default", "fresh", "10.96.7.7", """[{"name":"http","port":80}]"""));
        DnsMessage reply;
        do
        {
            reply = await t.Client.UdpAsync("fresh.default.svc.cluster.local.", DnsRecordType.A);
        }
        while (reply.ResponseCode != DnsRcode.NoError && sw.Elapsed < TimeSpan.FromSeconds(5));
        sw.Stop();
        Assert.Equal("10.96.7.7", Assert.Single(reply.Answers).Data.ToString());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"resolvable after {sw.Elapsed.TotalMilliseconds:F0} ms");
        Assert.InRange(t.Server.Metrics.LastProgrammingDelaySeconds, 0, 1);

        // Deleting it takes it away again; the SOA serial follows the store revision.
        uint serial = t.Server.Zone.Soa.Serial;
        await t.Store.DeleteAsync(Core.Objects.Kinds.Service.StorePrefix("default") + "fresh");
        sw.Restart();
        do
        {
            reply = await t.Client.UdpAsync("fresh.default.svc.cluster.local.", DnsRecordType.A);
        }
        while (reply.ResponseCode != DnsRcode.NXDomain && sw.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal(DnsRcode.NXDomain, reply.ResponseCode);
        Assert.True(t.Server.Zone.Soa.Serial > serial);
    }

    [Fact]
    public async Task Endpoint_readiness_changes_move_headless_answers()
    {
        await using var t = await TestServer.StartAsync();
        Assert.Equal(DnsRcode.NXDomain, (await t.Client.UdpAsync("headless-none.default.svc.cluster.local.", DnsRecordType.A)).ResponseCode);
        await Objects.ApplyAsync(t.Store, Objects.Slice("default", "headless-none", "headless-none-1", [("10.244.3.8", null, true)]));
        var sw = Stopwatch.StartNew();
        DnsMessage reply;
        do
        {
            reply = await t.Client.UdpAsync("headless-none.default.svc.cluster.local.", DnsRecordType.A);
        }
        while (reply.ResponseCode != DnsRcode.NoError && sw.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal("10.244.3.8", Assert.Single(reply.Answers).Data.ToString());
    }

    [Fact]
    public async Task Verified_pod_records_need_a_pod_with_that_address_and_disabled_gives_none()
    {
        await using (var t = await TestServer.StartAsync(configure: o => o with { Zone = o.Zone with { Pods = PodRecordsMode.Verified } }))
        {
            Assert.Equal(DnsRcode.NoError, (await t.Client.UdpAsync("10-244-1-5.default.pod.cluster.local.", DnsRecordType.A)).ResponseCode);
            Assert.Equal(DnsRcode.NXDomain, (await t.Client.UdpAsync("10-244-1-6.default.pod.cluster.local.", DnsRecordType.A)).ResponseCode);
            Assert.Equal(DnsRcode.NXDomain, (await t.Client.UdpAsync("10-244-1-5.kube-system.pod.cluster.local.", DnsRecordType.A)).ResponseCode);
        }
        await using (var t = await TestServer.StartAsync(configure: o => o with { Zone = o.Zone with { Pods = PodRecordsMode.Disabled } }))
        {
            Assert.Equal(DnsRcode.NXDomain, (await t.Client.UdpAsync("10-244-1-5.default.pod.cluster.local.", DnsRecordType.A)).ResponseCode);
        }
    }

    [Fact]
    public async Task Another_domain_and_ttl_are_honoured()
    {
        await using var t = await TestServer.StartAsync(configure: o => o with { Zone = o.Zone with { Domain = "Corp.Example", Ttl = 5 } });
        var reply = await t.Client.UdpAsync("web.default.svc.corp.example.", DnsRecordType.A);
        Assert.Equal(5u, Assert.Single(reply.Answers).Ttl);
        Assert.Equal(DnsRcode.Refused, (await t.Client.UdpAsync("web.default.svc.cluster.local.", DnsRecordType.A)).ResponseCode);
    }

    [Fact]
    public async Task Health_endpoint_serves_ready_and_prometheus_metrics()
    {
        await using var t = await TestServer.StartAsync(configure: o => o with { Health = new IPEndPoint(IPAddress.Loopback, 0) });
        await t.Client.UdpAsync("web.default.svc.cluster.local.", DnsRecordType.A);
        await t.Client.UdpAsync("nope.default.svc.cluster.local.", DnsRecordType.AAAA);
        using var http = new HttpClient { BaseAddress = new Uri($"http://{t.Server.HealthEndPoint}") };
        Assert.Equal("ok\n", await http.GetStringAsync("/ready"));
        string metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("trellis_dns_queries_total{type=\"A\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("trellis_dns_queries_total{type=\"AAAA\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("trellis_dns_responses_total{rcode=\"NXDOMAIN\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("trellis_dns_request_duration_seconds_count 2", metrics, StringComparison.Ordinal);
        Assert.Contains("trellis_dns_programming_delay_seconds_count", metrics, StringComparison.Ordinal);
        Assert.Contains("trellis_dns_ready 1", metrics, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/nope")).StatusCode);
    }

    [Fact]
    public async Task Readiness_waits_for_the_first_snapshot()
    {
        // A store that never answers the list: the server binds and answers, but is not ready.
        await using var store = new BlockingStore();
        var metrics = new DnsServer.DnsMetrics();
        await using var server = DnsServer.DnsServer.Start(new DnsServer.DnsServerOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0), Health = new IPEndPoint(IPAddress.Loopback, 0) }, store);
        using var http = new HttpClient { BaseAddress = new Uri($"http://{server.HealthEndPoint}") };
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/ready")).StatusCode);
        Assert.False(server.Watcher.Ready.IsCompleted);
    }

    [Fact]
    public async Task The_command_line_is_parsed_and_bad_flags_are_named()
    {
        var o = DnsServer.DnsServerOptions.Parse(["--store", "sqlite:///tmp/x.db", "--listen", "127.0.0.1:5353", "--upstream", "192.0.2.1:53,192.0.2.2", "--pods", "verified", "--ttl", "10", "--domain", "k8s.test"]);
        Assert.Equal("127.0.0.1:5353", o.Listen.ToString());
        Assert.Equal(["192.0.2.1:53", "192.0.2.2:53"], o.Upstreams.Select(u => u.ToString()).ToArray());
        Assert.Equal((PodRecordsMode.Verified, 10u, "k8s.test"), (o.Zone.Pods, o.Zone.Ttl, o.Zone.Domain));
        Assert.Contains("--pods", Assert.Throws<ArgumentException>(() => DnsServer.DnsServerOptions.Parse(["--store", "s", "--listen", "127.0.0.1:53", "--pods", "maybe"])).Message, StringComparison.Ordinal);
        Assert.Contains("--listen", Assert.Throws<ArgumentException>(() => DnsServer.DnsServerOptions.Parse(["--store", "s", "--listen", "localhost"])).Message, StringComparison.Ordinal);
        Assert.Contains("--ttl", Assert.Throws<ArgumentException>(() => DnsServer.DnsServerOptions.Parse(["--store", "s", "--listen", "127.0.0.1:53", "--ttl", "-1"])).Message, StringComparison.Ordinal);
        Assert.Contains("--domain", Assert.Throws<ArgumentException>(() => DnsServer.DnsServerOptions.Parse(["--store", "s", "--listen", "127.0.0.1:53", "--domain", "bad..name"])).Message, StringComparison.Ordinal);
        Assert.Contains("--store", Assert.Throws<ArgumentException>(() => DnsServer.DnsServerOptions.Parse(["--listen", "127.0.0.1:53"])).Message, StringComparison.Ordinal);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Malformed_objects_in_the_store_are_skipped_not_fatal()
    {
        await using var t = await TestServer.StartAsync();
        await t.Store.CreateAsync("/registry/services/default/garbage", "{not json"u8.ToArray());
        await Objects.ApplyAsync(t.Store, Objects.Service("default", "bad-ip", "10.96.999.1"));
        await Objects.ApplyAsync(t.Store, Objects.Service("default", "after", "10.96.8.8"));
        var sw = Stopwatch.StartNew();
        DnsMessage reply;
        do
        {
            reply = await t.Client.UdpAsync("after.default.svc.cluster.local.", DnsRecordType.A);
        }
        while (reply.ResponseCode != DnsRcode.NoError && sw.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal("10.96.8.8", Assert.Single(reply.Answers).Data.ToString());
        Assert.Equal(DnsRcode.NXDomain, (await t.Client.UdpAsync("bad-ip.default.svc.cluster.local.", DnsRecordType.A)).ResponseCode);
    }

    /// <summary>A store whose every call waits forever (until cancelled).</summary>
    private sealed class BlockingStore : Store.IClusterStore
    {
        private static async Task<T> Never<T>(CancellationToken ct)
        {
            await Task.Delay(Timeout.Infinite, ct);
            throw new InvalidOperationException();
        }

        public Task<Store.StoreItem?> GetAsync(string key, CancellationToken ct = default) => Never<Store.StoreItem?>(ct);

        public Task<Store.StoreList> ListAsync(string prefix, CancellationToken ct = default) => Never<Store.StoreList>(ct);

        public Task<long> CreateAsync(string key, ReadOnlyMemory<byte> value, long leaseId = 0, CancellationToken ct = default) => Never<long>(ct);

        public Task<long> UpdateAsync(string key, ReadOnlyMemory<byte> value, long expectedModRevision, long leaseId = 0, CancellationToken ct = default) => Never<long>(ct);

        public Task<long> DeleteAsync(string key, long expectedModRevision = 0, CancellationToken ct = default) => Never<long>(ct);

        public async IAsyncEnumerable<Store.WatchEvent> WatchAsync(string prefix, long fromRevision, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
        {
            await Task.Delay(Timeout.Infinite, ct);
            yield break;
        }

        public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken ct = default) => Never<long>(ct);

        public Task KeepAliveAsync(long leaseId, CancellationToken ct = default) => Never<long>(ct);

        public Task RevokeLeaseAsync(long leaseId, CancellationToken ct = default) => Never<long>(ct);

        public Task<long> CurrentRevisionAsync(CancellationToken ct = default) => Never<long>(ct);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
