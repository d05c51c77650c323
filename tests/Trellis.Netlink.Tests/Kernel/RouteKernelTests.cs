using System.Net;
using System.Net.Sockets;
using Trellis.Model;
using Trellis.Netlink.Tests.Support;

namespace Trellis.Netlink.Tests.Kernel;

public sealed class RouteKernelTests
{
    /// <summary>A namespace with an up veth pair; trl-r0 has 10.0.0.1/24 and fd00::1/64.</summary>
    private static (TestNetns Ns, int Index) Setup()
    {
        var t = new TestNetns();
        try
        {
            var veth = t.Nl.LinkAddVeth("trl-r0", "trl-r1");
            t.Nl.LinkSetUp(veth.Index);
            t.Nl.LinkSetUp(t.Nl.LinkGetByName("trl-r1")!.Index);
            t.Nl.AddrAdd(veth.Index, IPCidr.Parse("10.0.0.1/24"));
            t.Nl.AddrAdd(veth.Index, IPCidr.Parse("fd00::1/64"), new AddrOptions { NoDad = true });
            return (t, veth.Index);
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    [KernelFact]
    public void Gateway_route_with_metric_and_protocol()
    {
        var (t, index) = Setup();
        using var _ = t;
        var route = new Route
        {
            Destination = IPNetwork.Parse("10.1.0.0/16"),
            Gateway = IPAddress.Parse("10.0.0.2"),
            OutIndex = index,
            Priority = 50,
            Protocol = RouteProtocols.Static,
        };
        t.Nl.RouteAdd(route);
        var listed = Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Destination == route.Destination);
        Assert.Equal(route with { Family = AddressFamily.InterNetwork }, listed);

        var json = Cmd.IpJson(t.Name, "route", "show", "10.1.0.0/16")[0];
        Assert.Equal("10.0.0.2", json.GetProperty("gateway").GetString());
        Assert.Equal(50, json.GetProperty("metric").GetInt32());
        Assert.Equal("static", json.GetProperty("protocol").GetString());

        var duplicate = Assert.Throws<NetlinkException>(() => t.Nl.RouteAdd(route));
        Assert.True(duplicate.IsExists);
        Assert.StartsWith("RTM_NEWROUTE route 10.1.0.0/16 via 10.0.0.2", duplicate.Message, StringComparison.Ordinal);

        // Delete with only what `ip route del 10.1.0.0/16 metric 50` would give.
        t.Nl.RouteDel(new Route { Destination = route.Destination, Priority = 50 });
        Assert.DoesNotContain(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Destination == route.Destination);
        var missing = Assert.Throws<NetlinkException>(() => t.Nl.RouteDel(route));
        Assert.True(missing.IsNotFound, missing.Message);
    }

    [KernelFact]
    public void Onlink_gateway_outside_every_prefix()
    {
        var (t, index) = Setup();
        using var _ = t;
        var route = new Route { Destination = IPNetwork.Parse("10.4.0.0/24"), Gateway = IPAddress.Parse("192.168.99.1"), OutIndex = index, OnLink = true };
        var withoutOnlink = Assert.Throws<NetlinkException>(() => t.Nl.RouteAdd(route with { OnLink = false }));
        Assert.Equal("ENETUNREACH", withoutOnlink.ErrnoName);
        t.Nl.RouteAdd(route);
        Assert.True(Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Destination == route.Destination).OnLink);
        var flags = Cmd.IpJson(t.Name, "route", "show", "10.4.0.0/24")[0].GetProperty("flags").EnumerateArray().Select(f => f.GetString());
        Assert.Contains("onlink", flags);
    }

