using System.Net;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Codec;

/// <summary>RTM_*LINK bodies: ifinfomsg + IFLA_* attributes, without any I/O.</summary>
internal static class LinkCodec
{
    private static readonly string[] s_operStates =
        ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"];

    public static Link Decode(in NetlinkMessage message)
    {
        var header = Headers.Read<IfInfoMsg>(message.Payload, "ifinfomsg", out var attributes);
        string? name = null, kind = null, alias = null, slaveKind = null;
        int mtu = 0;
        byte[]? mac = null;
        int? master = null, parent = null, netnsId = null;
        byte operState = 0;
        ReadOnlySpan<byte> infoData = default, slaveData = default;

        var reader = new AttributeReader(attributes);
        while (reader.TryRead(out var attribute))
        {
            switch (attribute.Type)
            {
                case Ifla.IFLA_IFNAME: name = attribute.GetString(); break;
                case Ifla.IFLA_MTU: mtu = (int)attribute.GetU32(); break;
                case Ifla.IFLA_ADDRESS: mac = attribute.GetBytes(); break;
                case Ifla.IFLA_MASTER: master = attribute.GetI32(); break;
                case Ifla.IFLA_LINK: parent = attribute.GetI32(); break;
                case Ifla.IFLA_LINK_NETNSID: netnsId = attribute.GetI32(); break;
                case Ifla.IFLA_IFALIAS: alias = attribute.GetString(); break;
                case Ifla.IFLA_OPERSTATE: operState = attribute.GetU8(); break;
                case Ifla.IFLA_LINKINFO:
                    var info = attribute.Nested;
                    while (info.TryRead(out var item))
                    {
                        switch (item.Type)
                        {
                            case Ifla.IFLA_INFO_KIND: kind = item.GetString(); break;
                            case Ifla.IFLA_INFO_DATA: infoData = item.Value; break;
                            case Ifla.IFLA_INFO_SLAVE_KIND: slaveKind = item.GetString(); break;
                            case Ifla.IFLA_INFO_SLAVE_DATA: slaveData = item.Value; break;
                        }
                    }
                    break;
            }
        }
        if (name is null)
        {
            throw NetlinkException.Malformed($"RTM_NEWLINK for ifindex {header.Index} has no IFLA_IFNAME");
        }

        int? vxlanId = null, vxlanPort = null, vxlanDevice = null, vxlanTtl = null, forwardDelay = null;
        IPAddress? vxlanLocal = null;
        bool? vxlanLearning = null, vlanFiltering = null, hairpin = null;
        // IFLA_INFO_DATA's layout depends on the kind, which the kernel puts before it, but the
        // data is only read after the loop so attribute order does not matter.
        if (kind == "vxlan" && !infoData.IsEmpty)
        {
            var data = new AttributeReader(infoData);
            while (data.TryRead(out var item))
            {
                switch (item.Type)
                {
                    case Ifla.IFLA_VXLAN_ID: vxlanId = (int)item.GetU32(); break;
                    case Ifla.IFLA_VXLAN_PORT: vxlanPort = item.GetU16BigEndian(); break; // network byte order
                    case Ifla.IFLA_VXLAN_LOCAL:
                    case Ifla.IFLA_VXLAN_LOCAL6: vxlanLocal = item.GetAddress(); break;
                    case Ifla.IFLA_VXLAN_LEARNING: vxlanLearning = item.GetU8() != 0; break;
                    case Ifla.IFLA_VXLAN_LINK: vxlanDevice = item.GetI32(); break;
                    case Ifla.IFLA_VXLAN_TTL: vxlanTtl = item.GetU8(); break;
                }
            }
        }
        else if (kind == "bridge" && !infoData.IsEmpty)
        {
            var data = new AttributeReader(infoData);
            while (data.TryRead(out var item))
            {
                switch (item.Type)
                {
                    case Ifla.IFLA_BR_VLAN_FILTERING: vlanFiltering = item.GetU8() != 0; break;
                    case Ifla.IFLA_BR_FORWARD_DELAY: forwardDelay = (int)item.GetU32(); break;
                }
            }
        }
        // A bridge port reports its port settings (IFLA_BRPORT_*) as slave data of its own
        // RTM_NEWLINK, so hairpin is known without an AF_BRIDGE dump.
        if (slaveKind == "bridge" && !slaveData.IsEmpty)
        {
            var data = new AttributeReader(slaveData);
            while (data.TryRead(out var item))
            {
                if (item.Type == Ifla.IFLA_BRPORT_MODE)
                {
                    hairpin = item.GetU8() != 0;
                }
            }
        }

        return new Link(
            header.Index, name, kind, mtu, mac,
            (header.Flags & Ifla.IFF_UP) != 0,
            master is > 0 ? master : null,
            parent is > 0 ? parent : null,
            netnsId is >= 0 ? netnsId : null,
            alias,
            operState < s_operStates.Length ? s_operStates[operState] : "UNKNOWN",
            vxlanId, vxlanPort, vxlanLocal, vxlanLearning, hairpin)
        {
            Flags = header.Flags,
            VxlanDeviceIndex = vxlanDevice is > 0 ? vxlanDevice : null,
            VxlanTtl = vxlanTtl,
            BridgeVlanFiltering = vlanFiltering,
            BridgeForwardDelay = forwardDelay,
        };
    }

    /// <summary>ifinfomsg for a request about one link (or none, index 0).</summary>
    public static void WriteHeader(NetlinkWriter writer, int index, byte family = AddressFamilies.AF_UNSPEC, uint flags = 0, uint change = 0)
    {
        var header = new IfInfoMsg { Family = family, Index = index, Flags = flags, Change = change };
        writer.Write(in header);
    }

