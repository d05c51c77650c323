using System.Net;
using System.Net.Sockets;
using Trellis.Model;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Codec;

/// <summary>RTM_*ADDR bodies: ifaddrmsg + IFA_* attributes.</summary>
internal static class AddrCodec
{
    public static Address Decode(in NetlinkMessage message)
    {
        var header = Headers.Read<IfAddrMsg>(message.Payload, "ifaddrmsg", out var attributes);
        IPAddress? address = null, local = null, broadcast = null;
        string? label = null;
        uint flags = header.Flags;
        var reader = new AttributeReader(attributes);
        while (reader.TryRead(out var attribute))
        {
            switch (attribute.Type)
            {
                case Ifa.IFA_ADDRESS: address = attribute.GetAddress(); break;
                case Ifa.IFA_LOCAL: local = attribute.GetAddress(); break;
                case Ifa.IFA_BROADCAST: broadcast = attribute.GetAddress(); break;
                case Ifa.IFA_LABEL: label = attribute.GetString(); break;
                // ifa_flags is only 8 bits; IFA_FLAGS carries all 32 (e.g. IFA_F_NOPREFIXROUTE).
                case Ifa.IFA_FLAGS: flags = attribute.GetU32(); break;
            }
        }
        // For IPv4, IFA_LOCAL is the interface's own address and IFA_ADDRESS the peer on a
        // point-to-point link; IPv6 sends only IFA_ADDRESS unless there is a peer.
        var own = local ?? address
            ?? throw NetlinkException.Malformed($"RTM_NEWADDR on ifindex {header.Index} has no address");
        int max = own.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (header.PrefixLength > max)
        {
            throw NetlinkException.Malformed($"prefix length {header.PrefixLength} for {own}");
        }
        return new Address(header.Index, new IPCidr(own, header.PrefixLength), (RouteScope)header.Scope, flags, label)
        {
            Broadcast = broadcast,
        };
    }

    public static void Write(NetlinkWriter writer, int index, IPCidr cidr, AddrOptions? options, bool forDelete)
    {
        byte family = Families.ToKernel(cidr.Family);
        uint flags = options is { NoDad: true } ? Ifa.IFA_F_NODAD : 0;
        var header = new IfAddrMsg
        {
            Family = family,
            PrefixLength = checked((byte)cidr.PrefixLength),
            Flags = (byte)flags,
            Scope = (byte)(options?.Scope ?? RouteScope.Universe),
            Index = index,
        };
        writer.Write(in header);
        // Like iproute2: IFA_LOCAL is the address, IFA_ADDRESS the same address (no peer).
        writer.WriteAddress(Ifa.IFA_LOCAL, cidr.Address);
        writer.WriteAddress(Ifa.IFA_ADDRESS, cidr.Address);
        if (forDelete)
        {
            return;
        }
        if (family == AddressFamilies.AF_INET)
        {
            var broadcast = options?.Broadcast;
            if (broadcast is null && cidr.PrefixLength < 31)
            {
                broadcast = IPAddressMath.LastAddress(cidr.Network);
            }
            if (broadcast is not null)
            {
                writer.WriteAddress(Ifa.IFA_BROADCAST, broadcast);
            }
        }
        if (flags != 0)
        {
            writer.WriteU32(Ifa.IFA_FLAGS, flags);
        }
    }

    /// <summary>Dump body; with strict checking the kernel filters by ifa_index itself.</summary>
    public static void WriteDump(NetlinkWriter writer, byte family, int? index)
    {
        var header = new IfAddrMsg { Family = family, Index = index ?? 0 };
        writer.Write(in header);
    }
}
