using System.Net;
using Trellis.Core.Routing;
using Trellis.Model;

namespace Trellis.Core.Tests.Routing;

public class RoutingDiffTests
{
    private static readonly MacAddress s_mac1 = MacAddress.Parse("0e:00:00:00:00:01");
    private static readonly MacAddress s_mac2 = MacAddress.Parse("0e:00:00:00:00:02");
    private static readonly MacAddress s_mac3 = MacAddress.Parse("0e:00:00:00:00:03");

    private static RouteNode Node(int i, MacAddress? mac = null, string subnet = "172.30.0.0/24", string? ip = null) =>
        new($"node-{i}", IPAddress.Parse(ip ?? $"172.30.0.{10 + i}"), IPNetwork.Parse(subnet), IPNetwork.Parse($"10.244.{i}.0/24"),
            mac ?? MacAddress.Parse($"0e:00:00:00:00:0{i}"));

    private static RoutingState Desired(RoutingBackend backend = RoutingBackend.Vxlan, params RouteNode[] peers) =>
        RouteCompiler.Compile(new RouteCompilerInput { Self = Node(1), UnderlayInterface = "eth0", Peers = peers, Backend = backend }).Desired!;

    private static readonly RouteSpec s_default = new(IPNetwork.Parse("0.0.0.0/0"), IPAddress.Parse("172.30.0.1"), "eth0") { Protocol = 3 };
    private static readonly RouteSpec s_connected = new(IPNetwork.Parse("172.30.0.0/24"), IPAddress.Parse("0.0.0.0"), "eth0") { Protocol = 2 };
    private static readonly RouteSpec s_bridge = new(IPNetwork.Parse("10.244.1.0/24"), IPAddress.Parse("0.0.0.0"), "trellis0") { Protocol = 2 };

    [Fact]
    public void Empty_node_gets_device_then_address_then_fdb_and_neighbours_before_routes()
    {
        var plan = RoutingDiff.Plan(Desired(peers: [Node(2), Node(3)]), RoutingState.Empty);
        Assert.Equal(
            """
            ip link add trellis.1 type vxlan id 1 local 172.30.0.11 dev eth0 dstport 8472 nolearning mtu 1450 address 0e:00:00:00:00:01 up
            ip addr add 10.244.1.0/32 dev trellis.1
            bridge fdb replace 0e:00:00:00:00:02 dev trellis.1 dst 172.30.0.12 self permanent
            bridge fdb replace 0e:00:00:00:00:03 dev trellis.1 dst 172.30.0.13 self permanent
            ip neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:02 dev trellis.1 nud permanent
            ip neigh replace 10.244.3.0 lladdr 0e:00:00:00:00:03 dev trellis.1 nud permanent
            ip route replace 10.244.2.0/24 via 10.244.2.0 dev trellis.1 onlink proto 201
            ip route replace 10.244.3.0/24 via 10.244.3.0 dev trellis.1 onlink proto 201

            """.ReplaceLineEndings("\n"), plan.Dump());
    }

    [Fact]
    public void Desired_equal_to_observed_gives_an_empty_plan()
    {
        var desired = Desired(peers: [Node(2), Node(3)]);
        var observed = desired with { Routes = [.. desired.Routes, s_default, s_connected, s_bridge] };
        Assert.True(RoutingDiff.Plan(desired, observed).IsEmpty);
    }

    [Fact]
    public void Observed_lists_in_another_order_still_give_an_empty_plan()
    {
        var desired = Desired(peers: [Node(2), Node(3), Node(4)]);
        var observed = desired with
        {
            Routes = [.. desired.Routes.Reverse()],
            Neighbours = [.. desired.Neighbours.Reverse()],
            Fdb = [.. desired.Fdb.Reverse()],
        };
        Assert.True(RoutingDiff.Plan(desired, observed).IsEmpty);
    }