    /// <summary>Body of RTM_GETLINK (dump, by index or by name). Statistics are skipped: they are most of a link message and never read.</summary>
    public static void WriteGet(NetlinkWriter writer, int index, string? name)
    {
        WriteHeader(writer, index);
        if (name is not null)
        {
            writer.WriteString(Ifla.IFLA_IFNAME, name);
        }
        writer.WriteU32(Ifla.IFLA_EXT_MASK, Ifla.RTEXT_FILTER_SKIP_STATS);
    }

    public static void WriteVeth(NetlinkWriter writer, string name, string peerName, VethOptions? options, int peerNetNsFd)
    {
        // IFF_UP and IFLA_MASTER are applied by the create path itself (rtnl_configure_link,
        // do_set_master), so the host end is born up and enslaved: one request instead of three,
        // and no instant at which it exists detached from its bridge.
        bool up = options?.Up == true;
        WriteHeader(writer, 0, flags: up ? Ifla.IFF_UP : 0, change: up ? Ifla.IFF_UP : 0);
        writer.WriteString(Ifla.IFLA_IFNAME, name);
        WriteCommon(writer, options?.Mtu, options?.Mac);
        if (options?.MasterIndex is int master)
        {
            writer.WriteU32(Ifla.IFLA_MASTER, (uint)master);
        }
        int linkInfo = writer.BeginNested(Ifla.IFLA_LINKINFO);
        writer.WriteString(Ifla.IFLA_INFO_KIND, "veth");
        int data = writer.BeginNested(Ifla.IFLA_INFO_DATA);
        // The peer is a whole second link, so VETH_INFO_PEER carries a complete link request
        // body: its own ifinfomsg followed by the peer's IFLA_* attributes (veth_newlink parses
        // it with nla_parse after skipping sizeof(struct ifinfomsg)).
        int peer = writer.BeginNested(Ifla.VETH_INFO_PEER);
        WriteHeader(writer, 0);
        writer.WriteString(Ifla.IFLA_IFNAME, peerName);
        WriteCommon(writer, options?.Mtu, options?.PeerMac);
        if (peerNetNsFd >= 0)
        {
            // IFLA_NET_NS_FD on the peer creates it directly in the target namespace. Creating it
            // here and moving it afterwards would take a second request, and its name (usually
            // "eth0") could collide with a link already present in this namespace.
            writer.WriteU32(Ifla.IFLA_NET_NS_FD, (uint)peerNetNsFd);
        }
        writer.EndNested(peer);
        writer.EndNested(data);
        writer.EndNested(linkInfo);
    }

    public static void WriteBridge(NetlinkWriter writer, string name, BridgeOptions? options)
    {
        WriteHeader(writer, 0);
        writer.WriteString(Ifla.IFLA_IFNAME, name);
        WriteCommon(writer, options?.Mtu, options?.Mac);
        int linkInfo = writer.BeginNested(Ifla.IFLA_LINKINFO);
        writer.WriteString(Ifla.IFLA_INFO_KIND, "bridge");
        // A new bridge has VLAN filtering off, so only "on" is sent: a kernel built without
        // CONFIG_BRIDGE_VLAN_FILTERING rejects the attribute with EOPNOTSUPP even when it is 0.
        bool vlanFiltering = options?.VlanFiltering == true;
        if (vlanFiltering || options?.ForwardDelay is not null)
        {
            int data = writer.BeginNested(Ifla.IFLA_INFO_DATA);
            if (options?.ForwardDelay is int delay)
            {
                writer.WriteU32(Ifla.IFLA_BR_FORWARD_DELAY, checked((uint)delay));
            }
            if (vlanFiltering)
            {
                writer.WriteU8(Ifla.IFLA_BR_VLAN_FILTERING, 1);
            }
            writer.EndNested(data);
        }
        writer.EndNested(linkInfo);
    }

    public static void WriteVxlan(NetlinkWriter writer, string name, VxlanOptions options)
    {
        WriteHeader(writer, 0);
        writer.WriteString(Ifla.IFLA_IFNAME, name);
        WriteCommon(writer, options.Mtu, options.Mac);
        int linkInfo = writer.BeginNested(Ifla.IFLA_LINKINFO);
        writer.WriteString(Ifla.IFLA_INFO_KIND, "vxlan");
        int data = writer.BeginNested(Ifla.IFLA_INFO_DATA);
        writer.WriteU32(Ifla.IFLA_VXLAN_ID, (uint)options.Vni);
        if (options.Local is { } local)
        {
            writer.WriteAddress(local.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? Ifla.IFLA_VXLAN_LOCAL : Ifla.IFLA_VXLAN_LOCAL6, local);
        }
        if (options.DeviceIndex is int device)
        {
            writer.WriteU32(Ifla.IFLA_VXLAN_LINK, (uint)device);
        }
        if (options.Ttl is int ttl)
        {
            writer.WriteU8(Ifla.IFLA_VXLAN_TTL, checked((byte)ttl));
        }
        writer.WriteU8(Ifla.IFLA_VXLAN_LEARNING, options.Learning ? (byte)1 : (byte)0);
        writer.WriteU16BigEndian(Ifla.IFLA_VXLAN_PORT, checked((ushort)options.Port));
        writer.EndNested(data);
        writer.EndNested(linkInfo);
    }

    private static void WriteCommon(NetlinkWriter writer, int? mtu, byte[]? mac)
    {
        if (mtu is int m)
        {
            writer.WriteU32(Ifla.IFLA_MTU, checked((uint)m));
        }
        if (mac is not null)
        {
            writer.WriteAttribute(Ifla.IFLA_ADDRESS, mac);
        }
    }
}
