using System.Net;
using System.Net.Sockets;
using Trellis.Agent.NodeFirewall;
using Trellis.Agent.Tests.Support;
using Trellis.Core.NodeFirewall;
using Trellis.Core.Routing;
using Trellis.Nftables;

namespace Trellis.Agent.Tests.NodeFirewall;

/// <summary>The <c>inet trellis-node</c> table applied in real node namespaces, with VXLAN traffic through it.</summary>
public sealed class NodeFirewallDataPathTests
{
    [KernelFact]
    public async Task Vxlan_from_a_node_passes_and_from_any_other_underlay_address_is_dropped_and_counted()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.Vxlan);
        var clients = new Dictionary<string, NftClient>();
        foreach (var node in c.Nodes)
        {
            var nft = new NftClient(new NftClientOptions { NetnsPath = node.NetnsPath });
            clients[node.Name] = nft;
            var result = new NodeFirewallReconciler(nft).Sync(Input(c, node));
            Assert.Equal(NodeFirewallOutcome.Applied, result.Outcome);
        }
        var node2 = clients["node-2"];

        // Encapsulated pod traffic from the peer node is accepted, and pods still see each other's pod IPs
        // (the masquerade rule leaves pod-to-pod alone).
        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);
        Assert.Equal(0, node2.ListCounter("inet", "trellis-node", NodeFirewallCompiler.VxlanDropCounter)!.Value.Packets);

        // A datagram to the VXLAN port from the underlay's own address, which is no node's, is dropped.
        using (var udp = c.UnderlayNs.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)))
        {
            udp.Bind(new IPEndPoint(TestCluster.OutsideIp, 0));
            udp.SendTo(new byte[50], new IPEndPoint(c.Node2.UnderlayIp, 8472));
        }
        var deadline = DateTime.UtcNow.AddSeconds(5);
        long dropped;
        while ((dropped = node2.ListCounter("inet", "trellis-node", NodeFirewallCompiler.VxlanDropCounter)!.Value.Packets) == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        Assert.Equal(1, dropped);

        // And pods still talk afterwards.
        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);
        Assert.Equal(1, node2.ListCounter("inet", "trellis-node", NodeFirewallCompiler.VxlanDropCounter)!.Value.Packets);
    }

    [KernelFact]
    public void A_second_sync_sends_nothing_and_drift_is_repaired()
    {
        using var c = new TestCluster(nodes: 1);
        var nft = new NftClient(new NftClientOptions { NetnsPath = c.Node1.NetnsPath });
        var reconciler = new NodeFirewallReconciler(nft);
        var input = Input(c, c.Node1);

        Assert.Equal(NodeFirewallOutcome.Applied, reconciler.Sync(input).Outcome);
        string applied = nft.ListTable("inet", "trellis-node", stateless: true)!;
        Assert.Equal(NodeFirewallOutcome.Unchanged, reconciler.Sync(input).Outcome);

        // Someone lets the underlay's own address in by hand; the next sync takes it out again.
        Cmd.Nft(c.Node1.Netns, "add", "element", "inet", "trellis-node", "nodes", "{ 172.29.0.1 }");
        Assert.Equal(NodeFirewallOutcome.Applied, reconciler.Sync(input).Outcome);
        Assert.Equal(applied, nft.ListTable("inet", "trellis-node", stateless: true));

        // The table deleted by hand comes back whole.
        Cmd.Nft(c.Node1.Netns, "delete", "table", "inet", "trellis-node");
        Assert.Equal(NodeFirewallOutcome.Applied, reconciler.Sync(input).Outcome);
        Assert.Equal(applied, nft.ListTable("inet", "trellis-node", stateless: true));

        // Definitions that differ from the compiled ones, as an older version might have left them: a base
        // chain's priority ("add" fails with "Operation not supported") and a set's type ("File exists").
        // Either way the reconciler re-creates the table in one transaction.
        Cmd.Nft(c.Node1.Netns, "delete", "table", "inet", "trellis-node");
        Cmd.Nft(c.Node1.Netns, "add", "table", "inet", "trellis-node");
        Cmd.Nft(c.Node1.Netns, "add", "chain", "inet", "trellis-node", "input", "{ type filter hook input priority 10 ; policy accept ; }");
        Assert.Equal(NodeFirewallOutcome.Recreated, reconciler.Sync(input).Outcome);
        Assert.Equal(applied, nft.ListTable("inet", "trellis-node", stateless: true));

        Cmd.Nft(c.Node1.Netns, "delete", "table", "inet", "trellis-node");
        Cmd.Nft(c.Node1.Netns, "add", "table", "inet", "trellis-node");
        Cmd.Nft(c.Node1.Netns, "add", "set", "inet", "trellis-node", "nodes", "{ type ipv4_addr ; flags interval ; }");
        Assert.Equal(NodeFirewallOutcome.Recreated, reconciler.Sync(input).Outcome);
        Assert.Equal(applied, nft.ListTable("inet", "trellis-node", stateless: true));
        Assert.Equal(NodeFirewallOutcome.Unchanged, reconciler.Sync(input).Outcome);
    }

    private static NodeFirewallInput Input(TestCluster c, TestNode node) => new()
    {
        ClusterCidrs = [TestCluster.ClusterCidr],
        PodCidrs = [node.PodCidr],
        NodeIps = c.Nodes.Select(n => n.UnderlayIp).ToList(),
        VxlanPort = 8472,
    };
}
