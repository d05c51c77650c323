using System.Net;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Codec;

/// <summary>RTM_*NEIGH bodies: ndmsg + NDA_* attributes, for ARP/NDP (AF_INET/AF_INET6) and the bridge FDB (AF_BRIDGE).</summary>
internal static class NeighCodec
{
    public static Neigh DecodeNeigh(in NetlinkMessage message)
    {
        var header = Headers.Read<NdMsg>(message.Payload, "ndmsg", out var attributes);
        IPAddress? ip = null;
        byte[]? mac = null;
        var reader = new AttributeReader(attributes);
        while (reader.TryRead(out var attribute))
        {
            switch (attribute.Type)
            {
                case Nda.NDA_DST: ip = attribute.GetAddress(); break;
                case Nda.NDA_LLADDR: mac = attribute.GetBytes(); break;
            }
        }
        return new Neigh(header.Index, ip, mac, (NeighState)header.State, header.Flags);
    }

    public static Fdb DecodeFdb(in NetlinkMessage message)
    {
        var header = Headers.Read<NdMsg>(message.Payload, "ndmsg", out var attributes);
        IPAddress? destination = null;
        byte[]? mac = null;
        int? vni = null, vlan = null, master = null;
        var reader = new AttributeReader(attributes);
        while (reader.TryRead(out var attribute))
        {
            switch (attribute.Type)
            {
                case Nda.NDA_LLADDR: mac = attribute.GetBytes(); break;
                case Nda.NDA_DST: destination = attribute.GetAddress(); break;
                case Nda.NDA_VNI: vni = (int)attribute.GetU32(); break;
                case Nda.NDA_VLAN: vlan = attribute.GetU16(); break;
                case Nda.NDA_MASTER: master = attribute.GetI32(); break;
            }
        }
        if (mac is null)
        {
            throw NetlinkException.Malformed($"FDB entry on ifindex {header.Index} has no NDA_LLADDR");
        }
        return new Fdb(
            header.Index, mac, destination, vni,
            Self: (header.Flags & NeighFlags.Self) != 0,
            // Dumps from a bridge carry NDA_MASTER but not NTF_MASTER in ndm_flags; either
            // way the entry belongs to the master's table (and deleting it needs NTF_MASTER).
            Master: (header.Flags & NeighFlags.Master) != 0 || master is not null,
            State: (NeighState)header.State)
        {
            Vlan = vlan,
            MasterIndex = master,
        };
    }

    public static void WriteNeigh(NetlinkWriter writer, Neigh neigh, bool forDelete)
    {
        var ip = neigh.Ip ?? throw new ArgumentException($"neighbour '{neigh}' has no IP address", nameof(neigh));
        var header = new NdMsg
        {
            Family = Families.ToKernel(ip.AddressFamily),
            Index = neigh.Index,
            State = forDelete ? (ushort)0 : (ushort)neigh.State,
            Flags = neigh.Flags,
        };
        writer.Write(in header);
        writer.WriteAddress(Nda.NDA_DST, ip);
        if (neigh.Mac is { } mac && !forDelete)
        {
            writer.WriteAttribute(Nda.NDA_LLADDR, mac);
        }
    }

    public static void WriteFdb(NetlinkWriter writer, Fdb fdb, bool forDelete)
    {
        ArgumentNullException.ThrowIfNull(fdb.Mac);
        byte flags = 0;
        if (fdb.Self)
        {
            flags |= NeighFlags.Self;
        }
        if (fdb.Master)
        {
            flags |= NeighFlags.Master;
        }
        var header = new NdMsg
        {
            Family = AddressFamilies.AF_BRIDGE,
            Index = fdb.Index,
            State = forDelete ? (ushort)0 : (ushort)fdb.State,
            Flags = flags,
        };
        writer.Write(in header);
        writer.WriteAttribute(Nda.NDA_LLADDR, fdb.Mac);
        // On a vxlan device NDA_DST picks the remote: a delete with it removes just that
        // remote, without it the whole entry.
        if (fdb.Destination is { } destination)
        {
            writer.WriteAddress(Nda.NDA_DST, destination);
        }
        if (fdb.Vni is int vni)
        {
            writer.WriteU32(Nda.NDA_VNI, (uint)vni);
        }
        if (fdb.Vlan is int vlan)
        {
            writer.WriteU16(Nda.NDA_VLAN, checked((ushort)vlan));
        }
    }

    /// <summary>
    /// Neighbour dump body. Strict checking requires ndm_ifindex = 0 in a neighbour dump and
    /// takes the device filter from NDA_IFINDEX instead.
    /// </summary>
    public static void WriteNeighDump(NetlinkWriter writer, byte family, int? index)
    {
        var header = new NdMsg { Family = family };
        writer.Write(in header);
        if (index is int i)
        {
            writer.WriteU32(Nda.NDA_IFINDEX, (uint)i);
        }
    }

    /// <summary>FDB dump body (AF_BRIDGE); here, unlike neighbour dumps, the port filter is ndm_ifindex.</summary>
    public static void WriteFdbDump(NetlinkWriter writer, int? index)
    {
        var header = new NdMsg { Family = AddressFamilies.AF_BRIDGE, Index = index ?? 0 };
        writer.Write(in header);
    }
}
