using Trellis.Dns.Tests.Support;

namespace Trellis.Dns.Tests;

/// <summary>
/// CoreDNS-style table tests: {qname, qtype} → {rcode, answer, authority}, asked of a live server over real
/// UDP and TCP on loopback, the zone compiled from objects in an in-memory store (<see cref="Objects.Standard"/>).
/// Answers are compared as "name TYPE data" lines, lower-cased, in any order; every TTL must be 30.
/// </summary>
public sealed class ZoneTableTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async Task InitializeAsync() => _server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private const string Soa = "SOA";
    private const string Z = ".cluster.local.";

    public static TheoryData<string, string, string, string[], string?> Cases => new()
    {
        // ClusterIP Services: A, case-insensitivity, NODATA for other types, ANY.
        { "web.default.svc.cluster.local.", "A", "NOERROR", [$"web.default.svc{Z} A 10.96.0.20"], null },
        { "WEB.Default.SVC.Cluster.LOCAL.", "A", "NOERROR", [$"web.default.svc{Z} A 10.96.0.20"], null },
        { "web.default.svc.cluster.local.", "AAAA", "NOERROR", [], Soa },
        { "web.default.svc.cluster.local.", "TXT", "NOERROR", [], Soa },
        { "web.default.svc.cluster.local.", "ANY", "NOERROR", [$"web.default.svc{Z} A 10.96.0.20"], null },
        { "noeps.default.svc.cluster.local.", "A", "NOERROR", [$"noeps.default.svc{Z} A 10.96.0.21"], null },
        { "dual.default.svc.cluster.local.", "A", "NOERROR", [$"dual.default.svc{Z} A 10.96.0.22"], null },
        { "dual.default.svc.cluster.local.", "AAAA", "NOERROR", [$"dual.default.svc{Z} AAAA fd00::22"], null },
        { "kube-dns.kube-system.svc.cluster.local.", "A", "NOERROR", [$"kube-dns.kube-system.svc{Z} A 10.96.0.10"], null },
        // Only headless Services have per-endpoint names.
        { "10-244-1-9.web.default.svc.cluster.local.", "A", "NXDOMAIN", [], Soa },
        // NXDOMAIN vs NODATA: unknown names and namespaces do not exist; namespaces and the svc/pod subtrees do.
        { "nope.default.svc.cluster.local.", "A", "NXDOMAIN", [], Soa },
        { "web.nons.svc.cluster.local.", "A", "NXDOMAIN", [], Soa },
        { "nons.svc.cluster.local.", "A", "NXDOMAIN", [], Soa },
        { "empty.svc.cluster.local.", "A", "NOERROR", [], Soa },
        { "default.svc.cluster.local.", "A", "NOERROR", [], Soa },
        { "svc.cluster.local.", "A", "NOERROR", [], Soa },
        { "pod.cluster.local.", "A", "NOERROR", [], Soa },
        { "nothing.cluster.local.", "A", "NXDOMAIN", [], Soa },
        // Search-path expansions (ndots:5) of outside and cluster names: authoritative NXDOMAIN, never forwarded.
        { "www.example.com.default.svc.cluster.local.", "A", "NXDOMAIN", [], Soa },
        { "web.default.svc.cluster.local.default.svc.cluster.local.", "A", "NXDOMAIN", [], Soa },
        { "www.example.com.cluster.local.", "AAAA", "NXDOMAIN", [], Soa },
        // Apex and schema version.
        { "cluster.local.", "SOA", "NOERROR", [$"cluster.local. SOA ns.dns{Z} hostmaster{Z} {{serial}} 7200 1800 86400 30"], null },
        { "cluster.local.", "NS", "NOERROR", [$"cluster.local. NS ns.dns{Z}"], null },
        { "cluster.local.", "A", "NOERROR", [], Soa },
        { "ns.dns.cluster.local.", "A", "NOERROR", [$"ns.dns{Z} A 10.96.0.10"], null },
        { "dns-version.cluster.local.", "TXT", "NOERROR", [$"dns-version{Z} TXT \"1.1.0\""], null },
        // SRV for named ports; unnamed ports have none; the protocol label must match; _tcp is an empty non-terminal.
        { "_http._tcp.web.default.svc.cluster.local.", "SRV", "NOERROR", [$"_http._tcp.web.default.svc{Z} SRV 0 100 80 web.default.svc{Z}"], null },
        { "_dns._udp.web.default.svc.cluster.local.", "SRV", "NOERROR", [$"_dns._udp.web.default.svc{Z} SRV 0 100 53 web.default.svc{Z}"], null },
        { "_http._udp.web.default.svc.cluster.local.", "SRV", "NXDOMAIN", [], Soa },
        { "_tcp.web.default.svc.cluster.local.", "SRV", "NOERROR", [], Soa },
        { "_http._tcp.web.default.svc.cluster.local.", "A", "NOERROR", [], Soa },
        // Headless: ready endpoints only (no condition counts as ready), hostname or dashed address, SRV to each.
        { "headless.default.svc.cluster.local.", "A", "NOERROR", [$"headless.default.svc{Z} A 10.244.1.5", $"headless.default.svc{Z} A 10.244.2.6"], null },
        { "web-0.headless.default.svc.cluster.local.", "A", "NOERROR", [$"web-0.headless.default.svc{Z} A 10.244.1.5"], null },
        { "10-244-2-6.headless.default.svc.cluster.local.", "A", "NOERROR", [$"10-244-2-6.headless.default.svc{Z} A 10.244.2.6"], null },
        { "10-244-3-7.headless.default.svc.cluster.local.", "A", "NXDOMAIN", [], Soa },
        { "web-0.headless.default.svc.cluster.local.", "AAAA", "NOERROR", [], Soa },
        { "_http._tcp.headless.default.svc.cluster.local.", "SRV", "NOERROR",
            [$"_http._tcp.headless.default.svc{Z} SRV 0 50 8080 web-0.headless.default.svc{Z}", $"_http._tcp.headless.default.svc{Z} SRV 0 50 8080 10-244-2-6.headless.default.svc{Z}"], null },
        { "headless-none.default.svc.cluster.local.", "A", "NXDOMAIN", [], Soa },
        // ExternalName: a CNAME; followed inside the cluster; left as the CNAME without upstreams.
        { "ext.default.svc.cluster.local.", "A", "NOERROR", [$"ext.default.svc{Z} CNAME example.com."], null },
        { "ext.default.svc.cluster.local.", "CNAME", "NOERROR", [$"ext.default.svc{Z} CNAME example.com."], null },
        { "ext-in.default.svc.cluster.local.", "A", "NOERROR", [$"ext-in.default.svc{Z} CNAME web.default.svc{Z}", $"web.default.svc{Z} A 10.96.0.20"], null },
        // PTR for ClusterIPs (IPv4 and IPv6) and headless endpoints; other addresses fall through (SERVFAIL without upstreams).
        { "20.0.96.10.in-addr.arpa.", "PTR", "NOERROR", [$"20.0.96.10.in-addr.arpa. PTR web.default.svc{Z}"], null },
        { "5.1.244.10.in-addr.arpa.", "PTR", "NOERROR", [$"5.1.244.10.in-addr.arpa. PTR web-0.headless.default.svc{Z}"], null },
        { "6.2.244.10.in-addr.arpa.", "PTR", "NOERROR", [$"6.2.244.10.in-addr.arpa. PTR 10-244-2-6.headless.default.svc{Z}"], null },
        { "2.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "PTR", "NOERROR",
            [$"2.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. PTR dual.default.svc{Z}"], null },
        { "7.3.244.10.in-addr.arpa.", "PTR", "SERVFAIL", [], null },
        { "1.1.1.1.in-addr.arpa.", "PTR", "SERVFAIL", [], null },
        // Outside names without upstreams: REFUSED.
        { "example.com.", "A", "REFUSED", [], null },
        // Pods, insecure mode (the default): any dashed address in an existing namespace.
        { "10-244-1-5.default.pod.cluster.local.", "A", "NOERROR", [$"10-244-1-5.default.pod{Z} A 10.244.1.5"], null },
        { "10-0-0-1.empty.pod.cluster.local.", "A", "NOERROR", [$"10-0-0-1.empty.pod{Z} A 10.0.0.1"], null },
        { "fd00--5.default.pod.cluster.local.", "AAAA", "NOERROR", [$"fd00--5.default.pod{Z} AAAA fd00::5"], null },
        { "10-244-1-5.default.pod.cluster.local.", "AAAA", "NOERROR", [], Soa },
        { "10-244-1-5.nons.pod.cluster.local.", "A", "NXDOMAIN", [], Soa },
        { "1-2-3.default.pod.cluster.local.", "A", "NXDOMAIN", [], Soa },
        { "x.10-244-1-5.default.pod.cluster.local.", "A", "NXDOMAIN", [], Soa },
        { "default.pod.cluster.local.", "A", "NOERROR", [], Soa },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Udp(string qname, string qtype, string rcode, string[] answer, string? authority) =>
        Check(await _server.Client.UdpAsync(qname, Enum.Parse<DnsRecordType>(qtype)), qname, rcode, answer, authority);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Tcp(string qname, string qtype, string rcode, string[] answer, string? authority) =>
        Check(await _server.Client.TcpAsync(qname, Enum.Parse<DnsRecordType>(qtype)), qname, rcode, answer, authority);

    private void Check(DnsMessage reply, string qname, string rcode, string[] answer, string? authority)
    {
        Assert.True(reply.IsResponse);
        Assert.Equal(rcode, DnsServer.DnsMetrics.RcodeName(reply.Rcode));
        Assert.Equal(qname, Assert.Single(reply.Questions).Name); // the question comes back as asked, case included
        string serial = _server.Server.Zone.Soa.Serial.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var expected = answer.Select(a => a.Replace("{serial}", serial, StringComparison.Ordinal).ToLowerInvariant()).Order().ToArray();
        var actual = reply.Answers.Select(Line).Order().ToArray();
        Assert.Equal(expected, actual);
        Assert.All(reply.Answers, r => Assert.Equal(30u, r.Ttl));
        if (authority is null)
        {
            Assert.Empty(reply.Authority);
        }
        else
        {
            var soa = Assert.Single(reply.Authority);
            Assert.Equal(authority, soa.RecordType.ToString());
            Assert.Equal(30u, soa.Ttl); // RFC 2308 §5: min(SOA TTL, MINIMUM) caps negative caching
        }
        if (rcode is "NOERROR" or "NXDOMAIN")
        {
            Assert.True((reply.Flags & DnsFlags.AA) != 0, "authoritative answer");
        }
        Assert.NotNull(reply.Edns);
    }

    private static string Line(DnsResourceRecord r) => $"{r.Name} {DnsResourceRecord.TypeName(r.Type)} {r.Data}".ToLowerInvariant();

    [Fact]
    public async Task Srv_answers_carry_the_targets_addresses_as_additional_records()
    {
        var reply = await _server.Client.UdpAsync("_http._tcp.headless.default.svc.cluster.local.", DnsRecordType.SRV);
        Assert.Equal(
            ["10-244-2-6.headless.default.svc.cluster.local. a 10.244.2.6", "web-0.headless.default.svc.cluster.local. a 10.244.1.5"],
            reply.Additional.Select(Line).Order().ToArray());
        var ns = await _server.Client.UdpAsync("cluster.local.", DnsRecordType.NS);
        Assert.Equal(["ns.dns.cluster.local. a 10.96.0.10"], ns.Additional.Select(Line).ToArray());
    }

    [Fact]
    public async Task Queries_without_edns_get_replies_without_opt()
    {
        var reply = await _server.Client.UdpAsync("web.default.svc.cluster.local.", DnsRecordType.A, edns: false);
        Assert.Null(reply.Edns);
        Assert.Equal("web.default.svc.cluster.local. a 10.96.0.20", Line(Assert.Single(reply.Answers)));
    }
}
