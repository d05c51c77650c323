using System.Net;
using System.Net.Sockets;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Codec;

/// <summary>RTM_*ROUTE bodies: rtmsg + RTA_* attributes.</summary>
internal static class RouteCodec
{
    /// <summary>Decodes a route; null for cached clones (RTM_F_CLONED), which are not routes anyone configured.</summary>
    public static Route? Decode(in NetlinkMessage message)
    {
        var header = Headers.Read<RtMsg>(message.Payload, "rtmsg", out var attributes);
        if ((header.Flags & Rta.RTM_F_CLONED) != 0)
        {
            return null;
        }
        IPAddress? destination = null, gateway = null, source = null;
        int? oif = null, priority = null, mtu = null;
        List<NextHop>? multipath = null;
        int table = header.Table;
        var reader = new AttributeReader(attributes);
        while (reader.TryRead(out var attribute))
        {
            switch (attribute.Type)
            {
                case Rta.RTA_DST: destination = attribute.GetAddress(); break;
                case Rta.RTA_GATEWAY: gateway = attribute.GetAddress(); break;
                case Rta.RTA_OIF: oif = attribute.GetI32(); break;
                case Rta.RTA_PREFSRC: source = attribute.GetAddress(); break;
                case Rta.RTA_PRIORITY: priority = (int)attribute.GetU32(); break;
                // rtm_table is 8 bits; RTA_TABLE carries ids above 255.
                case Rta.RTA_TABLE: table = (int)attribute.GetU32(); break;
                case Rta.RTA_MULTIPATH: multipath = DecodeMultiPath(attribute.Value); break;
                case Rta.RTA_METRICS:
                    var metrics = attribute.Nested;
                    while (metrics.TryRead(out var metric))
                    {
                        if (metric.Type == Rta.RTAX_MTU)
                        {
                            mtu = (int)metric.GetU32();
                        }
                    }
                    break;
            }
        }
        var family = header.Family switch
        {
            AddressFamilies.AF_INET => AddressFamily.InterNetwork,
            AddressFamilies.AF_INET6 => AddressFamily.InterNetworkV6,
            _ => throw NetlinkException.Malformed($"route of address family {header.Family}"),
        };
        IPNetwork? network = null;
        if (destination is not null || header.DstLength != 0)
        {
            destination ??= family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any;
            if (destination.AddressFamily != family || header.DstLength > (family == AddressFamily.InterNetwork ? 32 : 128))
            {
                throw NetlinkException.Malformed($"route destination {destination}/{header.DstLength} in family {header.Family}");
            }
            // The kernel masks destinations, but rebuild through the mask so IPNetwork never rejects it.
            network = new IPNetwork(Model.IPAddressMath.Mask(destination, header.DstLength), header.DstLength);
        }
        return new Route
        {
            Destination = network,
            Gateway = gateway,
            OutIndex = oif,
            PreferredSource = source,
            Scope = (RouteScope)header.Scope,
            Table = table,
            OnLink = (header.Flags & Rta.RTNH_F_ONLINK) != 0,
            Protocol = header.Protocol,
            Priority = priority,
            Mtu = mtu,
            Type = header.Type,
            Family = family,
            MultiPath = multipath,
        };
    }

    /// <summary>RTA_MULTIPATH: struct rtnexthop { u16 len; u8 flags; u8 hops; s32 ifindex; } each followed by its attributes.</summary>
    private static List<NextHop> DecodeMultiPath(ReadOnlySpan<byte> value)
    {
        var hops = new List<NextHop>();
        while (value.Length >= 8)
        {
            int length = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(value);
            if (length < 8 || length > value.Length)
            {
                throw NetlinkException.Malformed($"rtnexthop of length {length} in {value.Length} bytes");
            }
            byte flags = value[2];
            int weight = value[3] + 1;
            int ifindex = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(value.Slice(4));
            IPAddress? gateway = null;
            var reader = new AttributeReader(value.Slice(8, length - 8));
            while (reader.TryRead(out var attribute))
            {
                if (attribute.Type == Rta.RTA_GATEWAY)
                {
                    gateway = attribute.GetAddress();
                }
            }
            hops.Add(new NextHop(gateway, ifindex == 0 ? null : ifindex, weight, (flags & Rta.RTNH_F_ONLINK) != 0));
            value = value.Slice(Math.Min(value.Length, Headers.Align(length)));
        }
        return hops;
    }

