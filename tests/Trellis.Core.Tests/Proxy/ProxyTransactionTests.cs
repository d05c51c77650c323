using System.Diagnostics;
using CsCheck;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;
using Xunit.Abstractions;
using static Trellis.Core.Tests.Proxy.ProxyInputs;

namespace Trellis.Core.Tests.Proxy;

public class ProxyTransactionTests(ITestOutputHelper output)
{
    /// <summary>Full(prev), then Partial(prev, next), leaves exactly what Full(next) leaves on an empty table.</summary>
    private static void AssertPartialConverges(ProxyRuleset prev, ProxyRuleset next)
    {
        var incremental = new FakeProxyTable();
        incremental.Apply(prev.Dump());
        string partial = ProxyTransaction.Partial(prev, next);
        incremental.Apply(partial);
        var fresh = new FakeProxyTable();
        fresh.Apply(next.Dump());
        Assert.Equal(fresh.Dump(), incremental.Dump());

        // A full sync over the old table (after an agent restart: names from the kernel) converges too.
        var restarted = new FakeProxyTable();
        restarted.Apply(prev.Dump());
        restarted.Apply(ProxyTransaction.Full(next, Names(restarted)));
        Assert.Equal(fresh.Dump(), restarted.Dump());
    }

    private static ProxyObjectNames Names(FakeProxyTable t) =>
        new(t.ChainNames.ToHashSet(StringComparer.Ordinal), t.SetNames.ToHashSet(StringComparer.Ordinal))
        {
            Maps = t.SetNames.Where(s => t.Elements(s).Any(e => e.Contains(" : ", StringComparison.Ordinal))
                || s is "service-ips" or "service-nodeports" or "no-endpoint-services" or "no-endpoint-nodeports" or "firewall-ips").ToHashSet(StringComparer.Ordinal),
        };

