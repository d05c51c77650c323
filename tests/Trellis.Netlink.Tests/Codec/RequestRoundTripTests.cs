using System.Net;
using System.Net.Sockets;
using CsCheck;
using Trellis.Model;
using Trellis.Netlink.Codec;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Tests.Codec;

/// <summary>
/// Request bodies share their layout with the kernel's replies, so encoding an object and
/// decoding the bytes with the reply decoder must give the object back.
/// </summary>
public sealed class RequestRoundTripTests
{
    private static readonly Gen<IPAddress> s_ipv4 = Gen.UInt.Select(v => Model.IPAddressMath.FromInteger(v, AddressFamily.InterNetwork));
    private static readonly Gen<IPAddress> s_ipv6 = Gen.UInt128.Select(v => Model.IPAddressMath.FromInteger(v, AddressFamily.InterNetworkV6));

    private static readonly RouteScope[] s_scopes = [RouteScope.Universe, RouteScope.Site, RouteScope.Link, RouteScope.Host];

    private static readonly Gen<Route> s_route =
        Gen.Bool.SelectMany(v6 =>
        {
            var address = v6 ? s_ipv6 : s_ipv4;
            int max = v6 ? 128 : 32;
            var family = v6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
            return Gen.Select(
                Gen.Select(address, Gen.Int[0, max]).Select(t => t.Item2 == 0 ? (IPNetwork?)null : new IPNetwork(IPAddressMath.Mask(t.Item1, t.Item2), t.Item2)),
                address.Null(),
                Gen.Int[1, 100000].Nullable(),
                address.Null(),
                Gen.Int[0, 3].Select(i => s_scopes[i]),
                Gen.Int[1, 100000],
                Gen.Bool,
                Gen.Byte,
                Gen.Int[0, int.MaxValue].Nullable(),
                Gen.Int[68, 65535].Nullable(),
                Gen.Byte[1, 11],
                (dst, gw, oif, src, scope, table, onlink, proto, prio, mtu, type) => new Route
                {
                    Destination = dst,
                    Gateway = gw,
                    OutIndex = oif,
                    PreferredSource = src,
                    Scope = scope,
                    Table = table,
                    OnLink = onlink,
                    Protocol = proto,
                    Priority = prio,
                    Mtu = mtu,
                    Type = type,
                    Family = family,
                });
        });

    [Fact]
    public void Route_round_trips()
    {
        s_route.Sample(route =>
        {
            var decoded = Decode(MessageType.RTM_NEWROUTE, w => RouteCodec.Write(w, route, forDelete: false), static (in NetlinkMessage m) => RouteCodec.Decode(m));
            Assert.Equal(route, decoded);
        }, iter: 2000);
    }

    [Fact]
    public void Route_delete_matches_any_protocol_type_and_scope()
    {
        var route = new Route { Destination = IPNetwork.Parse("10.1.0.0/16"), Gateway = IPAddress.Parse("10.0.0.2"), Protocol = 4, Scope = RouteScope.Link, Mtu = 1400 };
        var decoded = Decode(MessageType.RTM_DELROUTE, w => RouteCodec.Write(w, route, forDelete: true), static (in NetlinkMessage m) => RouteCodec.Decode(m))!;
        Assert.Equal(0, decoded.Protocol);
        Assert.Equal(0, decoded.Type);
        Assert.Equal(RouteScope.Nowhere, decoded.Scope);
        Assert.Null(decoded.Mtu);
        Assert.Equal(route.Destination, decoded.Destination);
        Assert.Equal(route.Gateway, decoded.Gateway);
    }

    [Fact]
    public void Route_without_any_address_needs_a_family()
    {
        var error = Assert.Throws<ArgumentException>(() => Encode(MessageType.RTM_NEWROUTE, w => RouteCodec.Write(w, new Route { OutIndex = 2 }, false)));
        Assert.Contains("Family", error.Message, StringComparison.Ordinal);
        var v6Default = new Route { OutIndex = 2, Family = AddressFamily.InterNetworkV6, Scope = RouteScope.Link };
        Assert.Equal(v6Default, Decode(MessageType.RTM_NEWROUTE, w => RouteCodec.Write(w, v6Default, false), static (in NetlinkMessage m) => RouteCodec.Decode(m)));
    }

