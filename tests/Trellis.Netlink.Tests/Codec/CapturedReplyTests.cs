using System.Net;
using Trellis.Model;
using Trellis.Netlink.Tests.Support;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Tests.Codec;

/// <summary>Decoding of replies captured from a real kernel (see testdata/*.hex headers); no root needed.</summary>
public sealed class CapturedReplyTests
{
    [Theory]
    [InlineData("link.hex", 6)]
    [InlineData("addr.hex", 10)]
    [InlineData("route4.hex", 13)]
    [InlineData("route6.hex", 7)]
    [InlineData("neigh.hex", 8)]
    [InlineData("fdb.hex", 22)]
    public void Dump_parses_to_the_end_and_finishes_with_done(string file, int objects)
    {
        var datagrams = HexCapture.Load(file);
        int messages = 0;
        ushort lastType = 0;
        foreach (var datagram in datagrams)
        {
            messages += Captured.DecodeAny(datagram);
            var reader = new NetlinkMessageReader(datagram);
            while (reader.TryRead(out var message))
            {
                Assert.Equal(4242u, message.Sequence);
                Assert.NotEqual(0, message.Flags & MessageFlags.NLM_F_MULTI);
                lastType = message.Type;
            }
        }
        Assert.Equal(MessageType.NLMSG_DONE, lastType);
        Assert.Equal(objects + 1, messages);
    }

    [Theory]
    [InlineData("lo", 1, null, 65536, "00:00:00:00:00:00", null, null, null, null, "UNKNOWN")]
    [InlineData("trl-br0", 2, "bridge", 1500, "02:00:00:00:01:00", null, null, null, null, "UP")]
    [InlineData("trl-veth0", 3, "veth", 1400, "02:00:00:00:01:01", null, 2, 0, "pod-veth", "UP")]
    [InlineData("trl-port0p", 4, "veth", 1500, "02:00:00:00:01:05", null, 5, null, null, "UP")]
    [InlineData("trl-port0", 5, "veth", 1500, "02:00:00:00:01:03", 2, 4, null, null, "UP")]
    [InlineData("trl-vx0", 6, "vxlan", 1350, "02:00:00:00:01:04", null, null, null, null, "UNKNOWN")]
    public void Link_fields(string name, int index, string? kind, int mtu, string mac, int? master, int? parent, int? netnsId, string? alias, string operState)
    {
        var link = Assert.Single(Captured.Links("link.hex"), l => l.Name == name);
        Assert.Equal(index, link.Index);
        Assert.Equal(kind, link.Kind);
        Assert.Equal(mtu, link.Mtu);
        Assert.Equal(mac, Mac.Format(link.Mac!));
        Assert.True(link.IsUp);
        Assert.Equal(master, link.MasterIndex);
        Assert.Equal(parent, link.ParentIndex);
        Assert.Equal(netnsId, link.LinkNetNsId);
        Assert.Equal(alias, link.Alias);
        Assert.Equal(operState, link.OperState);
    }

    [Fact]
    public void Vxlan_info_data()
    {
        var vx = Assert.Single(Captured.Links("link.hex"), l => l.Name == "trl-vx0");
        Assert.Equal(42, vx.VxlanId);
        Assert.Equal(4789, vx.VxlanPort);
        Assert.Equal(IPAddress.Parse("10.0.0.1"), vx.VxlanLocal);
        Assert.False(vx.VxlanLearning);
        Assert.Equal(3, vx.VxlanDeviceIndex);
        Assert.Equal(64, vx.VxlanTtl);
        Assert.Null(vx.Hairpin);
    }

    [Fact]
    public void Bridge_info_and_port_hairpin()
    {
        var links = Captured.Links("link.hex");
        var bridge = Assert.Single(links, l => l.Name == "trl-br0");
        Assert.Equal(0, bridge.BridgeForwardDelay);
        Assert.False(bridge.BridgeVlanFiltering);
        Assert.Null(bridge.VxlanId);
        Assert.True(Assert.Single(links, l => l.Name == "trl-port0").Hairpin);
        // Not a bridge port: unknown rather than false.
        Assert.Null(Assert.Single(links, l => l.Name == "trl-port0p").Hairpin);
    }

