using System.Net;
using Trellis.Core.Nft;
using Trellis.Core.Tests.NodeFirewall;
using static Trellis.Core.Tests.Nft.TracerRulesets;
using NftCli = Trellis.Core.Tests.NodeFirewall.Nft;

namespace Trellis.Core.Tests.Nft;

public class NftTracerTests
{
    private static readonly IPAddress[] s_node = [IPAddress.Parse("172.30.0.11"), IPAddress.Parse("10.244.1.1")];

    private static NftModel Model(params string[] texts)
    {
        var m = new NftModel();
        foreach (var t in texts)
        {
            m.Apply(t);
        }
        return m;
    }

    private static TracePacket Tcp(string src, string dst, int dport, TraceOrigin origin = TraceOrigin.Forwarded, bool isNew = true) =>
        new(IPAddress.Parse(src), IPAddress.Parse(dst), "tcp", 40000, dport, origin, NewConnection: isNew);

    private static TraceResult Trace(NftModel m, TracePacket p) => new NftTracer(m, s_node).Trace(p);

    private static string Dest(TraceOutcome o) => $"{o.Destination}:{o.DestinationPort}";

    [Fact]
    public void Pod_to_cluster_ip_forks_to_every_endpoint_without_masquerade()
    {
        var r = Trace(Model(KubeProxy), Tcp("10.244.1.3", "10.96.0.10", 80));
        Assert.Equal(["10.244.1.5:8080", "10.244.2.7:8080"], r.Outcomes.Select(Dest).Order());
        Assert.All(r.Outcomes, o =>
        {
            Assert.Equal(TraceVerdict.Accept, o.Verdict);
            Assert.False(o.Masqueraded);
            Assert.Equal(0u, o.Mark);
            Assert.Contains(o.Steps, s => s.Kind == TraceStepKind.Route && s.Detail!.Contains("forward", StringComparison.Ordinal));
        });
        var first = r.Outcomes.Single(o => o.Destination.Equals(IPAddress.Parse("10.244.1.5")));
        var rules = first.Steps.Where(s => s.Kind == TraceStepKind.Rule).Select(s => $"{s.Chain}: {s.Rule}").ToList();
        Assert.Equal(
        [
            "filter-prerouting: ct state new jump firewall-check",
            "nat-prerouting: jump services",
            "services: ip daddr . meta l4proto . th dport vmap @service-ips",
            $"{Svc1}: numgen random mod 2 vmap {{ 0 : goto {Ep1}, 1 : goto {Ep2} }}",
            $"{Ep1}: meta l4proto tcp dnat to 10.244.1.5:8080",
            "filter-forward: ct state new jump service-endpoints-check",
            "filter-forward: ct state new jump cluster-ips-check",
            "nat-postrouting: jump masquerading",
            "masquerading: meta mark & 0x4000 == 0 return",
        ], rules);
        // Base chains in hook and priority order: filter -110 before nat -100.
        var chains = first.Steps.Where(s => s.Kind == TraceStepKind.Chain && s.Detail is not null).Select(s => s.Chain).ToList();
        Assert.Equal(["filter-prerouting", "nat-prerouting", "filter-forward", "nat-postrouting"], chains);
    }

    [Fact]
    public void Node_port_from_outside_is_masqueraded_through_fib_local()
    {
        var r = Trace(Model(KubeProxy), Tcp("203.0.113.5", "172.30.0.11", 30080));
        Assert.Equal(["10.244.1.5:8080", "10.244.2.7:8080"], r.Outcomes.Select(Dest).Order());
        Assert.All(r.Outcomes, o =>
        {
            Assert.Equal(TraceVerdict.Accept, o.Verdict);
            Assert.True(o.Masqueraded);
            Assert.Equal(0u, o.Mark); // masquerading clears the bit it acted on
            Assert.Contains(o.Steps, s => s.Rule == "masquerade fully-random");
            Assert.Contains(o.Steps, s => s.Chain == Ext1 && s.Rule == "jump mark-for-masquerade");
        });
        // A node port on an address that is not the node's does nothing.
        var other = Assert.Single(Trace(Model(KubeProxy), Tcp("203.0.113.5", "172.30.0.99", 30080)).Outcomes);
        Assert.Equal("172.30.0.99:30080", Dest(other));
        Assert.False(other.Masqueraded);
    }