    [Fact]
    public void A_node_that_left_loses_its_route_first_then_its_neighbour_and_fdb_entry()
    {
        var observed = Desired(peers: [Node(2), Node(3)]);
        var plan = RoutingDiff.Plan(Desired(peers: [Node(2)]), observed);
        Assert.Equal(
            """
            ip route del 10.244.3.0/24 via 10.244.3.0 dev trellis.1 onlink proto 201
            ip neigh del 10.244.3.0 dev trellis.1
            bridge fdb del 0e:00:00:00:00:03 dev trellis.1 dst 172.30.0.13 self

            """.ReplaceLineEndings("\n"), plan.Dump());
    }

    [Fact]
    public void A_node_whose_underlay_address_changed_gets_its_fdb_entry_replaced_in_place()
    {
        var observed = Desired(peers: [Node(2)]);
        var plan = RoutingDiff.Plan(Desired(peers: [Node(2, ip: "172.30.0.99")]), observed);
        Assert.Equal("bridge fdb replace 0e:00:00:00:00:02 dev trellis.1 dst 172.30.0.99 self permanent\n", plan.Dump());
    }

    [Fact]
    public void A_node_whose_vtep_mac_changed_gets_new_entries_and_loses_the_old_fdb_entry()
    {
        var observed = Desired(peers: [Node(2)]);
        var plan = RoutingDiff.Plan(Desired(peers: [Node(2, mac: s_mac3)]), observed);
        Assert.Equal(
            """
            bridge fdb replace 0e:00:00:00:00:03 dev trellis.1 dst 172.30.0.12 self permanent
            ip neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:03 dev trellis.1 nud permanent
            bridge fdb del 0e:00:00:00:00:02 dev trellis.1 dst 172.30.0.12 self

            """.ReplaceLineEndings("\n"), plan.Dump());
    }

    [Fact]
    public void A_changed_owned_route_is_replaced_not_deleted()
    {
        var desired = Desired(RoutingBackend.HostGw, Node(2));
        var observed = desired with { Routes = [desired.Routes[0] with { Gateway = IPAddress.Parse("172.30.0.99") }] };
        Assert.Equal("ip route replace 10.244.2.0/24 via 172.30.0.12 dev eth0 proto 201\n", RoutingDiff.Plan(desired, observed).Dump());
    }

    [Fact]
    public void Routes_of_other_protocols_are_never_touched()
    {
        var foreign = new[]
        {
            s_default, s_connected, s_bridge,
            new RouteSpec(IPNetwork.Parse("10.244.9.0/24"), IPAddress.Parse("172.30.0.19"), "eth0") { Protocol = 4 },      // static
            new RouteSpec(IPNetwork.Parse("10.244.8.0/24"), IPAddress.Parse("10.244.8.0"), "trellis.1") { Protocol = 80 }, // Calico's, on our device
            new RouteSpec(IPNetwork.Parse("10.244.7.0/24"), IPAddress.Parse("172.30.0.17"), "eth0") { Protocol = 12 },     // BIRD
        };
        var desired = Desired(peers: [Node(2)]);
        var plan = RoutingDiff.Plan(desired, desired with { Routes = [.. desired.Routes, .. foreign] });
        Assert.True(plan.IsEmpty, plan.Dump());

        // Even with nothing desired (host-gw, no peers) they stay.
        var none = Desired(RoutingBackend.HostGw);
        plan = RoutingDiff.Plan(none, RoutingState.Empty with { Routes = foreign });
        Assert.True(plan.IsEmpty, plan.Dump());
    }

    [Fact]
    public void A_foreign_route_on_a_desired_destination_is_reported_not_overwritten()
    {
        var desired = Desired(RoutingBackend.HostGw, Node(2), Node(3));
        var squatter = new RouteSpec(IPNetwork.Parse("10.244.2.0/24"), IPAddress.Parse("172.30.0.50"), "eth0") { Protocol = 4 };
        var plan = RoutingDiff.Plan(desired, RoutingState.Empty with { Routes = [squatter] });
        Assert.Equal(
            """
            ip route replace 10.244.3.0/24 via 172.30.0.13 dev eth0 proto 201
            # conflict: route to 10.244.2.0/24 wanted via 172.30.0.12 dev eth0, but a route Trellis does not own (proto 4: 10.244.2.0/24 via 172.30.0.50 dev eth0 proto 4) holds it; left alone

            """.ReplaceLineEndings("\n"), plan.Dump());

        // A foreign route with another metric is a different route: no conflict.
        plan = RoutingDiff.Plan(desired, RoutingState.Empty with { Routes = [squatter with { Metric = 100 }] });
        Assert.Empty(plan.Conflicts);
        Assert.Equal(2, plan.Ops.Count);
    }

