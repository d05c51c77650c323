using System.Net;
using Trellis.Core.Routing;

namespace Trellis.Core.Tests.Routing;

public class RouteCompilerTests
{
    private static RouteNode Self(string? mac = "0e:00:00:00:00:01") =>
        new("node-1", IPAddress.Parse("172.30.0.11"), IPNetwork.Parse("172.30.0.0/24"), IPNetwork.Parse("10.244.1.0/24"),
            mac is null ? null : MacAddress.Parse(mac));

    [Theory]
    [InlineData(RoutingBackend.Vxlan, false, 1500, 1450)]
    [InlineData(RoutingBackend.Vxlan, true, 1500, 1450)]
    [InlineData(RoutingBackend.HostGw, false, 1500, 1500)]
    [InlineData(RoutingBackend.Vxlan, false, 9000, 8950)]
    [InlineData(RoutingBackend.HostGw, false, 9000, 9000)]
    public void Pod_mtu_leaves_room_for_vxlan_whenever_any_traffic_may_be_encapsulated(RoutingBackend backend, bool direct, int underlay, int expected)
    {
        var result = RouteCompiler.Compile(new RouteCompilerInput
        {
            Self = Self(), UnderlayInterface = "eth0", Backend = backend, DirectRouting = direct, UnderlayMtu = underlay,
        });
        Assert.Equal(expected, result.PodMtu);
        if (result.Desired!.Devices.Count > 0)
        {
            Assert.Equal(expected, result.Desired.Devices[0].Mtu);
        }
    }

    [Fact]
    public void Host_gw_needs_no_vtep_mac_and_makes_no_device()
    {
        var result = RouteCompiler.Compile(new RouteCompilerInput { Self = Self(mac: null), UnderlayInterface = "eth0", Backend = RoutingBackend.HostGw });
        Assert.True(result.Succeeded);
        Assert.Empty(result.Desired!.Devices);
        Assert.Empty(result.Desired.Addresses);
    }

    [Fact]
    public void Direct_routing_with_host_gw_is_refused_as_a_setting()
    {
        var result = RouteCompiler.Compile(new RouteCompilerInput { Self = Self(), UnderlayInterface = "eth0", Backend = RoutingBackend.HostGw, DirectRouting = true });
        Assert.False(result.Succeeded);
        Assert.Equal("directRouting", Assert.Single(result.Errors).Field);
    }

    [Theory]
    [InlineData(1, "trellis.1")]
    [InlineData(9_999_999, "trellis.9999999")]
    public void Device_name_is_trellis_dot_vni_and_fits_ifnamsiz(int vni, string name)
    {
        var result = RouteCompiler.Compile(new RouteCompilerInput { Self = Self(), UnderlayInterface = "eth0", Vni = vni });
        Assert.Equal(name, result.Desired!.Devices[0].Name);
        Assert.True(name.Length <= 15);
        Assert.True(RoutingNames.IsVxlanDevice(name));
    }

    [Theory]
    [InlineData("trellis.1", true)]
    [InlineData("trellis.42", true)]
    [InlineData("trellis.", false)]
    [InlineData("trellis0", false)]
    [InlineData("trellis.1a", false)]
    [InlineData("flannel.1", false)]
    public void Owned_device_names(string name, bool owned) => Assert.Equal(owned, RoutingNames.IsVxlanDevice(name));

    [Fact]
    public void A_peer_error_costs_only_that_peer_its_route()
    {
        var good = new RouteNode("node-2", IPAddress.Parse("172.30.0.12"), null, IPNetwork.Parse("10.244.2.0/24"), MacAddress.Parse("0e:00:00:00:00:02"));
        var bad = new RouteNode("node-3", IPAddress.Parse("172.30.0.13"), null, IPNetwork.Parse("10.244.3.0/24"), null);
        var result = RouteCompiler.Compile(new RouteCompilerInput { Self = Self(), UnderlayInterface = "eth0", Peers = [good, bad] });
        Assert.True(result.Succeeded);
        var error = Assert.Single(result.Errors);
        Assert.Equal("node-3", error.Node);
        Assert.False(error.IsFatal);
        Assert.Equal(IPNetwork.Parse("10.244.2.0/24"), Assert.Single(result.Desired!.Routes).Destination);
    }

    [Fact]
    public void Every_route_carries_the_trellis_protocol()
    {
        var peers = Enumerable.Range(2, 50).Select(i =>
            new RouteNode($"node-{i}", IPAddress.Parse($"172.30.{i % 2}.{i}"), null, IPNetwork.Parse($"10.244.{i}.0/24"), MacAddress.ForNode($"node-{i}"))).ToList();
        var self = Self() with { UnderlaySubnet = IPNetwork.Parse("172.30.0.0/24") };
        var result = RouteCompiler.Compile(new RouteCompilerInput { Self = self, UnderlayInterface = "eth0", Peers = peers, DirectRouting = true });
        Assert.Empty(result.Errors);
        Assert.Equal(50, result.Desired!.Routes.Count);
        Assert.All(result.Desired.Routes, r => Assert.Equal(RoutingNames.TrellisRouteProtocol, r.Protocol));
        Assert.Equal(25, result.Desired.Routes.Count(r => r.Device == "eth0"));   // even i: same /24, direct
        Assert.Equal(25, result.Desired.Fdb.Count);                               // odd i: encapsulated
    }
}
