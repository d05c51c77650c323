using System.Net;
using Trellis.Agent.NodeFirewall;
using Trellis.Core.NodeFirewall;
using Trellis.Nftables;

namespace Trellis.Agent.Tests.NodeFirewall;

/// <summary>The reconciler's decisions against <see cref="FakeNftClient"/>: no root needed.</summary>
public sealed class NodeFirewallReconcilerTests
{
    private static readonly NodeFirewallInput s_input = new()
    {
        ClusterCidrs = [IPNetwork.Parse("10.250.0.0/16")],
        PodCidrs = [IPNetwork.Parse("10.250.1.0/24")],
        NodeIps = [IPAddress.Parse("172.29.0.11"), IPAddress.Parse("172.29.0.12")],
    };

    [Fact]
    public void Applies_the_compiled_refill_then_skips_while_nothing_changed()
    {
        var fake = new FakeNftClient();
        var reconciler = new NodeFirewallReconciler(fake);

        var first = reconciler.Sync(s_input);
        Assert.Equal(NodeFirewallOutcome.Applied, first.Outcome);
        Assert.Equal(NodeFirewallCompiler.Compile(s_input), fake.Dump());
        Assert.Equal(fake.Dump(), first.Transaction);

        Assert.Equal(NodeFirewallOutcome.Unchanged, reconciler.Sync(s_input).Outcome);
        Assert.Single(fake.Transactions);

        var changed = s_input with { NodeIps = [IPAddress.Parse("172.29.0.11")] };
        Assert.Equal(NodeFirewallOutcome.Applied, reconciler.Sync(changed).Outcome);
        Assert.Equal(NodeFirewallCompiler.Compile(changed), fake.Dump());
    }

    [Fact]
    public void Drift_in_the_listed_table_is_repaired()
    {
        var fake = new FakeNftClient();
        var reconciler = new NodeFirewallReconciler(fake);
        reconciler.Sync(s_input);

        fake.SetTable("inet", "trellis-node", "table inet trellis-node { edited by hand }");
        Assert.Equal(NodeFirewallOutcome.Applied, reconciler.Sync(s_input).Outcome);

        fake.SetTable("inet", "trellis-node", null);
        Assert.Equal(NodeFirewallOutcome.Applied, reconciler.Sync(s_input).Outcome);
        Assert.Equal(3, fake.Transactions.Count);
    }

    [Fact]
    public void File_exists_on_refill_recreates_the_table()
    {
        var fake = new FakeNftClient();
        fake.FailNextApply(new NftException("nft -f -", 1,
            [new NftError(9, 19, 23, "Could not process rule: File exists", "add chain inet trellis-node input { … }")], ""));

        var result = new NodeFirewallReconciler(fake).Sync(s_input);

        Assert.Equal(NodeFirewallOutcome.Recreated, result.Outcome);
        Assert.Equal(NodeFirewallCompiler.Compile(s_input, NftApplyMode.Recreate), fake.Dump());
        Assert.Contains("delete table inet trellis-node\n", fake.Dump(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_apply_propagates_and_the_next_sync_applies_again()
    {
        var fake = new FakeNftClient();
        var reconciler = new NodeFirewallReconciler(fake);
        reconciler.Sync(s_input);
        var changed = s_input with { NodeIps = [IPAddress.Parse("172.29.0.13")] };
        fake.FailNextApply(new NftException("nft -f -", 1, [new NftError(3, 1, 5, "Could not process rule: No buffer space available", "x")], ""));

        Assert.Throws<NftException>(() => reconciler.Sync(changed));
        Assert.Equal(NodeFirewallOutcome.Applied, reconciler.Sync(changed).Outcome);
        // And after the failure the old input is not mistaken for "unchanged" either.
        Assert.Equal(NodeFirewallOutcome.Applied, reconciler.Sync(s_input).Outcome);
    }

    [Fact]
    public void Invalid_input_is_rejected_without_touching_the_table()
    {
        var fake = new FakeNftClient();
        var bad = s_input with { PodCidrs = [IPNetwork.Parse("192.168.0.0/24")] };

        var result = new NodeFirewallReconciler(fake).Sync(bad);

        Assert.Equal(NodeFirewallOutcome.Rejected, result.Outcome);
        Assert.Contains(result.Errors, e => e.StartsWith("podCIDRs:", StringComparison.Ordinal));
        Assert.Empty(fake.Transactions);
        Assert.Equal(0, fake.ListCount);
    }
}