    [Theory]
    [InlineData("127.0.0.1/8", 1, RouteScope.Host, 0x80u, "lo")]
    [InlineData("10.244.0.1/24", 2, RouteScope.Universe, 0x80u, "trl-br0")]
    [InlineData("10.0.0.1/24", 3, RouteScope.Universe, 0x80u, "trl-veth0")]
    [InlineData("::1/128", 1, RouteScope.Host, 0x80u, null)]
    [InlineData("fd00::1/64", 3, RouteScope.Universe, 0x82u, null)] // permanent | nodad
    [InlineData("fe80::ff:fe00:101/64", 3, RouteScope.Link, 0xc0u, null)] // permanent | tentative (DAD still running at capture)
    public void Address_fields(string cidr, int index, RouteScope scope, uint flags, string? label)
    {
        var address = Assert.Single(Captured.Addresses("addr.hex"), a => a.Cidr == IPCidr.Parse(cidr));
        Assert.Equal(index, address.Index);
        Assert.Equal(scope, address.Scope);
        Assert.Equal(flags, address.Flags);
        Assert.Equal(label, address.Label);
        // Added without "brd": no broadcast attribute.
        Assert.Null(address.Broadcast);
    }

    public static IEnumerable<object?[]> Ipv4Routes =>
    [
        ["10.2.0.0/16", null, 3, "10.0.0.1", RouteScope.Link, 100, false, RouteProtocols.Boot, null, 1400, RouteTypes.Unicast],
        ["10.0.0.0/24", null, 3, "10.0.0.1", RouteScope.Link, 254, false, RouteProtocols.Kernel, null, null, RouteTypes.Unicast],
        ["10.1.0.0/16", "10.0.0.2", 3, null, RouteScope.Universe, 254, false, RouteProtocols.Static, 50, null, RouteTypes.Unicast],
        ["10.3.0.0/16", null, null, null, RouteScope.Universe, 254, false, RouteProtocols.Boot, null, null, RouteTypes.Blackhole],
        ["10.4.0.0/24", "192.168.99.1", 3, null, RouteScope.Universe, 254, true, 99, null, null, RouteTypes.Unicast],
        ["10.0.0.1/32", null, 3, "10.0.0.1", RouteScope.Host, 255, false, RouteProtocols.Kernel, null, null, RouteTypes.Local],
        ["10.0.0.255/32", null, 3, "10.0.0.1", RouteScope.Link, 255, false, RouteProtocols.Kernel, null, null, RouteTypes.Broadcast],
    ];

    [Theory]
    [MemberData(nameof(Ipv4Routes))]
    public void Ipv4_route_fields(string destination, string? gateway, int? oif, string? source, RouteScope scope, int table, bool onLink, byte protocol, int? metric, int? mtu, byte type)
    {
        var route = Assert.Single(Captured.Routes("route4.hex"), r => r.Destination == IPNetwork.Parse(destination));
        Assert.Equal(gateway is null ? null : IPAddress.Parse(gateway), route.Gateway);
        Assert.Equal(oif, route.OutIndex);
        Assert.Equal(source is null ? null : IPAddress.Parse(source), route.PreferredSource);
        Assert.Equal(scope, route.Scope);
        Assert.Equal(table, route.Table);
        Assert.Equal(onLink, route.OnLink);
        Assert.Equal(protocol, route.Protocol);
        Assert.Equal(metric, route.Priority);
        Assert.Equal(mtu, route.Mtu);
        Assert.Equal(type, route.Type);
    }

    [Fact]
    public void Ipv6_routes_of_the_main_table()
    {
        var routes = Captured.Routes("route6.hex");
        Assert.All(routes, r => Assert.Equal(254, r.Table));
        var viaGateway = Assert.Single(routes, r => r.Destination == IPNetwork.Parse("fd01::/64"));
        Assert.Equal(IPAddress.Parse("fd00::2"), viaGateway.Gateway);
        Assert.Equal(10, viaGateway.Priority);
        Assert.Equal(RouteProtocols.Boot, viaGateway.Protocol);
        var connected = Assert.Single(routes, r => r.Destination == IPNetwork.Parse("fd00::/64"));
        Assert.Equal(256, connected.Priority); // the kernel's default IPv6 metric
        Assert.Equal(RouteProtocols.Kernel, connected.Protocol);
        Assert.Equal(5, routes.Count(r => r.Destination == IPNetwork.Parse("fe80::/64")));
    }