    [Fact]
    public void Route_mixing_families_is_refused()
    {
        var route = new Route { Destination = IPNetwork.Parse("10.0.0.0/8"), Gateway = IPAddress.Parse("fe80::1") };
        Assert.Throws<ArgumentException>(() => Encode(MessageType.RTM_NEWROUTE, w => RouteCodec.Write(w, route, false)));
    }

    [Theory]
    [InlineData("10.0.0.5/24", false, "10.0.0.255")]
    [InlineData("10.0.0.5/31", false, null)]
    [InlineData("fd00::5/64", true, null)]
    public void Address_round_trips_with_computed_broadcast(string cidr, bool noDad, string? broadcast)
    {
        var address = IPCidr.Parse(cidr);
        var decoded = Decode(MessageType.RTM_NEWADDR, w => AddrCodec.Write(w, 7, address, new AddrOptions { NoDad = noDad, Scope = RouteScope.Link }, false), static (in NetlinkMessage m) => AddrCodec.Decode(m));
        Assert.Equal(address, decoded.Cidr);
        Assert.Equal(7, decoded.Index);
        Assert.Equal(RouteScope.Link, decoded.Scope);
        Assert.Equal(noDad ? Ifa.IFA_F_NODAD : 0u, decoded.Flags);
        Assert.Equal(broadcast is null ? null : IPAddress.Parse(broadcast), decoded.Broadcast);
    }

    [Fact]
    public void Neighbour_round_trips()
    {
        var neigh = new Neigh(4, IPAddress.Parse("fd00::2"), Mac.Parse("02:00:00:00:00:09"), NeighState.Reachable, NeighFlags.Router);
        var decoded = Decode(MessageType.RTM_NEWNEIGH, w => NeighCodec.WriteNeigh(w, neigh, false), static (in NetlinkMessage m) => NeighCodec.DecodeNeigh(m));
        Assert.Equal(neigh.Index, decoded.Index);
        Assert.Equal(neigh.Ip, decoded.Ip);
        Assert.Equal(neigh.Mac, decoded.Mac);
        Assert.Equal(neigh.State, decoded.State);
        Assert.Equal(neigh.Flags, decoded.Flags);
    }

    [Fact]
    public void Fdb_round_trips()
    {
        var fdb = new Fdb(6, Mac.Parse("02:00:00:00:03:01"), IPAddress.Parse("10.0.0.2"), Vni: 43) { Vlan = 10 };
        var (bytes, _) = Encode(MessageType.RTM_NEWNEIGH, w => NeighCodec.WriteFdb(w, fdb, false));
        var reader = new NetlinkMessageReader(bytes);
        Assert.True(reader.TryRead(out var message));
        Assert.Equal(AddressFamilies.AF_BRIDGE, message.Payload[0]);
        var decoded = NeighCodec.DecodeFdb(message);
        Assert.Equal(fdb.Mac, decoded.Mac);
        Assert.Equal(fdb.Destination, decoded.Destination);
        Assert.Equal(43, decoded.Vni);
        Assert.Equal(10, decoded.Vlan);
        Assert.True(decoded.Self);
        Assert.False(decoded.Master);
        Assert.Equal(NeighState.Permanent, decoded.State);
    }

    [Fact]
    public void Vxlan_request_decodes_as_a_vxlan_link()
    {
        var options = new VxlanOptions { Vni = 0xabcdef, Port = 8472, Local = IPAddress.Parse("fd00::1"), DeviceIndex = 3, Learning = false, Ttl = 5, Mtu = 1400, Mac = Mac.Parse("02:00:00:00:00:01") };
        var link = Decode(MessageType.RTM_NEWLINK, w => LinkCodec.WriteVxlan(w, "vx0", options), static (in NetlinkMessage m) => LinkCodec.Decode(m));
        Assert.Equal("vx0", link.Name);
        Assert.Equal("vxlan", link.Kind);
        Assert.Equal(1400, link.Mtu);
        Assert.Equal(options.Mac, link.Mac);
        Assert.Equal(0xabcdef, link.VxlanId);
        Assert.Equal(8472, link.VxlanPort);
        Assert.Equal(options.Local, link.VxlanLocal);
        Assert.False(link.VxlanLearning);
        Assert.Equal(3, link.VxlanDeviceIndex);
        Assert.Equal(5, link.VxlanTtl);
    }

