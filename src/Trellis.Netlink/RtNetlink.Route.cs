using System.Net.Sockets;
using Trellis.Netlink.Codec;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink;

public sealed partial class RtNetlink
{
    private static readonly MessageHandler<Collector<Route>> s_collectRoute = static (in NetlinkMessage message, Collector<Route> collector) =>
    {
        if (message.Type != MessageType.RTM_NEWROUTE)
        {
            return;
        }
        var route = RouteCodec.Decode(message);
        if (route is null || (collector.Table is int table && route.Table != table))
        {
            return;
        }
        collector.Items.Add(route);
    };

    /// <summary><c>ip route add ROUTE</c>; EEXIST when an identical route exists.</summary>
    public void RouteAdd(Route r) =>
        ModifyRoute(MessageType.RTM_NEWROUTE, MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_EXCL, r);

    /// <summary><c>ip route replace ROUTE</c></summary>
    public void RouteReplace(Route r) =>
        ModifyRoute(MessageType.RTM_NEWROUTE, MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_REPLACE, r);

    /// <summary><c>ip route del ROUTE</c> (protocol, type and scope match anything, as with <c>ip</c>).</summary>
    public void RouteDel(Route r) =>
        ModifyRoute(MessageType.RTM_DELROUTE, 0, r);

    /// <summary><c>ip [-4|-6] route show table T</c>; <paramref name="table"/> null lists every table (<c>table all</c>).</summary>
    public IReadOnlyList<Route> RouteList(AddressFamily family, int? table = RouteTables.Main)
    {
        var collector = new Collector<Route> { Family = Families.ToKernel(family), Table = table };
        var op = new Op(MessageType.RTM_GETROUTE, "routes");
        try
        {
            return Dump(MessageType.RTM_GETROUTE, collector, static (w, c) => RouteCodec.WriteDump(w, c.Family, c.Table), s_collectRoute, op);
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT && table is not null)
        {
            // With strict checking, dumping a table that does not exist (yet) is ENOENT
            // ("FIB table does not exist"); for a listing that is simply empty.
            return [];
        }
    }

    private void ModifyRoute(ushort type, ushort flags, Route route)
    {
        ArgumentNullException.ThrowIfNull(route);
        lock (_lock)
        {
            uint sequence = Begin(type, (ushort)(MessageFlags.NLM_F_ACK | flags));
            RouteCodec.Write(_writer, route, forDelete: type == MessageType.RTM_DELROUTE);
            Execute(sequence, new Op(type, "route", Subject: route));
        }
    }
}
