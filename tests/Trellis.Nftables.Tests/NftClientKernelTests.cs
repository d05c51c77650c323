using System.Net;
using Trellis.Core.NodeFirewall;
using Trellis.Netlink;
using Trellis.Nftables.Tests.Support;

namespace Trellis.Nftables.Tests;

/// <summary>The real nft, each test in its own trl-agt-*-nft namespace.</summary>
public sealed class NftClientKernelTests
{
    private static readonly NodeFirewallInput s_input = new()
    {
        ClusterCidrs = [IPNetwork.Parse("10.250.0.0/16")],
        PodCidrs = [IPNetwork.Parse("10.250.1.0/24")],
        NodeIps = [IPAddress.Parse("172.29.0.11"), IPAddress.Parse("172.29.0.12")],
    };

    [KernelFact]
    public void The_node_firewall_applies_and_lists_back()
    {
        using var t = new TestNetns();
        t.Client.Apply(NodeFirewallCompiler.Compile(s_input));

        string listed = t.Client.ListTable("inet", "trellis-node")!;
        Assert.Contains("set nodes {", listed, StringComparison.Ordinal);
        Assert.Contains("elements = { 172.29.0.11, 172.29.0.12 }", listed, StringComparison.Ordinal);
        Assert.Contains("udp dport 8472 counter name \"vxlan-dropped\" drop", listed, StringComparison.Ordinal);
        Assert.Contains("packets 0 bytes 0", listed, StringComparison.Ordinal);
        // The same table as nft itself lists it, run independently of the client.
        Assert.Equal(t.Nft("list", "table", "inet", "trellis-node").Stdout, listed);

        string stateless = t.Client.ListTable("inet", "trellis-node", stateless: true)!;
        Assert.DoesNotContain("packets", stateless, StringComparison.Ordinal);
        Assert.Equal(new NftCounter(0, 0), t.Client.ListCounter("inet", "trellis-node", NodeFirewallCompiler.VxlanDropCounter));

        // A refill with a node fewer leaves exactly the new set contents.
        t.Client.Apply(NodeFirewallCompiler.Compile(s_input with { NodeIps = [IPAddress.Parse("172.29.0.12")] }));
        Assert.Contains("elements = { 172.29.0.12 }", t.Client.ListTable("inet", "trellis-node"), StringComparison.Ordinal);
    }

    [KernelFact]
    public void A_bad_transaction_names_its_line_and_changes_nothing()
    {
        using var t = new TestNetns();
        t.Client.Apply(NodeFirewallCompiler.Compile(s_input));
        string before = t.Client.ListTable("inet", "trellis-node")!;

        // The refill of a different node list, with one bad rule at the end: the flush and every good line
        // before it must be rolled back with it.
        string good = NodeFirewallCompiler.Compile(s_input with { NodeIps = [IPAddress.Parse("172.29.0.99")] });
        const string Bad = "add rule inet trellis-node input ip saddr @no-such-set accept";
        string transaction = good + Bad + "\n";
        int badLine = good.Split('\n').Length; // good ends in '\n': its last "line" is the empty one Bad fills

        var e = Assert.Throws<NftException>(() => t.Client.Apply(transaction));

        Assert.Equal(badLine, e.Line);
        Assert.Equal(Bad, e.LineText);
        Assert.True(e.IsNotFound);
        Assert.False(e.IsAlreadyExists);
        Assert.Equal(1, e.ExitCode);
        Assert.Equal("nft -f -", e.Command);
        Assert.Contains($"line {badLine}", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, t.Client.ListTable("inet", "trellis-node"));
    }

    [KernelFact]
    public void Not_found_and_already_exists_are_told_apart()
    {
        using var t = new TestNetns();
        t.Client.Apply("add table inet trellis-test\n");

        var missing = Assert.Throws<NftException>(() => t.Client.Apply("delete table inet no-such-table\n"));
        Assert.True(missing.IsNotFound);
        Assert.Equal(1, missing.Line);

        var exists = Assert.Throws<NftException>(() => t.Client.Apply("create table inet trellis-test\n"));
        Assert.True(exists.IsAlreadyExists);
        Assert.False(exists.IsNotFound);

        var syntax = Assert.Throws<NftException>(() => t.Client.Apply("add table inet trellis-test\nadd rule inet trellis-test nonsense here\n"));
        Assert.False(syntax.IsNotFound);
        Assert.False(syntax.IsAlreadyExists);
        Assert.Equal(2, syntax.Line);

        Assert.Null(t.Client.ListTable("inet", "no-such-table"));
        Assert.Null(t.Client.ListCounter("inet", "trellis-test", "no-such-counter"));
    }

    [KernelFact]
    public void Check_validates_without_changing_anything()
    {
        using var t = new TestNetns();
        t.Client.Check(NodeFirewallCompiler.Compile(s_input));
        Assert.Null(t.Client.ListTable("inet", "trellis-node"));

        Assert.Throws<NftException>(() => t.Client.Check("add chain inet nosuch c\n"));
    }

    [KernelFact]
    public void Without_a_netns_path_nft_runs_in_the_calling_threads_namespace()
    {
        using var t = new TestNetns();
        var client = new NftClient();
        t.Ns.Run(() =>
        {
            // Guard: never let this client near the host's ruleset.
            using var current = NetNs.Current();
            Assert.Equal(t.Ns.Identity(), current.Identity());
            client.Apply("add table inet trellis-thread\n");
            Assert.NotNull(client.ListTable("inet", "trellis-thread"));
        });

        var (code, stdout, _) = t.Nft("list", "tables");
        Assert.Equal(0, code);
        Assert.Contains("table inet trellis-thread", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_nft_binary_is_an_NftException()
    {
        var client = new NftClient(new NftClientOptions { NftPath = "/nonexistent/nft" });

        var e = Assert.Throws<NftException>(() => client.Apply("add table inet x\n"));
        Assert.Contains("/nonexistent/nft", e.Message, StringComparison.Ordinal);
        Assert.Null(e.ExitCode);
    }

    [Theory]
    [InlineData("inet", "bad name")]
    [InlineData("inet", "")]
    [InlineData("nosuchfamily", "t")]
    public void Bad_family_or_name_is_refused_before_nft_runs(string family, string name)
    {
        var client = new NftClient(new NftClientOptions { NftPath = "/nonexistent/nft" });
        Assert.Throws<ArgumentException>(() => client.ListTable(family, name));
    }
}