    [Fact]
    public void Dynamic_neighbours_are_the_kernels_unless_they_stand_where_a_permanent_one_belongs()
    {
        var desired = Desired(peers: [Node(2)]);
        var kernelCache = new NeighSpec("trellis.1", IPAddress.Parse("10.244.9.9"), s_mac3) { Permanent = false };
        var halfLearned = desired.Neighbours[0] with { Permanent = false };
        var onEth0 = new NeighSpec("eth0", IPAddress.Parse("172.30.0.1"), s_mac3);
        var plan = RoutingDiff.Plan(desired, desired with { Neighbours = [kernelCache, halfLearned, onEth0] });
        Assert.Equal("ip neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:02 dev trellis.1 nud permanent\n", plan.Dump());
    }

    [Fact]
    public void Permanent_entries_on_other_devices_are_not_ours()
    {
        var desired = Desired(peers: [Node(2)]);
        var observed = desired with
        {
            Neighbours = [.. desired.Neighbours, new NeighSpec("eth0", IPAddress.Parse("172.30.0.1"), s_mac3)],
            Fdb = [.. desired.Fdb, new FdbSpec("vxlan0", s_mac3, IPAddress.Parse("172.30.0.77"))],
            Addresses = [.. desired.Addresses, new AddressSpec("eth0", IPCidr.Parse("172.30.0.11/24"))],
        };
        Assert.True(RoutingDiff.Plan(desired, observed).IsEmpty);
    }

    [Fact]
    public void A_stale_address_goes_and_the_kernels_link_local_address_stays()
    {
        var desired = Desired(peers: [Node(2)]);
        var observed = desired with
        {
            Addresses =
            [
                new AddressSpec("trellis.1", IPCidr.Parse("10.244.7.0/32")),
                new AddressSpec("trellis.1", IPCidr.Parse("fe80::c00:ff:fe00:1/64")),
            ],
        };
        Assert.Equal(
            """
            ip addr add 10.244.1.0/32 dev trellis.1
            ip addr del 10.244.7.0/32 dev trellis.1

            """.ReplaceLineEndings("\n"), RoutingDiff.Plan(desired, observed).Dump());
    }

    [Fact]
    public void Mtu_mac_and_up_are_changed_in_place()
    {
        var desired = Desired(peers: [Node(2)]);
        var device = desired.Devices[0];
        var observed = desired with { Devices = [device with { Mtu = 1400, Mac = s_mac2, Up = false }] };
        Assert.Equal("ip link set trellis.1 mtu 1450 address 0e:00:00:00:00:01 up\n", RoutingDiff.Plan(desired, observed).Dump());
    }

    [Fact]
    public void A_device_with_another_vni_port_or_local_address_is_recreated_and_refilled()
    {
        var desired = Desired(peers: [Node(2)]);
        foreach (var wrong in new[]
        {
            desired.Devices[0] with { Port = 4789 },
            desired.Devices[0] with { Local = IPAddress.Parse("172.30.0.99") },
            desired.Devices[0] with { UnderlayDevice = "eth1" },
            desired.Devices[0] with { Learning = true },
        })
        {
            var plan = RoutingDiff.Plan(desired, desired with { Devices = [wrong] });
            Assert.IsType<LinkDeleteOp>(plan.Ops[0]);
            Assert.IsType<LinkAddOp>(plan.Ops[1]);
            // Everything that was on the old device is gone with it: re-added, never deleted.
            Assert.Equal(6, plan.Ops.Count);
            Assert.DoesNotContain(plan.Ops, o => o is RouteDeleteOp or NeighDeleteOp or FdbDeleteOp or AddressDeleteOp);
        }
    }

