using System.Net;
using System.Text.RegularExpressions;
using Trellis.Core.NodeFirewall;
using Trellis.Core.Tests.Routing;

namespace Trellis.Core.Tests.NodeFirewall;

public partial class NodeFirewallCompilerTests
{
    private static NodeFirewallInput Lab(int nodes = 3, int? vxlanPort = 8472) => new()
    {
        ClusterCidrs = [IPNetwork.Parse("10.244.0.0/16")],
        PodCidrs = [IPNetwork.Parse("10.244.1.0/24")],
        NodeIps = [.. Enumerable.Range(1, nodes).Select(i => IPAddress.Parse($"172.30.0.{10 + i}"))],
        VxlanPort = vxlanPort,
    };

    private static IEnumerable<string> Rules(string text) =>
        text.Split('\n').Where(l => l.StartsWith("add rule ", StringComparison.Ordinal));

    [Fact]
    public void With_ipv6_absent_no_rule_names_ip6_and_the_ipv6_sets_stay_empty()
    {
        string text = NodeFirewallCompiler.Compile(Lab());
        Assert.DoesNotContain(Rules(text), r => r.Contains(" ip6 ", StringComparison.Ordinal) || r.Contains("-v6", StringComparison.Ordinal));
        Assert.Contains("add set inet trellis-node nodes-v6 { type ipv6_addr ; }\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("add element inet trellis-node nodes-v6", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Host_gw_has_no_vxlan_rule_but_the_same_chains_and_sets()
    {
        string vxlan = NodeFirewallCompiler.Compile(Lab());
        string hostGw = NodeFirewallCompiler.Compile(Lab(vxlanPort: null));
        Assert.DoesNotContain(Rules(hostGw), r => r.Contains("dport", StringComparison.Ordinal));
        Assert.Equal(Schema(vxlan), Schema(hostGw));
    }

    [Fact]
    public void Every_golden_case_declares_the_same_objects()
    {
        var schemas = GoldenFiles.CaseNames("nodefirewall")
            .Select(name => Schema(NodeFirewallCompiler.Compile(NodeFirewallGoldenTests.ReadInput(name).Input)))
            .Distinct()
            .ToList();
        Assert.Single(schemas);
    }

    [Fact]
    public void Node_count_changes_only_set_elements()
    {
        string three = NodeFirewallCompiler.Compile(Lab(3));
        string fifty = NodeFirewallCompiler.Compile(Lab(50));
        static string WithoutElements(string t) => string.Join('\n', t.Split('\n').Where(l => !l.StartsWith("add element", StringComparison.Ordinal)));
        Assert.Equal(WithoutElements(three), WithoutElements(fifty));
        Assert.Contains("172.30.0.60 }", fifty, StringComparison.Ordinal);
    }

    [Fact]
    public void The_vxlan_drop_comes_after_the_node_accepts_and_is_counted()
    {
        var input = Rules(NodeFirewallCompiler.Compile(Lab())).Where(r => r.Contains(" input ", StringComparison.Ordinal)).ToList();
        Assert.Equal(
        [
            "add rule inet trellis-node input udp dport 8472 ip saddr @nodes accept",
            "add rule inet trellis-node input udp dport 8472 counter name \"vxlan-dropped\" drop",
        ], input);
    }

    [Fact]
    public void Masquerade_matches_only_this_nodes_pods_leaving_the_cluster()
    {
        var masq = Assert.Single(Rules(NodeFirewallCompiler.Compile(Lab())), r => r.Contains("masquerade", StringComparison.Ordinal));
        Assert.Contains("ip saddr @pod-cidrs ip daddr != @cluster-cidrs", masq, StringComparison.Ordinal);
        Assert.DoesNotContain(Rules(NodeFirewallCompiler.Compile(Lab() with { Masquerade = false })), r => r.Contains("masquerade", StringComparison.Ordinal));
    }

    [Fact]
    public void Nested_and_repeated_cidrs_collapse_so_interval_sets_never_overlap()
    {
        var text = NodeFirewallCompiler.Compile(Lab() with
        {
            ClusterCidrs = [IPNetwork.Parse("10.244.0.0/16"), IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("10.244.0.0/16"), IPNetwork.Parse("192.168.0.0/16")],
        });
        Assert.Contains("add element inet trellis-node cluster-cidrs { 10.0.0.0/8, 192.168.0.0/16 }\n", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10.245.1.0/24", "podCIDRs: 10.245.1.0/24 is not inside any cluster CIDR (10.244.0.0/16)")]
    [InlineData("10.0.0.0/8", "podCIDRs: 10.0.0.0/8 is not inside any cluster CIDR (10.244.0.0/16)")]
    [InlineData("fd00::/64", "podCIDRs: fd00::/64 is not inside any cluster CIDR (10.244.0.0/16)")]
    public void A_pod_cidr_outside_the_cluster_is_refused_as_it_would_masquerade_pod_traffic(string pod, string error)
    {
        var input = Lab() with { PodCidrs = [IPNetwork.Parse(pod)] };
        Assert.Equal(error, Assert.Single(NodeFirewallCompiler.Validate(input)));
        var e = Assert.Throws<ArgumentException>(() => NodeFirewallCompiler.Compile(input));
        Assert.Contains(error, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65536)]
    public void A_bad_port_is_refused(int port) =>
        Assert.StartsWith("vxlanPort: ", Assert.Single(NodeFirewallCompiler.Validate(Lab(vxlanPort: port))), StringComparison.Ordinal);

    [NftFact]
    public void Only_registered_nodes_get_through_to_the_vxlan_port_and_drops_are_counted_across_syncs()
    {
        // In a fresh netns: loopback stands in for the underlay. First 127.0.0.1 is not a registered node, so
        // a datagram to 8472 is dropped and counted; a refill keeps the count; once registered it passes.
        var outsider = new NodeFirewallInput { ClusterCidrs = [IPNetwork.Parse("10.244.0.0/16")], NodeIps = [IPAddress.Parse("127.0.0.2")] };
        var member = outsider with { NodeIps = [IPAddress.Parse("127.0.0.1"), IPAddress.Parse("127.0.0.2")] };
        var (code, output) = Nft.InFreshNetns(
            """
            set -e
            ip link set lo up
            count() { nft list counter inet trellis-node vxlan-dropped | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }
            send() { printf x > /dev/udp/127.0.0.1/8472; }
            nft -f "$1"; send; echo "outsider=$(count)"
            nft -f "$1"; echo "after-refill=$(count)"
            nft -f "$2"; send; echo "member=$(count)"
            """, NodeFirewallCompiler.Compile(outsider), NodeFirewallCompiler.Compile(member));
        Assert.True(code == 0, output);
        Assert.Equal("outsider=1\nafter-refill=1\nmember=1\n", output);
    }

    /// <summary>The declarations (counter, sets, chains), i.e. everything but flushes, elements and rules.</summary>
    private static string Schema(string text) =>
        string.Join('\n', text.Split('\n').Where(l => DeclarationRegex().IsMatch(l)));

    [GeneratedRegex("^add (table|counter|set|chain) ")]
    private static partial Regex DeclarationRegex();
}