    /// <summary>
    /// Body of RTM_NEWROUTE / RTM_DELROUTE. For a delete, protocol, type and scope are sent as
    /// "any" (0, 0, RT_SCOPE_NOWHERE), as <c>ip route del</c> does: the kernel matches those
    /// fields only when they are set, and a caller deleting "10.1.0.0/16 dev 3" should not have
    /// to know which protocol installed it.
    /// </summary>
    public static void Write(NetlinkWriter writer, Route route, bool forDelete)
    {
        var family = route.ResolveFamily();
        byte kernelFamily = Families.ToKernel(family);
        if (route.Destination is { } d && d.BaseAddress.AddressFamily != family
            || route.Gateway is { } g && g.AddressFamily != family
            || route.PreferredSource is { } s && s.AddressFamily != family)
        {
            throw new ArgumentException($"route '{route}' mixes address families", nameof(route));
        }
        if (route.Table is < 0 or 0)
        {
            throw new ArgumentException($"route '{route}': table {route.Table} is not a valid table id", nameof(route));
        }
        var header = new RtMsg
        {
            Family = kernelFamily,
            DstLength = (byte)(route.Destination?.PrefixLength ?? 0),
            // Ids above 255 only fit RTA_TABLE; rtm_table then says RT_TABLE_UNSPEC.
            Table = route.Table < 256 ? (byte)route.Table : Rta.RT_TABLE_UNSPEC,
            Protocol = forDelete ? (byte)0 : route.Protocol,
            Scope = forDelete ? (byte)RouteScope.Nowhere : (byte)route.Scope,
            Type = forDelete ? (byte)0 : route.Type,
            Flags = route.OnLink ? Rta.RTNH_F_ONLINK : 0,
        };
        writer.Write(in header);
        writer.WriteU32(Rta.RTA_TABLE, (uint)route.Table);
        if (route.Destination is { } destination && destination.PrefixLength > 0)
        {
            writer.WriteAddress(Rta.RTA_DST, destination.BaseAddress);
        }
        if (route.Gateway is { } gateway)
        {
            writer.WriteAddress(Rta.RTA_GATEWAY, gateway);
        }
        if (route.OutIndex is int oif)
        {
            writer.WriteU32(Rta.RTA_OIF, (uint)oif);
        }
        if (route.PreferredSource is { } source)
        {
            writer.WriteAddress(Rta.RTA_PREFSRC, source);
        }
        if (route.Priority is int priority)
        {
            writer.WriteU32(Rta.RTA_PRIORITY, (uint)priority);
        }
        if (route.MultiPath is { Count: > 0 } hops)
        {
            if (route.Gateway is not null || route.OutIndex is not null)
            {
                throw new ArgumentException($"route '{route}': set either a gateway/device or multipath next hops, not both", nameof(route));
            }
            int multipath = writer.BeginNested(Rta.RTA_MULTIPATH);
            foreach (var hop in hops)
            {
                if (hop.Weight is < 1 or > 256)
                {
                    throw new ArgumentException($"route '{route}': next hop weight {hop.Weight} is not within 1…256", nameof(route));
                }
                if (hop.Gateway is { } hg && hg.AddressFamily != family)
                {
                    throw new ArgumentException($"route '{route}' mixes address families", nameof(route));
                }
                int nh = writer.BeginNextHop(hop.OnLink ? (byte)Rta.RTNH_F_ONLINK : (byte)0, (byte)(hop.Weight - 1), hop.OutIndex ?? 0);
                if (hop.Gateway is { } hopGateway)
                {
                    writer.WriteAddress(Rta.RTA_GATEWAY, hopGateway);
                }
                writer.EndNested(nh);
            }
            writer.EndNested(multipath);
        }
        if (route.Mtu is int mtu && !forDelete)
        {
            int metrics = writer.BeginNested(Rta.RTA_METRICS);
            writer.WriteU32(Rta.RTAX_MTU, (uint)mtu);
            writer.EndNested(metrics);
        }
    }

    /// <summary>
    /// Dump body. With strict checking the kernel walks only the requested table; rtm_table
    /// holds ids up to 255, RTA_TABLE the rest.
    /// </summary>
    public static void WriteDump(NetlinkWriter writer, byte family, int? table)
    {
        var header = new RtMsg
        {
            Family = family,
            Table = table is int t && t < 256 ? (byte)t : Rta.RT_TABLE_UNSPEC,
        };
        writer.Write(in header);
        if (table is int id)
        {
            writer.WriteU32(Rta.RTA_TABLE, (uint)id);
        }
    }
}