    [Theory]
    [InlineData("10.0.0.2", 3, "02:00:00:00:02:02", NeighState.Permanent)]
    [InlineData("fd00::2", 3, "02:00:00:00:02:03", NeighState.Permanent)]
    [InlineData("224.0.0.22", 2, "01:00:5e:00:00:16", NeighState.NoArp)]
    public void Neighbour_fields(string ip, int index, string mac, NeighState state)
    {
        var neigh = Assert.Single(Captured.Neighbours("neigh.hex"), n => n.Ip!.Equals(IPAddress.Parse(ip)) && n.Index == index);
        Assert.Equal(mac, Mac.Format(neigh.Mac!));
        Assert.Equal(state, neigh.State);
        Assert.Equal(0, neigh.Flags);
    }

    [Theory]
    [InlineData("00:00:00:00:00:00", 6, "10.0.0.9", null)]
    [InlineData("02:00:00:00:03:01", 6, "10.0.0.2", null)]
    [InlineData("02:00:00:00:03:02", 6, "10.0.0.3", 43)] // NDA_VNI only when it differs from the device's VNI
    public void Vxlan_fdb_fields(string mac, int index, string destination, int? vni)
    {
        var entry = Assert.Single(Captured.FdbEntries("fdb.hex"), f => Mac.Format(f.Mac) == mac && f.Index == index);
        Assert.Equal(IPAddress.Parse(destination), entry.Destination);
        Assert.Equal(vni, entry.Vni);
        Assert.True(entry.Self);
        Assert.False(entry.Master);
        // `bridge fdb ... permanent` sends NUD_NOARP | NUD_PERMANENT.
        Assert.Equal(NeighState.NoArp | NeighState.Permanent, entry.State);
    }

    [Fact]
    public void Bridge_fdb_entry_reports_its_master()
    {
        var entry = Assert.Single(Captured.FdbEntries("fdb.hex"), f => Mac.Format(f.Mac) == "02:00:00:00:03:03");
        Assert.Equal(5, entry.Index);
        Assert.Equal(2, entry.MasterIndex);
        Assert.True(entry.Master);
        Assert.False(entry.Self);
        Assert.Equal(NeighState.NoArp, entry.State); // "static"
        Assert.Null(entry.Destination);
    }

    [Fact]
    public void Error_reply_without_extended_ack()
    {
        var error = ErrorFrom("error-exists.hex", new Op(MessageType.RTM_NEWLINK, "bridge", Name: "trl-br0"));
        Assert.True(error.IsExists);
        Assert.Equal("EEXIST", error.ErrnoName);
        Assert.Null(error.KernelMessage);
        Assert.Equal("RTM_NEWLINK bridge 'trl-br0': File exists (EEXIST)", error.Message);
    }

    [Fact]
    public void Error_reply_with_extended_ack_message()
    {
        var error = ErrorFrom("error-extack.hex", new Op(MessageType.RTM_NEWROUTE, "route", Subject: "10.9.0.0/16"));
        Assert.Equal(22, error.Errno);
        Assert.Equal("Invalid prefsrc address", error.KernelMessage);
        Assert.Equal("RTM_NEWROUTE route 10.9.0.0/16: Invalid argument (EINVAL): Invalid prefsrc address", error.Message);
    }

    private static NetlinkException ErrorFrom(string file, Op op)
    {
        var datagram = Assert.Single(HexCapture.Load(file));
        var reader = new NetlinkMessageReader(datagram);
        Assert.True(reader.TryRead(out var message));
        Assert.Equal(MessageType.NLMSG_ERROR, message.Type);
        Assert.NotEqual(0, message.Flags & MessageFlags.NLM_F_CAPPED);
        var error = NetlinkSocket.ErrorOf(message, op);
        Assert.NotNull(error);
        Assert.False(reader.TryRead(out _));
        return error;
    }
}