    [Fact]
    public void Service_without_endpoints_is_rejected_by_reject_chain()
    {
        var o = Assert.Single(Trace(Model(KubeProxy), Tcp("10.244.1.3", "10.96.0.20", 80)).Outcomes);
        Assert.Equal(TraceVerdict.Reject, o.Verdict);
        Assert.Equal("reject-chain", o.DecidingRule!.Chain);
        Assert.Equal("reject", o.DecidingRule.Rule);
        Assert.Equal("ip trellis-proxy", o.DecidingRule.Table);
        Assert.Equal("10.96.0.20:80", Dest(o));
        Assert.Contains(o.Steps, s => s.Chain == "filter-forward" && s.Kind == TraceStepKind.Chain);

        // Its node port: not DNATed, routed to input, rejected by nodeport-endpoints-check.
        var np = Assert.Single(Trace(Model(KubeProxy), Tcp("203.0.113.5", "172.30.0.11", 30081)).Outcomes);
        Assert.Equal(TraceVerdict.Reject, np.Verdict);
        Assert.Contains(np.Steps, s => s.Kind == TraceStepKind.Chain && s.Chain == "nodeport-endpoints-check");
        Assert.Contains(np.Steps, s => s.Kind == TraceStepKind.Route && s.Detail!.Contains("input", StringComparison.Ordinal));
    }