    [KernelFact]
    public void Scope_link_source_table_and_mtu()
    {
        var (t, index) = Setup();
        using var _ = t;
        Assert.Empty(t.Nl.RouteList(AddressFamily.InterNetwork, 100)); // the table does not exist yet
        var route = new Route
        {
            Destination = IPNetwork.Parse("10.2.0.0/16"),
            OutIndex = index,
            Scope = RouteScope.Link,
            PreferredSource = IPAddress.Parse("10.0.0.1"),
            Table = 100,
            Mtu = 1400,
            Protocol = 77, // a custom protocol number (not named in /etc/iproute2/rt_protos) round-trips
        };
        t.Nl.RouteAdd(route);
        Assert.DoesNotContain(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Destination == route.Destination);
        var listed = Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork, 100));
        Assert.Equal(route with { Family = AddressFamily.InterNetwork }, listed);
        Assert.Contains(t.Nl.RouteList(AddressFamily.InterNetwork, null), r => r.Table == 100);
        Assert.Contains(t.Nl.RouteList(AddressFamily.InterNetwork, null), r => r.Table == RouteTables.Local);

        var json = Cmd.IpJson(t.Name, "route", "show", "table", "100")[0];
        Assert.Equal("10.0.0.1", json.GetProperty("prefsrc").GetString());
        Assert.Equal("link", json.GetProperty("scope").GetString());
        Assert.Equal("77", json.GetProperty("protocol").GetString());

        var badSource = Assert.Throws<NetlinkException>(() => t.Nl.RouteAdd(route with { Destination = IPNetwork.Parse("10.9.0.0/16"), PreferredSource = IPAddress.Parse("192.0.2.1") }));
        Assert.Equal("EINVAL", badSource.ErrnoName);
        Assert.Equal("Invalid prefsrc address", badSource.KernelMessage);

        t.Nl.RouteDel(listed);
        Assert.Empty(t.Nl.RouteList(AddressFamily.InterNetwork, 100));
    }

    [KernelFact]
    public void Replace_changes_the_route_in_place()
    {
        var (t, index) = Setup();
        using var _ = t;
        var route = new Route { Destination = IPNetwork.Parse("10.5.0.0/16"), Gateway = IPAddress.Parse("10.0.0.2"), OutIndex = index };
        t.Nl.RouteReplace(route); // creates
        t.Nl.RouteReplace(route with { Gateway = IPAddress.Parse("10.0.0.3") });
        var listed = Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Destination == route.Destination);
        Assert.Equal(IPAddress.Parse("10.0.0.3"), listed.Gateway);
    }

    [KernelFact]
    public void Default_blackhole_large_table_and_ipv6()
    {
        var (t, index) = Setup();
        using var _ = t;
        t.Nl.RouteAdd(new Route { Gateway = IPAddress.Parse("10.0.0.254"), OutIndex = index });
        var defaultRoute = Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Destination is null);
        Assert.Equal(IPAddress.Parse("10.0.0.254"), defaultRoute.Gateway);
        Assert.Equal("default", Cmd.IpJson(t.Name, "route", "show", "default")[0].GetProperty("dst").GetString());

        t.Nl.RouteAdd(new Route { Destination = IPNetwork.Parse("10.3.0.0/16"), Type = RouteTypes.Blackhole });
        Assert.Equal(RouteTypes.Blackhole, Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Destination == IPNetwork.Parse("10.3.0.0/16")).Type);
        Assert.Equal("blackhole", Cmd.IpJson(t.Name, "route", "show", "10.3.0.0/16")[0].GetProperty("type").GetString());

        t.Nl.RouteAdd(new Route { Destination = IPNetwork.Parse("10.6.0.0/16"), OutIndex = index, Scope = RouteScope.Link, Table = 1000 });
        Assert.Equal(1000, Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork, 1000)).Table);

        var v6 = new Route { Destination = IPNetwork.Parse("fd01::/64"), Gateway = IPAddress.Parse("fd00::2"), OutIndex = index, Priority = 10, Mtu = 1400 };
        t.Nl.RouteAdd(v6);
        var listed = Assert.Single(t.Nl.RouteList(AddressFamily.InterNetworkV6), r => r.Destination == v6.Destination);
        Assert.Equal(v6.Gateway, listed.Gateway);
        Assert.Equal(10, listed.Priority);
        Assert.Equal(1400, listed.Mtu);
        Assert.Equal("fd00::2", Cmd.IpJson(t.Name, "-6", "route", "show", "fd01::/64")[0].GetProperty("gateway").GetString());
        t.Nl.RouteDel(v6);
        Assert.DoesNotContain(t.Nl.RouteList(AddressFamily.InterNetworkV6), r => r.Destination == v6.Destination);
    }

    [KernelFact]
    public void Multipath_route_is_written_as_ip_shows_it_listed_back_replaced_and_deleted()
    {
        var (t, index) = Setup();
        using var _ = t;
        var route = new Route
        {
            Destination = IPNetwork.Parse("172.30.9.200/32"),
            Protocol = 202,
            MultiPath = [new NextHop(IPAddress.Parse("10.0.0.2"), index), new NextHop(IPAddress.Parse("10.0.0.3"), index, Weight: 3)],
        };
        t.Nl.RouteReplace(route);
        string shown = Cmd.Ip(t.Name, "route", "show", "proto", "202");
        Assert.StartsWith("172.30.9.200", shown, StringComparison.Ordinal);
        Assert.Contains("nexthop via 10.0.0.2 dev trl-r0 weight 1", shown, StringComparison.Ordinal);
        Assert.Contains("nexthop via 10.0.0.3 dev trl-r0 weight 3", shown, StringComparison.Ordinal);

        var listed = Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Protocol == 202);
        Assert.Null(listed.Gateway);
        Assert.Equal(route.MultiPath, listed.MultiPath);

        // Replaced by a single-path route, then deleted: the kernel keeps one route per destination here.
        t.Nl.RouteReplace(new Route { Destination = route.Destination, Gateway = IPAddress.Parse("10.0.0.4"), Protocol = 202 });
        listed = Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Protocol == 202);
        Assert.Equal(IPAddress.Parse("10.0.0.4"), listed.Gateway);
        Assert.Null(listed.MultiPath);
        t.Nl.RouteReplace(route);
        t.Nl.RouteDel(Assert.Single(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Protocol == 202));
        Assert.DoesNotContain(t.Nl.RouteList(AddressFamily.InterNetwork), r => r.Protocol == 202);
    }

    [Fact]
    public void Multipath_route_with_a_gateway_too_or_a_bad_weight_is_refused_before_sending()
    {
        var w = new Trellis.Netlink.Wire.NetlinkWriter();
        var hop = new NextHop(IPAddress.Parse("10.0.0.2"));
        var both = new Route { Destination = IPNetwork.Parse("10.9.0.0/16"), Gateway = IPAddress.Parse("10.0.0.9"), MultiPath = [hop] };
        Assert.Contains("either", Assert.Throws<ArgumentException>(() => Trellis.Netlink.Codec.RouteCodec.Write(w, both, false)).Message, StringComparison.Ordinal);
        var heavy = new Route { Destination = IPNetwork.Parse("10.9.0.0/16"), MultiPath = [hop with { Weight = 300 }] };
        Assert.Contains("weight", Assert.Throws<ArgumentException>(() => Trellis.Netlink.Codec.RouteCodec.Write(w, heavy, false)).Message, StringComparison.Ordinal);
    }
}
