using System.Net;
using Trellis.Agent.Tests.Support;
using Trellis.Core.Routing;

namespace Trellis.Agent.Tests.Routing;

/// <summary>How <see cref="Trellis.Agent.Routing.RoutingReconciler"/> converges, repairs drift and leaves alone what it does not own.</summary>
public sealed class ConvergenceTests
{
    [KernelFact]
    public void Converges_from_scratch_and_a_second_sync_plans_nothing()
    {
        using var c = new TestCluster();
        var input = c.Input(c.Node1, RoutingBackend.Vxlan);

        var first = c.Node1.Reconciler.Sync(input);
        Assert.True(first.Converged, first.Describe());
        // device, its address, FDB, neighbour, route
        Assert.Equal(
            [typeof(LinkAddOp), typeof(AddressAddOp), typeof(FdbReplaceOp), typeof(NeighReplaceOp), typeof(RouteReplaceOp)],
            first.Plan!.Ops.Select(o => o.GetType()));
        Assert.Equal(5, first.Apply.Applied);
        Assert.Equal(first.Compilation.Desired!.Dump(), Trellis.Agent.Routing.RoutingReconciler.Owned(c.Node1.Reconciler.Observe()).Dump());

        var second = c.Node1.Reconciler.Sync(input);
        Assert.True(second.Plan!.IsEmpty, second.Describe());
        Assert.True(second.Converged);
        Assert.Equal(0, second.Apply.Applied);
    }