    [Fact]
    public void Switching_to_host_gw_deletes_the_device_and_leaves_its_contents_to_the_kernel()
    {
        var observed = Desired(peers: [Node(2)]);
        var plan = RoutingDiff.Plan(Desired(RoutingBackend.HostGw, Node(2)), observed);
        Assert.Equal(
            """
            ip link del trellis.1  # no VXLAN device wanted
            ip route replace 10.244.2.0/24 via 172.30.0.12 dev eth0 proto 201

            """.ReplaceLineEndings("\n"), plan.Dump());
    }

    [Fact]
    public void A_device_of_an_earlier_vni_is_deleted()
    {
        var desired = Desired(peers: [Node(2)]);
        var old = desired.Devices[0] with { Name = "trellis.7", Vni = 7 };
        var plan = RoutingDiff.Plan(desired, desired with { Devices = [old, desired.Devices[0]] });
        Assert.Equal("ip link del trellis.7  # replaced by trellis.1\n", plan.Dump());
    }

    [Fact]
    public void Links_that_only_look_like_ours_are_left_alone()
    {
        var desired = Desired(RoutingBackend.HostGw);
        var lookalike = new VxlanDeviceSpec("trellis.x", 1, 8472, IPAddress.Parse("172.30.0.11"), "eth0", 1450, s_mac1);
        var flannel = lookalike with { Name = "flannel.1" };
        Assert.True(RoutingDiff.Plan(desired, RoutingState.Empty with { Devices = [lookalike, flannel] }).IsEmpty);
    }

    [Fact]
    public void A_mac_with_two_remotes_keeps_the_wanted_one_and_loses_the_other()
    {
        var desired = Desired(peers: [Node(2)]);
        var extra = desired.Fdb[0] with { Destination = IPAddress.Parse("172.30.0.77") };
        var plan = RoutingDiff.Plan(desired, desired with { Fdb = [desired.Fdb[0], extra] });
        Assert.Equal("bridge fdb del 0e:00:00:00:00:02 dev trellis.1 dst 172.30.0.77 self\n", plan.Dump());
    }

    [Fact]
    public void More_than_one_desired_device_is_a_caller_bug()
    {
        var desired = Desired();
        Assert.Throws<ArgumentException>(() => RoutingDiff.Plan(desired with { Devices = [desired.Devices[0], desired.Devices[0] with { Name = "trellis.2" }] }, RoutingState.Empty));
    }

    public static TheoryData<string, string> Transitions()
    {
        var cases = GoldenFiles.CaseNames("routing");
        var data = new TheoryData<string, string>();
        foreach (var from in cases)
        {
            foreach (var to in cases)
            {
                data.Add(from, to);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Transitions))]
    public void Any_golden_state_converges_to_any_other_keeping_foreign_routes(string from, string to)
    {
        var a = RouteCompiler.Compile(RouteCompilerGoldenTests.ReadInput(GoldenFiles.Dir("routing", from, "input.json"))).Desired;
        var b = RouteCompiler.Compile(RouteCompilerGoldenTests.ReadInput(GoldenFiles.Dir("routing", to, "input.json"))).Desired;
        if (a is null || b is null)
        {
            return;
        }
        var docker = new RouteSpec(IPNetwork.Parse("192.168.99.0/24"), IPAddress.Parse("0.0.0.0"), "docker0") { Protocol = 2 };
        var foreign = new[] { s_default, s_connected, docker };
        var kernel = new FakeRoutingKernel();
        kernel.Set(RoutingState.Empty with { Routes = foreign });
        kernel.Apply(RoutingDiff.Plan(a, kernel.State));
        kernel.Apply(RoutingDiff.Plan(b, kernel.State));

        var plan = RoutingDiff.Plan(b, kernel.State);
        Assert.True(plan.IsEmpty, plan.Dump());
        var expected = b with { Routes = [.. b.Routes, .. foreign] };
        Assert.Equal(expected.Dump(), kernel.State.Dump());
    }
}
