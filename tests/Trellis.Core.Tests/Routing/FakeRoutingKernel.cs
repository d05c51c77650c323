using Trellis.Core.Routing;

namespace Trellis.Core.Tests.Routing;

/// <summary>
/// Just enough of the kernel to check that a plan converges: the ops' effects, including the ones the
/// kernel adds on its own (deleting a link drops its addresses, routes, neighbours and FDB entries).
/// </summary>
internal sealed class FakeRoutingKernel
{
    public RoutingState State { get; private set; } = RoutingState.Empty;

    public void Apply(RoutingPlan plan)
    {
        foreach (var op in plan.Ops)
        {
            Apply(op);
        }
    }

    public void Apply(RoutingOp op)
    {
        var s = State;
        State = op switch
        {
            LinkAddOp a => s with { Devices = [.. s.Devices.Where(d => d.Name != a.Device.Name), a.Device] },
            LinkDeleteOp d => s with
            {
                Devices = [.. s.Devices.Where(x => x.Name != d.Name)],
                Addresses = [.. s.Addresses.Where(x => x.Device != d.Name)],
                Routes = [.. s.Routes.Where(x => x.Device != d.Name)],
                Neighbours = [.. s.Neighbours.Where(x => x.Device != d.Name)],
                Fdb = [.. s.Fdb.Where(x => x.Device != d.Name)],
            },
            LinkSetOp l => s with { Devices = [.. s.Devices.Select(x => x.Name == l.Device.Name ? l.Device : x)] },
            AddressAddOp a => s with { Addresses = [.. s.Addresses.Where(x => x != a.Address), a.Address] },
            AddressDeleteOp a => s with { Addresses = [.. s.Addresses.Where(x => x != a.Address)] },
            RouteReplaceOp r => s with { Routes = [.. s.Routes.Where(x => (x.Destination, x.Metric) != (r.Route.Destination, r.Route.Metric)), r.Route] },
            RouteDeleteOp r => s with { Routes = [.. s.Routes.Where(x => x != r.Route)] },
            NeighReplaceOp n => s with { Neighbours = [.. s.Neighbours.Where(x => (x.Device, x.Ip) != (n.Neighbour.Device, n.Neighbour.Ip)), n.Neighbour] },
            NeighDeleteOp n => s with { Neighbours = [.. s.Neighbours.Where(x => (x.Device, x.Ip) != (n.Neighbour.Device, n.Neighbour.Ip))] },
            // bridge fdb replace rewrites the MAC's first remote (or adds one).
            FdbReplaceOp f => s with { Fdb = ReplaceFirst(s.Fdb, f.Entry) },
            FdbDeleteOp f => s with { Fdb = [.. s.Fdb.Where(x => (x.Device, x.Mac, x.Destination) != (f.Entry.Device, f.Entry.Mac, f.Entry.Destination))] },
            _ => throw new InvalidOperationException($"unknown op {op}"),
        };
    }

    public void Set(RoutingState state) => State = state;

    private static List<FdbSpec> ReplaceFirst(IReadOnlyList<FdbSpec> fdb, FdbSpec entry)
    {
        var list = fdb.ToList();
        int i = list.FindIndex(x => x.Device == entry.Device && x.Mac == entry.Mac);
        if (i >= 0)
        {
            list[i] = entry;
        }
        else
        {
            list.Add(entry);
        }
        return list;
    }
}