    [KernelFact]
    public async Task Route_neighbour_and_fdb_entry_deleted_by_hand_come_back_on_the_next_sync()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.Vxlan);
        string mac2 = MacAddress.ForNode("node-2").ToString();

        Cmd.Ip(c.Node1.Netns, "route", "del", "10.250.2.0/24");
        var result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.Vxlan));
        Assert.Equal("ip route replace 10.250.2.0/24 via 10.250.2.0 dev trellis.1 onlink proto 201\n", result.Plan!.Dump());
        Assert.True(result.Converged, result.Describe());
        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);

        Cmd.Ip(c.Node1.Netns, "neigh", "del", "10.250.2.0", "dev", "trellis.1");
        Cmd.Check("bridge", "-n", c.Node1.Netns, "fdb", "del", mac2, "dev", "trellis.1", "dst", "172.29.0.12", "self");
        result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.Vxlan));
        Assert.Equal([typeof(FdbReplaceOp), typeof(NeighReplaceOp)], result.Plan!.Ops.Select(o => o.GetType()));
        Assert.True(result.Converged, result.Describe());
        await Tcp.AssertPodsTalk(c, c.Node1, c.Node2);
    }

    [KernelFact]
    public void Removing_a_peer_deletes_its_route_neighbour_and_fdb_entry()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.Vxlan);
        string mac2 = MacAddress.ForNode("node-2").ToString();
        Assert.Contains(Cmd.BridgeJson(c.Node1.Netns, "fdb", "show", "dev", "trellis.1").EnumerateArray(), e => e.GetProperty("mac").GetString() == mac2);

        var result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.Vxlan, peers: [c.Node1.RouteNode]));

        Assert.True(result.Converged && result.Apply.Succeeded, result.Describe());
        Assert.Equal([typeof(RouteDeleteOp), typeof(NeighDeleteOp), typeof(FdbDeleteOp)], result.Plan!.Ops.Select(o => o.GetType()));
        Assert.Empty(Cmd.IpJson(c.Node1.Netns, "route", "show", "10.250.2.0/24").EnumerateArray());
        Assert.DoesNotContain(Cmd.IpJson(c.Node1.Netns, "neigh", "show", "dev", "trellis.1").EnumerateArray(), n => n.GetProperty("dst").GetString() == "10.250.2.0");
        Assert.DoesNotContain(Cmd.BridgeJson(c.Node1.Netns, "fdb", "show", "dev", "trellis.1").EnumerateArray(), e => e.GetProperty("mac").GetString() == mac2);
        // The device and its address stay: this node still has pods to be reached at.
        Assert.NotNull(c.Node1.Nl.LinkGetByName("trellis.1"));
        Assert.Contains(Cmd.IpJson(c.Node1.Netns, "addr", "show", "dev", "trellis.1")[0].GetProperty("addr_info").EnumerateArray(),
            a => a.GetProperty("local").GetString() == "10.250.1.0");
    }

    [KernelFact]
    public void Foreign_routes_and_links_are_left_alone_and_a_clash_is_reported_not_overwritten()
    {
        using var c = new TestCluster();
        string ns = c.Node1.Netns;
        Cmd.Ip(ns, "route", "add", "10.99.0.0/24", "via", "172.29.0.1", "dev", "eth0", "proto", "static");
        Cmd.Ip(ns, "route", "add", "10.250.2.0/24", "via", "172.29.0.1", "dev", "eth0", "proto", "static");
        Cmd.Ip(ns, "link", "add", "vxlan99", "type", "vxlan", "id", "99", "dstport", "4789", "local", "172.29.0.11", "dev", "eth0");

        var result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.HostGw));

        var conflict = Assert.Single(result.Plan!.Conflicts);
        Assert.Equal(IPNetwork.Parse("10.250.2.0/24"), conflict.Desired.Destination);
        Assert.Equal(4, conflict.Foreign.Protocol);
        Assert.False(result.Converged);
        var clash = Assert.Single(Cmd.IpJson(ns, "route", "show", "10.250.2.0/24").EnumerateArray());
        Assert.Equal("172.29.0.1", clash.GetProperty("gateway").GetString());
        Assert.Equal("static", clash.GetProperty("protocol").GetString());
        Assert.Equal("static", Assert.Single(Cmd.IpJson(ns, "route", "show", "10.99.0.0/24").EnumerateArray()).GetProperty("protocol").GetString());
        Assert.NotNull(c.Node1.Nl.LinkGetByName("vxlan99"));
        Assert.NotNull(c.Node1.Nl.LinkGetByName("trellis0"));

        // Once the operator removes the clashing route, the next sync writes ours; the unrelated one stays.
        Cmd.Ip(ns, "route", "del", "10.250.2.0/24", "proto", "static");
        result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.HostGw));
        Assert.True(result.Converged, result.Describe());
        Assert.Equal("172.29.0.12", Assert.Single(Cmd.IpJson(ns, "route", "show", "10.250.2.0/24").EnumerateArray()).GetProperty("gateway").GetString());
        Assert.Single(Cmd.IpJson(ns, "route", "show", "10.99.0.0/24").EnumerateArray());
        Assert.NotNull(c.Node1.Nl.LinkGetByName("vxlan99"));
    }

    [KernelFact]
    public void A_host_gw_peer_off_the_L2_subnet_is_a_compile_error_and_gets_no_route()
    {
        using var c = new TestCluster();
        var far = new RouteNode("node-3", IPAddress.Parse("172.28.9.13"), IPNetwork.Parse("172.28.9.0/24"), IPNetwork.Parse("10.250.3.0/24"), null);

        var result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.HostGw, peers: [c.Node2.RouteNode, far]));

        var error = Assert.Single(result.Compilation.Errors);
        Assert.Equal("node-3", error.Node);
        Assert.Equal("underlayIP", error.Field);
        Assert.Contains("not on this node's L2 subnet", error.Message, StringComparison.Ordinal);
        Assert.True(result.Converged && result.Apply.Succeeded, result.Describe());
        Assert.Empty(Cmd.IpJson(c.Node1.Netns, "route", "show", "10.250.3.0/24").EnumerateArray());
        Assert.Single(Cmd.IpJson(c.Node1.Netns, "route", "show", "10.250.2.0/24").EnumerateArray());
    }

    [KernelFact]
    public void A_fatal_compile_error_changes_nothing()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.Vxlan);
        string before = Trellis.Agent.Routing.RoutingReconciler.Owned(c.Node1.Reconciler.Observe()).Dump();

        var broken = c.Input(c.Node1, RoutingBackend.Vxlan) with { Self = c.Node1.RouteNode with { VtepMac = null } };
        var result = c.Node1.Reconciler.Sync(broken);

        Assert.Null(result.Plan);
        Assert.False(result.Converged);
        Assert.Contains(result.Compilation.Errors, e => e.IsFatal && e.Field == "self.vtepMAC");
        Assert.Equal(before, Trellis.Agent.Routing.RoutingReconciler.Owned(c.Node1.Reconciler.Observe()).Dump());
    }

    [KernelFact]
    public void Device_drift_is_repaired_in_place_and_a_new_vni_recreates_the_device()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.Vxlan);
        string ns = c.Node1.Netns;
        Cmd.Ip(ns, "link", "set", "dev", "trellis.1", "mtu", "1400");
        Cmd.Ip(ns, "link", "set", "dev", "trellis.1", "address", "02:11:22:33:44:55");

        var result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.Vxlan));

        // The kernel flushed the device's neighbours, permanent ones too, when its MAC changed: both come back.
        var set = Assert.IsType<LinkSetOp>(result.Plan!.Ops[0]);
        Assert.True(set.SetMtu && set.SetMac && !set.SetUp);
        Assert.IsType<NeighReplaceOp>(Assert.Single(result.Plan.Ops.Skip(1)));
        Assert.True(result.Converged && result.Apply.Succeeded, result.Describe());
        var link = c.Node1.Nl.LinkGetByName("trellis.1")!;
        Assert.Equal(TestCluster.PodMtu, link.Mtu);
        Assert.True(link.IsUp);

        // A new VTEP MAC from the input: the reconciler's own MAC change flushes the neighbour it needs, and
        // the same sync puts it back.
        var newMac = MacAddress.Parse("02:aa:bb:cc:dd:01");
        result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.Vxlan) with { Self = c.Node1.RouteNode with { VtepMac = newMac } });
        Assert.True(result.Converged && result.Apply.Succeeded, result.Describe());
        Assert.Equal(newMac.ToString(), Cmd.IpJson(ns, "link", "show", "dev", "trellis.1")[0].GetProperty("address").GetString());
        Assert.Contains(Cmd.IpJson(ns, "neigh", "show", "dev", "trellis.1").EnumerateArray(), n => n.GetProperty("dst").GetString() == "10.250.2.0");

        Cmd.Ip(ns, "link", "set", "dev", "trellis.1", "down");
        result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.Vxlan));
        Assert.True(result.Converged, result.Describe());
        Assert.True(c.Node1.Nl.LinkGetByName("trellis.1")!.IsUp);

        result = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.Vxlan) with { Vni = 2 });
        Assert.True(result.Converged && result.Apply.Succeeded, result.Describe());
        Assert.Null(c.Node1.Nl.LinkGetByName("trellis.1"));
        Assert.Equal("trellis.2", Assert.Single(Cmd.IpJson(ns, "route", "show", "10.250.2.0/24").EnumerateArray()).GetProperty("dev").GetString());
    }

    [KernelFact]
    public void Apply_tolerates_what_is_already_done_and_carries_on_past_failures()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.Vxlan);
        var mac = MacAddress.Parse("02:00:00:00:00:99");
        var plan = new RoutingPlan(
        [
            new AddressAddOp(new AddressSpec("trellis.1", Trellis.Model.IPCidr.Parse("10.250.1.0/32"))), // exists
            new RouteReplaceOp(new RouteSpec(IPNetwork.Parse("10.250.7.0/24"), IPAddress.Parse("10.250.7.0"), "nosuchdev") { OnLink = true }), // fails
            new NeighDeleteOp(new NeighSpec("trellis.1", IPAddress.Parse("10.250.9.0"), mac)), // not there
            new FdbDeleteOp(new FdbSpec("trellis.1", mac, IPAddress.Parse("172.29.0.99"))), // not there
            new RouteDeleteOp(new RouteSpec(IPNetwork.Parse("10.250.8.0/24"), IPAddress.Parse("10.250.8.0"), "trellis.1")), // not there
            new LinkDeleteOp("trellis.77", "test"), // not there
            new RouteReplaceOp(new RouteSpec(IPNetwork.Parse("10.250.5.0/24"), IPAddress.Parse("172.29.0.12"), "eth0")), // applied
        ], []);

        var result = c.Node1.Reconciler.Apply(plan);

        Assert.Equal(1, result.Applied);
        Assert.Equal(5, result.AlreadyConverged);
        var error = Assert.Single(result.Errors);
        Assert.IsType<RouteReplaceOp>(error.Op);
        Assert.Contains("nosuchdev", error.ToString(), StringComparison.Ordinal);
        Assert.Equal("201", Assert.Single(Cmd.IpJson(c.Node1.Netns, "route", "show", "10.250.5.0/24").EnumerateArray()).GetProperty("protocol").GetString());

        // The stray protocol-201 route is Trellis'; the next sync removes it.
        var sync = c.Node1.Reconciler.Sync(c.Input(c.Node1, RoutingBackend.Vxlan));
        Assert.IsType<RouteDeleteOp>(Assert.Single(sync.Plan!.Ops));
        Assert.True(sync.Converged, sync.Describe());
    }

    [KernelFact]
    public void Observe_reads_the_device_as_the_compiler_writes_it()
    {
        using var c = new TestCluster();
        c.SyncAll(RoutingBackend.Vxlan);

        var observed = c.Node1.Reconciler.Observe();

        var device = Assert.Single(observed.Devices);
        Assert.Equal(new VxlanDeviceSpec("trellis.1", 1, 8472, IPAddress.Parse("172.29.0.11"), "eth0", TestCluster.PodMtu, MacAddress.ForNode("node-1")), device);
        // Foreign routes are observed too (the diff needs them to see clashes), with their protocol.
        Assert.Contains(observed.Routes, r => r.Destination == IPNetwork.Parse("172.29.0.0/24") && r.Protocol == 2 && !r.IsOwned);
    }

    [KernelFact]
    public void The_underlay_interface_of_the_input_must_be_the_reconcilers()
    {
        using var c = new TestCluster(nodes: 1);
        var input = c.Input(c.Node1, RoutingBackend.Vxlan) with { UnderlayInterface = "eth1" };

        var e = Assert.Throws<ArgumentException>(() => c.Node1.Reconciler.Sync(input));
        Assert.Contains("'eth1'", e.Message, StringComparison.Ordinal);
        Assert.Null(c.Node1.Nl.LinkGetByName("trellis.1"));
        Assert.Throws<ArgumentException>(() => new Trellis.Agent.Routing.RoutingReconciler(c.Node1.Nl, "bad name!"));
        Assert.Throws<ArgumentNullException>(() => new Trellis.Agent.Routing.RoutingReconciler(null!, "eth0"));
    }
}