    [Fact]
    public void Bridge_request_sends_vlan_filtering_only_when_on()
    {
        var off = Decode(MessageType.RTM_NEWLINK, w => LinkCodec.WriteBridge(w, "br0", new BridgeOptions { VlanFiltering = false, ForwardDelay = 0 }), static (in NetlinkMessage m) => LinkCodec.Decode(m));
        Assert.Null(off.BridgeVlanFiltering);
        Assert.Equal(0, off.BridgeForwardDelay);
        var on = Decode(MessageType.RTM_NEWLINK, w => LinkCodec.WriteBridge(w, "br0", new BridgeOptions { VlanFiltering = true }), static (in NetlinkMessage m) => LinkCodec.Decode(m));
        Assert.True(on.BridgeVlanFiltering);
        Assert.Null(on.BridgeForwardDelay);
    }

    [Fact]
    public void Veth_peer_is_a_nested_link_request_with_its_own_ifinfomsg()
    {
        var options = new VethOptions { Mtu = 1400, Mac = Mac.Parse("02:00:00:00:00:01"), PeerMac = Mac.Parse("02:00:00:00:00:02"), Alias = "pod" };
        var (_, body) = Encode(MessageType.RTM_NEWLINK, w => LinkCodec.WriteVeth(w, "veth1", "eth0", options, peerNetNsFd: 9));
        Headers.Read<IfInfoMsg>(body, "ifinfomsg", out var attributes);
        var reader = new AttributeReader(attributes);
        ReadOnlySpan<byte> peer = default;
        while (reader.TryRead(out var attribute))
        {
            // (The alias is not part of the request: the kernel ignores IFLA_IFALIAS on create.)
            Assert.NotEqual(Ifla.IFLA_IFALIAS, attribute.Type);
            if (attribute.Type != Ifla.IFLA_LINKINFO)
            {
                continue;
            }
            var info = attribute.Nested;
            while (info.TryRead(out var item))
            {
                if (item.Type == Ifla.IFLA_INFO_DATA)
                {
                    var data = item.Nested;
                    Assert.True(data.TryRead(out var peerAttribute));
                    Assert.Equal(Ifla.VETH_INFO_PEER, peerAttribute.Type);
                    peer = peerAttribute.Value;
                }
            }
        }
        var peerHeader = Headers.Read<IfInfoMsg>(peer, "ifinfomsg", out var peerAttributes);
        Assert.Equal(0, peerHeader.Index);
        var peerReader = new AttributeReader(peerAttributes);
        var seen = new Dictionary<ushort, byte[]>();
        while (peerReader.TryRead(out var attribute))
        {
            seen[attribute.Type] = attribute.Value.ToArray();
        }
        Assert.Equal("eth0\0"u8.ToArray(), seen[Ifla.IFLA_IFNAME]);
        Assert.Equal(options.PeerMac, seen[Ifla.IFLA_ADDRESS]);
        Assert.Equal(BitConverter.GetBytes(1400u), seen[Ifla.IFLA_MTU]);
        Assert.Equal(BitConverter.GetBytes(9u), seen[Ifla.IFLA_NET_NS_FD]);
    }

    private delegate T Decoder<T>(in NetlinkMessage message);

    /// <summary>Encodes one message with <paramref name="body"/> and decodes it again.</summary>
    private static T Decode<T>(ushort type, Action<NetlinkWriter> body, Decoder<T> decode)
    {
        var (bytes, _) = Encode(type, body);
        var reader = new NetlinkMessageReader(bytes);
        Assert.True(reader.TryRead(out var message));
        Assert.False(reader.TryRead(out _));
        return decode(message);
    }

    /// <summary>Builds one message with <paramref name="body"/> and returns it with its payload.</summary>
    private static (byte[] Bytes, byte[] Body) Encode(ushort type, Action<NetlinkWriter> body)
    {
        var writer = new NetlinkWriter();
        writer.BeginMessage(type, MessageFlags.NLM_F_REQUEST, 1);
        body(writer);
        writer.EndMessage();
        var bytes = writer.WrittenSpan.ToArray();
        return (bytes, bytes[16..]);
    }
}
