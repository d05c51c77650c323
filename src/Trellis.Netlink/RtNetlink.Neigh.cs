using System.Net.Sockets;
using Trellis.Netlink.Codec;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink;

public sealed partial class RtNetlink
{
    private static readonly MessageHandler<Collector<Neigh>> s_collectNeigh = static (in NetlinkMessage message, Collector<Neigh> collector) =>
    {
        if (message.Type != MessageType.RTM_NEWNEIGH || message.Payload.IsEmpty
            || message.Payload[0] is not (AddressFamilies.AF_INET or AddressFamilies.AF_INET6))
        {
            return;
        }
        var neigh = NeighCodec.DecodeNeigh(message);
        if (collector.Index is int index && neigh.Index != index)
        {
            return;
        }
        collector.Items.Add(neigh);
    };

    private static readonly MessageHandler<Collector<Fdb>> s_collectFdb = static (in NetlinkMessage message, Collector<Fdb> collector) =>
    {
        if (message.Type != MessageType.RTM_NEWNEIGH || message.Payload.IsEmpty || message.Payload[0] != AddressFamilies.AF_BRIDGE)
        {
            return;
        }
        var fdb = NeighCodec.DecodeFdb(message);
        if (collector.Index is int index && fdb.Index != index)
        {
            return;
        }
        collector.Items.Add(fdb);
    };

    /// <summary><c>ip neigh replace IP lladdr MAC dev X nud STATE</c></summary>
    public void NeighReplace(Neigh n)
    {
        ArgumentNullException.ThrowIfNull(n);
        ModifyNeigh(MessageType.RTM_NEWNEIGH, MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_REPLACE, n);
    }

    /// <summary><c>ip neigh del IP dev X</c></summary>
    public void NeighDel(Neigh n)
    {
        ArgumentNullException.ThrowIfNull(n);
        ModifyNeigh(MessageType.RTM_DELNEIGH, 0, n);
    }

    /// <summary><c>ip [-4|-6] neigh show [dev X]</c> (including NOARP entries, which <c>ip</c> hides).</summary>
    public IReadOnlyList<Neigh> NeighList(int? index = null, AddressFamily? family = null)
    {
        if (index is int i)
        {
            CheckIndex(i);
        }
        var collector = new Collector<Neigh> { Index = index, Family = Families.ToKernel(family) };
        return Dump(MessageType.RTM_GETNEIGH, collector, static (w, c) => NeighCodec.WriteNeighDump(w, c.Family, c.Index), s_collectNeigh,
            new Op(MessageType.RTM_GETNEIGH, "neighbours", Index: index ?? 0));
    }

    /// <summary><c>bridge fdb replace MAC dev X [dst IP] [vni N] self|master permanent</c></summary>
    public void FdbReplace(Fdb f)
    {
        ArgumentNullException.ThrowIfNull(f);
        ModifyFdb(MessageType.RTM_NEWNEIGH, MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_REPLACE, f);
    }

    /// <summary>
    /// <c>bridge fdb append MAC dev X dst IP</c>: add another remote to an entry, as used for the
    /// all-zeros MAC that floods BUM traffic to several VTEPs.
    /// </summary>
    public void FdbAppend(Fdb f)
    {
        ArgumentNullException.ThrowIfNull(f);
        ModifyFdb(MessageType.RTM_NEWNEIGH, MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_APPEND, f);
    }

    /// <summary><c>bridge fdb del MAC dev X [dst IP] self|master</c></summary>
    public void FdbDel(Fdb f)
    {
        ArgumentNullException.ThrowIfNull(f);
        ModifyFdb(MessageType.RTM_DELNEIGH, 0, f);
    }

    /// <summary><c>bridge fdb show [brport X]</c></summary>
    public IReadOnlyList<Fdb> FdbList(int? index = null)
    {
        if (index is int i)
        {
            CheckIndex(i);
        }
        var collector = new Collector<Fdb> { Index = index };
        return Dump(MessageType.RTM_GETNEIGH, collector, static (w, c) => NeighCodec.WriteFdbDump(w, c.Index), s_collectFdb,
            new Op(MessageType.RTM_GETNEIGH, "fdb entries", Index: index ?? 0));
    }

    private void ModifyNeigh(ushort type, ushort flags, Neigh neigh)
    {
        CheckIndex(neigh.Index, nameof(neigh));
        lock (_lock)
        {
            uint sequence = Begin(type, (ushort)(MessageFlags.NLM_F_ACK | flags));
            NeighCodec.WriteNeigh(_writer, neigh, forDelete: type == MessageType.RTM_DELNEIGH);
            Execute(sequence, new Op(type, "neighbour", Index: neigh.Index, Subject: neigh.Ip));
        }
    }

    private void ModifyFdb(ushort type, ushort flags, Fdb fdb)
    {
        CheckIndex(fdb.Index, nameof(fdb));
        ArgumentNullException.ThrowIfNull(fdb.Mac, nameof(fdb));
        lock (_lock)
        {
            uint sequence = Begin(type, (ushort)(MessageFlags.NLM_F_ACK | flags));
            NeighCodec.WriteFdb(_writer, fdb, forDelete: type == MessageType.RTM_DELNEIGH);
            Execute(sequence, new Op(type, "fdb entry", Index: fdb.Index, Subject: fdb));
        }
    }
}