    public static TheoryData<string, string> GoldenPairs()
    {
        var names = ProxyGolden.CaseNames();
        var data = new TheoryData<string, string>();
        foreach (var a in names)
        {
            foreach (var b in names.Where(b => b != a))
            {
                data.Add(a, b);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(GoldenPairs))]
    public void Partial_between_any_two_golden_cases_converges(string from, string to) =>
        AssertPartialConverges(ProxyCompiler.Compile(ProxyGolden.Read(from)), ProxyCompiler.Compile(ProxyGolden.Read(to)));

    [Fact]
    public void Partial_converges_for_random_sequences_of_inputs() =>
        Gen.Int[0, 1000].Array[0, 120].Array[2, 4].Sample(steps =>
        {
            var rulesets = steps.Select(s => ProxyCompiler.Compile(FromChoices(s))).ToList();
            for (int i = 1; i < rulesets.Count; i++)
            {
                AssertPartialConverges(rulesets[i - 1], rulesets[i]);
            }
        }, iter: 300);

    [Fact]
    public void An_endpoint_that_stops_being_ready_changes_only_its_service()
    {
        var svcs = new[] { Service("a", "web", "10.96.0.10"), Service("a", "api", "10.96.0.11") };
        var before = ProxyCompiler.Compile(Input(svcs, [
            Slice("a", "web", "web-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.5"), Endpoint("10.244.2.5")),
            Slice("a", "api", "api-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.6"))]));
        var after = ProxyCompiler.Compile(Input(svcs, [
            Slice("a", "web", "web-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.5"), Endpoint("10.244.2.5", ready: false)),
            Slice("a", "api", "api-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.6"))]));
        string tx = ProxyTransaction.Partial(before, after);
        Assert.DoesNotContain("api", tx, StringComparison.Ordinal);
        Assert.Contains("flush chain ip trellis-proxy service-", tx, StringComparison.Ordinal);
        Assert.Contains("delete chain ip trellis-proxy endpoint-", tx, StringComparison.Ordinal);
        AssertPartialConverges(before, after);
    }

    [Fact]
    public void A_verdict_change_deletes_the_element_then_adds_it()
    {
        var svc = Service("a", "web", "10.96.0.10");
        var before = ProxyCompiler.Compile(Input([svc], []));
        var after = ProxyCompiler.Compile(Input([svc], [Slice("a", "web", "web-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.5"))]));
        string[] lines = ProxyTransaction.Partial(before, after).Split('\n');
        Assert.Contains("delete element ip trellis-proxy no-endpoint-services { 10.96.0.10 . tcp . 80 }", lines);
        Assert.Contains(lines, l => l.StartsWith("add element ip trellis-proxy service-ips { 10.96.0.10 . tcp . 80 : goto service-", StringComparison.Ordinal));
        AssertPartialConverges(before, after);
        AssertPartialConverges(after, before);
    }

    [Fact]
    public void Affinity_state_survives_full_and_partial_syncs_and_goes_with_its_endpoint()
    {
        const string Sticky = ",\"sessionAffinity\":\"ClientIP\"";
        var svc = Service("a", "web", "10.96.0.10", extraSpec: Sticky);
        var two = ProxyCompiler.Compile(Input([svc], [Slice("a", "web", "w", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.5"), Endpoint("10.244.2.5"))]));
        var one = ProxyCompiler.Compile(Input([svc], [Slice("a", "web", "w", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.5"))]));
        var longer = ProxyCompiler.Compile(Input([Service("a", "web", "10.96.0.10", extraSpec: Sticky + ",\"sessionAffinityConfig\":{\"clientIP\":{\"timeoutSeconds\":60}}")],
            [Slice("a", "web", "w", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.5"))]));
        var affinitySets = two.Sets.Values.Where(s => s.IsDynamic).Select(s => s.Name).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(2, affinitySets.Count);
        Assert.All(affinitySets, s => Assert.Contains("timeout 10800s", two.Sets[s].Declaration, StringComparison.Ordinal));

        var table = new FakeProxyTable();
        table.Apply(two.Dump());
        foreach (var s in affinitySets)
        {
            table.Learn(s, "192.0.2.1");
        }
        table.Apply(two.Dump());
        Assert.All(affinitySets, s => Assert.Equal(["192.0.2.1"], table.Elements(s)));

        table.Apply(ProxyTransaction.Partial(two, one));
        string kept = Assert.Single(one.Sets.Values, s => s.IsDynamic).Name;
        Assert.Equal(["192.0.2.1"], table.Elements(kept));
        Assert.DoesNotContain(affinitySets.Single(s => s != kept), table.SetNames);

        string tx = ProxyTransaction.Partial(one, longer);
        Assert.Equal($"add set ip trellis-proxy {kept} {{ type ipv4_addr ; flags dynamic,timeout ; timeout 60s ; }}\n", tx);
        table.Apply(tx);
        Assert.Equal(["192.0.2.1"], table.Elements(kept));
    }

    [Fact]
    public void Full_deletes_what_the_kernel_has_and_is_no_longer_desired()
    {
        var a = ProxyCompiler.Compile(ProxyGolden.Read("affinity"));
        var b = ProxyCompiler.Compile(ProxyGolden.Read("clusterip"));
        var table = new FakeProxyTable();
        table.Apply(a.Dump());
        string tx = ProxyTransaction.Full(b, Names(table));
        Assert.Contains("delete set ip trellis-proxy affinity-", tx, StringComparison.Ordinal);
        Assert.Contains("delete chain ip trellis-proxy service-", tx, StringComparison.Ordinal);
        table.Apply(tx);
        Assert.Equal(b.Chains.Keys.Order(StringComparer.Ordinal), table.ChainNames.Order(StringComparer.Ordinal));
        Assert.Equal(b.Sets.Keys.Order(StringComparer.Ordinal), table.SetNames.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ParseListing_reads_names_from_nft_list_output()
    {
        // Captured from nft 1.0.6 (`nft list table ip trellis-proxy`), shortened.
        const string Listing = """
            table ip trellis-proxy {
            	set cluster-ips {
            		type ipv4_addr
            		elements = { 10.96.0.10 }
            	}

            	map service-ips {
            		type ipv4_addr . inet_proto . inet_service : verdict
            		elements = { 10.96.0.10 . tcp . 80 : goto service-AXK6CI2C-demo/web/tcp/http }
            	}

            	set affinity-ABCDEFGH-demo/web/tcp/http__10.244.1.5/8080 {
            		type ipv4_addr
            		size 65535
            		flags dynamic,timeout
            		timeout 3h
            	}

            	chain filter-prerouting {
            		type filter hook prerouting priority dstnat - 10; policy accept;
            		ct state new jump firewall-check
            	}

            	chain service-AXK6CI2C-demo/web/tcp/http {
            		ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
            		numgen random mod 1 vmap { 0 : goto endpoint-6UVIXZI4-demo/web/tcp/http__10.244.1.5/8080 }
            	}

            	chain cluster-ips-check {
            		ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs { chain x {"
            	}
            }
            """;
        var names = ProxyTransaction.ParseListing(Listing);
        Assert.Equal(["cluster-ips-check", "filter-prerouting", "service-AXK6CI2C-demo/web/tcp/http"], names.Chains.Order(StringComparer.Ordinal));
        Assert.Equal(["affinity-ABCDEFGH-demo/web/tcp/http__10.244.1.5/8080", "cluster-ips", "service-ips"], names.Sets.Order(StringComparer.Ordinal));
        Assert.Equal(["service-ips"], names.Maps);
        Assert.Empty(ProxyTransaction.ParseListing("").Chains);
    }

    [Fact]
    public void Adding_one_service_to_ten_thousand_writes_a_transaction_independent_of_the_ten_thousand()
    {
        int SizeOfAddingOne(int existing, out double compileMs, out double partialMs)
        {
            var (services, slices) = Cluster(existing);
            var before = ProxyCompiler.Compile(Input(services, slices));
            services.Add(Service("new", "added", "10.100.255.254"));
            slices.Add(Slice("new", "added", "added-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.250.255.1"), Endpoint("10.250.255.2")));
            var sw = Stopwatch.StartNew();
            var after = ProxyCompiler.Compile(Input(services, slices));
            compileMs = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            string tx = ProxyTransaction.Partial(before, after);
            partialMs = sw.Elapsed.TotalMilliseconds;
            return tx.Length;
        }
        int small = SizeOfAddingOne(10, out _, out _);
        int large = SizeOfAddingOne(10_000, out double compileMs, out double partialMs);
        output.WriteLine($"10,000 services x 2 endpoints: compile {compileMs:F0} ms, partial for one added service {partialMs:F0} ms, {large} bytes");
        Assert.Equal(small, large);
        Assert.InRange(large, 1, 4000);
    }

    [Fact]
    public void Measure_compile_and_partial_for_ten_thousand_services()
    {
        var (services, slices) = Cluster(10_000);
        var input = Input(services, slices);
        ProxyCompiler.Compile(Input(services.Take(10).ToList(), slices.Take(10).ToList())); // warm up the JIT
        var sw = Stopwatch.StartNew();
        var before = ProxyCompiler.Compile(input);
        double compileMs = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        string full = before.Dump();
        double dumpMs = sw.Elapsed.TotalMilliseconds;
        services.Add(Service("new", "added", "10.100.255.254"));
        slices.Add(Slice("new", "added", "added-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.250.255.1"), Endpoint("10.250.255.2")));
        var after = ProxyCompiler.Compile(Input(services, slices));
        sw.Restart();
        string partial = ProxyTransaction.Partial(before, after);
        double partialMs = sw.Elapsed.TotalMilliseconds;
        output.WriteLine($"compile 10,000 services x 2 endpoints: {compileMs:F0} ms; Full text {full.Length / 1024} KiB in {dumpMs:F0} ms; Partial (one added) {partialMs:F0} ms, {partial.Length} bytes");
        Assert.Equal(10_001, after.ServicePorts.Count);
    }

    internal static (List<ServiceView> Services, List<EndpointSliceView> Slices) Cluster(int n)
    {
        var services = new List<ServiceView>(n);
        var slices = new List<EndpointSliceView>(n);
        for (int i = 0; i < n; i++)
        {
            string ip = $"10.{96 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}";
            services.Add(Service("ns" + (i % 50), "svc" + i, ip));
            slices.Add(Slice("ns" + (i % 50), "svc" + i, "svc" + i + "-1", "[{\"name\":\"http\",\"port\":8080}]",
                Endpoint($"10.{244 + (i >> 15)}.{(i >> 7) & 255}.{(i & 127) * 2}", "node-1"), Endpoint($"10.{244 + (i >> 15)}.{(i >> 7) & 255}.{(i & 127) * 2 + 1}")));
        }
        return (services, slices);
    }
}
