using System.Net;
using Trellis.Agent.Tests.Support;
using Trellis.Core.Routing;

namespace Trellis.Agent.Tests.Routing;

/// <summary>
/// The data path for real: after <see cref="Trellis.Agent.Routing.RoutingReconciler.Sync"/> on each node, a pod on
/// node 1 reaches a pod on node 2 over TCP and the server sees the client's pod IP (no NAT between pods).
/// </summary>
public sealed class DataPathTests
{
    [KernelFact]
    public async Task Vxlan_carries_pod_to_pod_tcp_with_the_pod_source_ip()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.Vxlan);

        var vx = Cmd.IpJson(c.Node1.Netns, "-d", "link", "show", "dev", "trellis.1")[0];
        var info = vx.GetProperty("linkinfo").GetProperty("info_data");
        Assert.Equal(1, info.GetProperty("id").GetInt32());
        Assert.Equal(8472, info.GetProperty("port").GetInt32());
        Assert.Equal("172.29.0.11", info.GetProperty("local").GetString());
        Assert.False(info.GetProperty("learning").GetBoolean());
        Assert.Equal(TestCluster.PodMtu, vx.GetProperty("mtu").GetInt32());
        Assert.Equal(MacAddress.ForNode("node-1").ToString(), vx.GetProperty("address").GetString());

        var route = Assert.Single(Cmd.IpJson(c.Node1.Netns, "route", "show", "10.250.2.0/24").EnumerateArray());
        Assert.Equal("10.250.2.0", route.GetProperty("gateway").GetString());
        Assert.Equal("trellis.1", route.GetProperty("dev").GetString());
        Assert.Contains(route.GetProperty("flags").EnumerateArray(), f => f.GetString() == "onlink");

        long sentBefore = VxlanPackets(c.Node1.Netns, "tx");
        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);
        // The exchange really went through the tunnel, not some other path.
        Assert.True(VxlanPackets(c.Node1.Netns, "tx") > sentBefore);
        Assert.True(VxlanPackets(c.Node2.Netns, "rx") > 0);
    }

    private static long VxlanPackets(string netns, string direction) =>
        Cmd.IpJson(netns, "-s", "link", "show", "dev", "trellis.1")[0].GetProperty("stats64").GetProperty(direction).GetProperty("packets").GetInt64();

    [KernelFact]
    public async Task HostGw_carries_pod_to_pod_tcp_with_the_pod_source_ip()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.HostGw);

        Assert.Null(c.Node1.Nl.LinkGetByName("trellis.1"));
        var route = Assert.Single(Cmd.IpJson(c.Node1.Netns, "route", "show", "10.250.2.0/24").EnumerateArray());
        Assert.Equal("172.29.0.12", route.GetProperty("gateway").GetString());
        Assert.Equal("eth0", route.GetProperty("dev").GetString());
        Assert.Equal(RoutingNames.TrellisRouteProtocol.ToString(System.Globalization.CultureInfo.InvariantCulture), route.GetProperty("protocol").GetString());

        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);
    }

    [KernelFact]
    public async Task Vxlan_with_direct_routing_routes_same_subnet_nodes_directly_and_the_rest_through_the_tunnel()
    {
        using var c = new TestCluster();
        // A third node on another L2 subnet (only in the inputs: no traffic goes to it).
        var far = new RouteNode("node-3", IPAddress.Parse("172.28.9.13"), IPNetwork.Parse("172.28.9.0/24"), IPNetwork.Parse("10.250.3.0/24"), MacAddress.ForNode("node-3"));
        foreach (var node in c.Nodes)
        {
            var result = node.Reconciler.Sync(c.Input(node, RoutingBackend.Vxlan, directRouting: true, peers: [c.Node1.RouteNode, c.Node2.RouteNode, far]));
            Assert.True(result.Converged && result.Apply.Succeeded, result.Describe());
            Assert.Empty(result.Compilation.Errors);
        }

        var direct = Assert.Single(Cmd.IpJson(c.Node1.Netns, "route", "show", "10.250.2.0/24").EnumerateArray());
        Assert.Equal("172.29.0.12", direct.GetProperty("gateway").GetString());
        Assert.Equal("eth0", direct.GetProperty("dev").GetString());
        var tunnelled = Assert.Single(Cmd.IpJson(c.Node1.Netns, "route", "show", "10.250.3.0/24").EnumerateArray());
        Assert.Equal("trellis.1", tunnelled.GetProperty("dev").GetString());
        var fdb = Cmd.BridgeJson(c.Node1.Netns, "fdb", "show", "dev", "trellis.1");
        var entry = Assert.Single(fdb.EnumerateArray(), e => e.TryGetProperty("dst", out _));
        Assert.Equal("172.28.9.13", entry.GetProperty("dst").GetString());
        Assert.Equal(MacAddress.ForNode("node-3").ToString(), entry.GetProperty("mac").GetString());

        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);
    }

    [KernelFact]
    public async Task Switching_backends_converges_without_leftovers_and_keeps_pods_talking()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.Vxlan);
        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);

        c.SyncAll(RoutingBackend.HostGw);
        Assert.Null(c.Node1.Nl.LinkGetByName("trellis.1"));
        Assert.Null(c.Node2.Nl.LinkGetByName("trellis.1"));
        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);

        c.SyncAll(RoutingBackend.Vxlan);
        Assert.Equal("trellis.1", Assert.Single(Cmd.IpJson(c.Node1.Netns, "route", "show", "10.250.2.0/24").EnumerateArray()).GetProperty("dev").GetString());
        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);
    }
}