    [Fact]
    public void Cluster_ips_check_rejects_wrong_ports_and_drops_unallocated_ips()
    {
        var wrongPort = Assert.Single(Trace(Model(KubeProxy), Tcp("10.244.1.3", "10.96.0.10", 81)).Outcomes);
        Assert.Equal(TraceVerdict.Reject, wrongPort.Verdict);
        Assert.Equal("ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"", wrongPort.DecidingRule!.Rule);

        var unallocated = Assert.Single(Trace(Model(KubeProxy), Tcp("10.244.1.3", "10.96.5.5", 80)).Outcomes);
        Assert.Equal(TraceVerdict.Drop, unallocated.Verdict);
        Assert.Equal("cluster-ips-check", unallocated.DecidingRule!.Chain);
        Assert.Contains("unallocated", unallocated.DecidingRule.Rule, StringComparison.Ordinal);
    }

    [Fact]
    public void Host_process_to_cluster_ip_goes_through_output_and_is_masqueraded()
    {
        var r = Trace(Model(KubeProxy), Tcp("172.30.0.11", "10.96.0.10", 80, TraceOrigin.Local));
        Assert.Equal(2, r.Outcomes.Count);
        Assert.All(r.Outcomes, o =>
        {
            Assert.Equal(TraceVerdict.Accept, o.Verdict);
            Assert.True(o.Masqueraded);
            var chains = o.Steps.Where(s => s.Kind == TraceStepKind.Chain && s.Detail is not null).Select(s => s.Chain).ToList();
            Assert.Equal(["filter-output", "nat-output", "filter-output-post-dnat", "nat-postrouting"], chains);
            Assert.DoesNotContain(o.Steps, s => s.Kind == TraceStepKind.Route);
        });
    }

    [Fact]
    public void Established_connections_skip_nat_chains_and_ct_state_new_rules()
    {
        var o = Assert.Single(Trace(Model(KubeProxy), Tcp("10.244.1.3", "10.96.0.10", 80, isNew: false)).Outcomes);
        Assert.Equal(TraceVerdict.Accept, o.Verdict);
        Assert.Equal("10.96.0.10:80", Dest(o));
        Assert.Equal(["nat-prerouting", "nat-postrouting"], o.Steps.Where(s => s.Kind == TraceStepKind.Skipped).Select(s => s.Chain));
        Assert.DoesNotContain(o.Steps, s => s.Kind == TraceStepKind.Rule);
    }

    [Fact]
    public void Hairpin_endpoint_is_masqueraded_only_on_its_own_branch()
    {
        var r = Trace(Model(KubeProxy), Tcp("10.244.1.5", "10.96.0.10", 80));
        Assert.True(r.Outcomes.Single(o => o.Destination.Equals(IPAddress.Parse("10.244.1.5"))).Masqueraded);
        Assert.False(r.Outcomes.Single(o => o.Destination.Equals(IPAddress.Parse("10.244.2.7"))).Masqueraded);
    }

    [Fact]
    public void Affinity_set_starts_empty_trace_does_not_fill_it_and_a_filled_one_is_followed()
    {
        var m = Model(KubeProxy);
        string before = m.Dump();
        var udp = new TracePacket(IPAddress.Parse("10.244.1.3"), IPAddress.Parse("10.96.0.53"), "udp", 5353, 53, TraceOrigin.Forwarded);
        var o = Assert.Single(Trace(m, udp).Outcomes);
        Assert.Equal("10.244.1.9:53", Dest(o));
        Assert.Contains(o.Steps, s => s.Detail?.Contains("would add to @" + DnsAffinity, StringComparison.Ordinal) == true);
        Assert.DoesNotContain(o.Steps, s => s.Rule?.StartsWith("ip saddr @", StringComparison.Ordinal) == true);
        Assert.Equal(before, m.Dump());

        m.Apply($"add element ip trellis-proxy {DnsAffinity} {{ 10.244.1.3 }}");
        var again = Assert.Single(Trace(m, udp).Outcomes);
        Assert.Equal("10.244.1.9:53", Dest(again));
        Assert.Contains(again.Steps, s => s.Rule == $"ip saddr @{DnsAffinity} goto {DnsEp}");
    }

    [Fact]
    public void Load_balancer_source_ranges_drop_in_prerouting()
    {
        var denied = Assert.Single(Trace(Model(KubeProxy), Tcp("198.51.100.1", "192.0.2.10", 80)).Outcomes);
        Assert.Equal(TraceVerdict.Drop, denied.Verdict);
        Assert.Equal(Fw1, denied.DecidingRule!.Chain);
        Assert.DoesNotContain(denied.Steps, s => s.Chain == "nat-prerouting"); // dropped before NAT ran

        var allowed = Trace(Model(KubeProxy), Tcp("203.0.113.7", "192.0.2.10", 80));
        Assert.Equal(["10.244.1.5:8080", "10.244.2.7:8080"], allowed.Outcomes.Select(Dest).Order());
        Assert.All(allowed.Outcomes, o => Assert.True(o.Masqueraded));
    }

    [Fact]
    public void Identical_numgen_branches_are_one_outcome()
    {
        var m = Model(KubeProxy);
        m.Apply($"flush chain ip trellis-proxy {Svc1}\nadd rule ip trellis-proxy {Svc1} numgen random mod 3 vmap {{ 0 : goto {Ep1}, 1 : goto {Ep1}, 2 : goto {Ep1} }}");
        var o = Assert.Single(Trace(m, Tcp("10.244.1.3", "10.96.0.10", 80)).Outcomes);
        Assert.Equal("10.244.1.5:8080", Dest(o));
    }

    [Fact]
    public void Numgen_value_without_an_entry_falls_through_to_the_next_rule()
    {
        var m = Model(KubeProxy);
        m.Apply($"flush chain ip trellis-proxy {Svc1}\nadd rule ip trellis-proxy {Svc1} numgen random mod 2 vmap {{ 0 : goto {Ep1} }}\nadd rule ip trellis-proxy {Svc1} drop");
        var r = Trace(m, Tcp("10.244.1.3", "10.96.0.10", 80));
        Assert.Equal(2, r.Outcomes.Count);
        Assert.Contains(r.Outcomes, o => o.Verdict == TraceVerdict.Accept && Dest(o) == "10.244.1.5:8080");
        Assert.Contains(r.Outcomes, o => o.Verdict == TraceVerdict.Drop && o.DecidingRule!.Rule == "drop");
    }

    [Fact]
    public void Policy_table_default_deny_allow_lists_and_conntrack()
    {
        var m = Model(KubeProxy, Policy);
        // From this node's pod range to web:8080 — in web-allowed.
        var ok = Trace(m, Tcp("10.244.1.3", "10.96.0.10", 80));
        Assert.All(ok.Outcomes, o => Assert.Equal(TraceVerdict.Accept, o.Verdict));
        Assert.Contains(ok.Outcomes[0].Steps, s => s.Chain == "allow-log" && s.Kind == TraceStepKind.Chain);

        // From another node's pods to 8080: not allowed, dropped with a log by the policy chain.
        var denied = Trace(m, Tcp("10.244.5.3", "10.96.0.10", 80));
        Assert.All(denied.Outcomes, o =>
        {
            Assert.Equal(TraceVerdict.Drop, o.Verdict);
            Assert.Equal("inet trellis-policy", o.DecidingRule!.Table);
            Assert.Equal("counter log prefix \"trellis-policy drop: \" drop", o.DecidingRule.Rule);
            Assert.Contains("log \"trellis-policy drop: \"", o.DecidingRule.Detail, StringComparison.Ordinal);
        });

        // 10.244.3.x may use the 8000-8090 range.
        Assert.All(Trace(m, Tcp("10.244.3.3", "10.244.2.7", 8085)).Outcomes, o => Assert.Equal(TraceVerdict.Accept, o.Verdict));
        Assert.All(Trace(m, Tcp("10.244.3.3", "10.244.2.7", 8091)).Outcomes, o => Assert.Equal(TraceVerdict.Drop, o.Verdict));
        // Port 443 is open to all (anonymous sets), for tcp and udp.
        Assert.All(Trace(m, Tcp("10.244.9.3", "10.244.2.7", 443)).Outcomes, o => Assert.Equal(TraceVerdict.Accept, o.Verdict));

        // Established traffic passes whatever the port.
        var est = Assert.Single(Trace(m, Tcp("10.244.5.3", "10.244.2.7", 8080, isNew: false)).Outcomes);
        Assert.Equal(TraceVerdict.Accept, est.Verdict);
        Assert.Equal("ct state established, related accept", est.DecidingRule!.Rule);
    }

    [Fact]
    public void Interface_names_match_only_where_the_kernel_knows_them()
    {
        var m = Model(Policy);
        var tracer = new NftTracer(m, s_node);
        var p = new TracePacket(IPAddress.Parse("203.0.113.1"), IPAddress.Parse("10.244.1.9"), "tcp", 1, 80, TraceOrigin.Forwarded, "eth0", "trellis0");
        Assert.Equal(TraceVerdict.Accept, Assert.Single(tracer.Trace(p).Outcomes).Verdict);
        var wrongIn = p with { InInterface = "eth1" };
        var o = Assert.Single(tracer.Trace(wrongIn).Outcomes);
        // Not in web-pods: accepted by the last rule, not the iifname one.
        Assert.Equal("ip daddr != @web-pods accept", o.DecidingRule!.Rule);
    }

    [Fact]
    public void Policy_drop_with_no_matching_rule_has_no_deciding_rule()
    {
        var m = Model("""
            add table inet f
            add chain inet f fwd { type filter hook forward priority 0 ; policy drop ; }
            add chain inet f helper
            add rule inet f helper return
            add rule inet f helper accept
            add rule inet f fwd jump helper
            add rule inet f fwd tcp dport 22 accept
            """);
        var o = Assert.Single(Trace(m, Tcp("10.0.0.1", "10.0.0.2", 80)).Outcomes);
        Assert.Equal(TraceVerdict.Drop, o.Verdict);
        Assert.Null(o.DecidingRule);
        Assert.Equal(TraceStepKind.Policy, o.Steps[^1].Kind);
        // return came back from helper before its accept.
        Assert.DoesNotContain(o.Steps, s => s.Rule == "accept");
        Assert.Equal(TraceVerdict.Accept, Assert.Single(Trace(m, Tcp("10.0.0.1", "10.0.0.2", 22)).Outcomes).Verdict);
    }

    [Fact]
    public void Accept_ends_only_its_base_chain_and_goto_does_not_return()
    {
        var m = Model("""
            add table ip a
            add chain ip a pre { type filter hook prerouting priority -200 ; }
            add rule ip a pre accept
            add table inet b
            add chain inet b pre { type filter hook prerouting priority 0 ; }
            add chain inet b g
            add rule inet b g counter
            add rule inet b pre goto g
            add rule inet b pre drop
            add chain inet b in { type filter hook input priority 0 ; }
            add rule inet b in ip saddr 10.9.9.9 drop
            """);
        // accept in a's chain; b's chain still runs; goto g falls off g -> b's policy (accept), never the drop.
        var o = Assert.Single(Trace(m, Tcp("10.0.0.1", "10.244.1.1", 80)).Outcomes);
        Assert.Equal(TraceVerdict.Accept, o.Verdict);
        Assert.Equal(["pre", "pre", "g", "in"], o.Steps.Where(s => s.Kind == TraceStepKind.Chain).Select(s => s.Chain));
        var d = Assert.Single(Trace(m, Tcp("10.9.9.9", "10.244.1.1", 80)).Outcomes);
        Assert.Equal(TraceVerdict.Drop, d.Verdict);
        Assert.Equal("in", d.DecidingRule!.Chain);
    }

    [Fact]
    public void Marks_are_tracked_through_arithmetic()
    {
        var m = Model("""
            add table ip t
            add chain ip t out { type filter hook output priority 0 ; }
            add rule ip t out meta mark set 0x10
            add rule ip t out meta mark set meta mark | 0x4000
            add rule ip t out meta mark set meta mark ^ 0x10
            add rule ip t out meta mark & 0x4010 == 0x4000 meta mark set meta mark & 0xff00
            """);
        var o = Assert.Single(Trace(m, Tcp("172.30.0.11", "1.1.1.1", 80, TraceOrigin.Local)).Outcomes);
        Assert.Equal(0x4000u, o.Mark);
    }

    [Fact]
    public void Ipv6_packets_see_only_inet_tables()
    {
        var m = Model(KubeProxy, Policy);
        var p = new TracePacket(IPAddress.Parse("fd00::1"), IPAddress.Parse("fd00::2"), "tcp", 1, 80, TraceOrigin.Forwarded);
        var o = Assert.Single(new NftTracer(m, s_node).Trace(p).Outcomes);
        Assert.Equal(TraceVerdict.Accept, o.Verdict);
        Assert.All(o.Steps.Where(s => s.Kind == TraceStepKind.Chain), s => Assert.Equal("inet trellis-policy", s.Table));
        Assert.Equal("meta nfproto ipv6 accept comment \"policy is IPv4-only here\"", o.DecidingRule!.Rule);
    }

    [Fact]
    public void Icmp_has_no_ports_so_port_matches_fail()
    {
        var p = new TracePacket(IPAddress.Parse("10.244.1.3"), IPAddress.Parse("10.96.0.10"), "icmp", 0, 0, TraceOrigin.Forwarded);
        var o = Assert.Single(Trace(Model(KubeProxy), p).Outcomes);
        // Not DNATed (no service port), then refused by cluster-ips-check as traffic to a ClusterIP it does not serve.
        Assert.Equal(TraceVerdict.Reject, o.Verdict);
        Assert.Equal("10.96.0.10:0", Dest(o));
    }

    [Theory]
    [InlineData("gre", 1, 1, "Protocol")]
    [InlineData("tcp", -1, 1, "SourcePort")]
    [InlineData("tcp", 1, 70000, "DestinationPort")]
    public void Bad_packets_are_argument_errors_naming_the_field(string proto, int sport, int dport, string field)
    {
        var p = new TracePacket(IPAddress.Parse("10.0.0.1"), IPAddress.Parse("10.0.0.2"), proto, sport, dport, TraceOrigin.Forwarded);
        var e = Assert.Throws<ArgumentException>(() => Trace(Model(KubeProxy), p));
        Assert.Contains(field, e.Message, StringComparison.Ordinal);
        var mixed = new TracePacket(IPAddress.Parse("10.0.0.1"), IPAddress.Parse("fd00::1"), "tcp", 1, 1, TraceOrigin.Forwarded);
        Assert.Contains("IP versions", Assert.Throws<ArgumentException>(() => Trace(Model(KubeProxy), mixed)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Second_nat_chain_at_a_hook_is_skipped_once_one_bound()
    {
        var m = Model("""
            add table ip a
            add chain ip a n { type nat hook prerouting priority -100 ; }
            add rule ip a n meta l4proto tcp dnat to 10.1.1.1:81
            add table ip b
            add chain ip b n { type nat hook prerouting priority -50 ; }
            add rule ip b n meta l4proto tcp dnat to 10.2.2.2:82
            """);
        var o = Assert.Single(Trace(m, Tcp("10.0.0.1", "10.0.0.2", 80)).Outcomes);
        Assert.Equal("10.1.1.1:81", Dest(o));
        Assert.Contains(o.Steps, s => s.Kind == TraceStepKind.Skipped && s.Table == "ip b");
    }

    [NftFact]
    public void Traced_rulesets_are_accepted_by_real_nft()
    {
        foreach (var (name, text) in new[] { ("kube-proxy", KubeProxy), ("policy", Policy), ("both", KubeProxy + "\n" + Policy) })
        {
            var (code, output) = NftCli.Check(text);
            Assert.True(code == 0, $"nft -c -f refused the {name} ruleset:\n{output}");
        }
        // And the model's canonical Dump of them is real nft, too.
        var (c2, o2) = NftCli.Check(Model(KubeProxy, Policy).Dump());
        Assert.True(c2 == 0, o2);
    }
}
