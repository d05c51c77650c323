using System.Net.Sockets;
using Trellis.Model;
using Trellis.Netlink.Codec;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink;

public sealed partial class RtNetlink
{
    private static readonly MessageHandler<Collector<Address>> s_collectAddress = static (in NetlinkMessage message, Collector<Address> collector) =>
    {
        if (message.Type != MessageType.RTM_NEWADDR)
        {
            return;
        }
        var address = AddrCodec.Decode(message);
        // The kernel filters too (strict checking); this keeps the result right without it.
        if (collector.Index is int index && address.Index != index)
        {
            return;
        }
        if (collector.Family != AddressFamilies.AF_UNSPEC && Families.ToKernel(address.Cidr.Family) != collector.Family)
        {
            return;
        }
        collector.Items.Add(address);
    };

    /// <summary><c>ip addr add CIDR dev X</c>; EEXIST when the address is already there.</summary>
    public void AddrAdd(int index, IPCidr address, AddrOptions? o = null) =>
        ModifyAddress(MessageType.RTM_NEWADDR, MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_EXCL, index, address, o);

    /// <summary>
    /// <c>ip addr replace CIDR dev X</c>: adds the address, or leaves it in place without EEXIST.
    /// For an address that already exists the kernel refreshes only lifetimes, metric and
    /// protocol, not scope or broadcast; delete and add to change those.
    /// </summary>
    public void AddrReplace(int index, IPCidr address, AddrOptions? o = null) =>
        ModifyAddress(MessageType.RTM_NEWADDR, MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_REPLACE, index, address, o);

    /// <summary><c>ip addr del CIDR dev X</c></summary>
    public void AddrDel(int index, IPCidr address) =>
        ModifyAddress(MessageType.RTM_DELADDR, 0, index, address, null);

    /// <summary><c>ip [-4|-6] addr show [dev X]</c></summary>
    public IReadOnlyList<Address> AddrList(int? index = null, AddressFamily? family = null)
    {
        if (index is int i)
        {
            CheckIndex(i);
        }
        var collector = new Collector<Address> { Index = index, Family = Families.ToKernel(family) };
        return Dump(MessageType.RTM_GETADDR, collector, static (w, c) => AddrCodec.WriteDump(w, c.Family, c.Index), s_collectAddress,
            new Op(MessageType.RTM_GETADDR, "addresses", Index: index ?? 0));
    }

    private void ModifyAddress(ushort type, ushort flags, int index, IPCidr address, AddrOptions? options)
    {
        CheckIndex(index);
        if (address.Address is null || address.PrefixLength < 0 || address.PrefixLength > address.MaxPrefixLength)
        {
            throw new ArgumentException($"'{address}' is not a valid interface address", nameof(address));
        }
        lock (_lock)
        {
            uint sequence = Begin(type, (ushort)(MessageFlags.NLM_F_ACK | flags));
            AddrCodec.Write(_writer, index, address, options, forDelete: type == MessageType.RTM_DELADDR);
            Execute(sequence, new Op(type, "address", Index: index, Subject: address));
        }
    }
}
