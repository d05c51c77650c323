using System.Net;
using Trellis.Core.Routing;
using Trellis.Netlink;

namespace Trellis.Agent.Routing;

public sealed partial class RoutingReconciler
{
    // Trellis.Netlink keeps its errno table internal; the one value raised here.
    private const int ENODEV = 19;

    /// <summary>
    /// Executes every operation of <paramref name="plan"/>, in its order, with the rtnetlink verb of its name.
    /// "Already exists" on an add and "not found" on a delete count as converged (another agent run, or the
    /// kernel itself, got there first); any other failure is recorded and the rest still run — the next sync
    /// retries what failed. Conflicts in the plan are not operations and are left alone.
    /// </summary>
    public RoutingApplyResult Apply(RoutingPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        int applied = 0, converged = 0;
        var errors = new List<RoutingOpError>();
        foreach (var op in plan.Ops)
        {
            try
            {
                if (Execute(op))
                {
                    applied++;
                }
                else
                {
                    converged++;
                }
            }
            catch (NetlinkException e)
            {
                errors.Add(new RoutingOpError(op, e));
            }
            catch (ArgumentException e)
            {
                // Raised before anything is sent (a value the kernel could not take); the op is skipped.
                errors.Add(new RoutingOpError(op, e));
            }
        }
        return new RoutingApplyResult(applied, converged, errors);
    }

    /// <summary>True when the kernel changed, false when it already was as asked.</summary>
    private bool Execute(RoutingOp op)
    {
        switch (op)
        {
            case LinkAddOp add:
                return LinkAdd(add.Device);
            case LinkDeleteOp del:
                return _nl.LinkDelByName(del.Name);
            case LinkSetOp set:
                LinkSet(set);
                return true;
            case AddressAddOp add:
                return Tolerate(() => _nl.AddrAdd(Index(add.Address.Device), add.Address.Address), exists: true);
            case AddressDeleteOp del:
                return IndexIfPresent(del.Address.Device) is int ai
                    && Tolerate(() => _nl.AddrDel(ai, del.Address.Address), notFound: true);
            case RouteReplaceOp replace:
                _nl.RouteReplace(ToRoute(replace.Route, Index(replace.Route.Device)));
                return true;
            case RouteDeleteOp del:
                return RouteDelete(del.Route);
            case NeighReplaceOp replace:
                _nl.NeighReplace(new Neigh(Index(replace.Neighbour.Device), replace.Neighbour.Ip, replace.Neighbour.Mac.ToBytes(), NeighState.Permanent));
                return true;
            case NeighDeleteOp del:
                return IndexIfPresent(del.Neighbour.Device) is int ni
                    && Tolerate(() => _nl.NeighDel(new Neigh(ni, del.Neighbour.Ip, null)), notFound: true);
            case FdbReplaceOp replace:
                _nl.FdbReplace(new Fdb(Index(replace.Entry.Device), replace.Entry.Mac.ToBytes(), replace.Entry.Destination, Self: true));
                return true;
            case FdbDeleteOp del:
                return IndexIfPresent(del.Entry.Device) is int fi
                    && Tolerate(() => _nl.FdbDel(new Fdb(fi, del.Entry.Mac.ToBytes(), del.Entry.Destination, Self: true)), notFound: true);
            default:
                throw new ArgumentException($"unknown routing operation {op.GetType().Name}", nameof(op));
        }
    }

    private bool LinkAdd(VxlanDeviceSpec d)
    {
        var lower = _nl.LinkGetByName(d.UnderlayDevice)
            ?? throw new NetlinkException(ENODEV, "RTM_NEWLINK", $"vxlan '{d.Name}'", $"underlay device '{d.UnderlayDevice}' does not exist");
        Link link;
        try
        {
            link = _nl.LinkAddVxlan(d.Name, new VxlanOptions
            {
                Vni = d.Vni,
                Port = d.Port,
                Local = d.Local,
                DeviceIndex = lower.Index,
                Learning = d.Learning,
                Mtu = d.Mtu,
                Mac = d.Mac.ToBytes(),
            });
        }
        catch (NetlinkException e) when (e.IsExists)
        {
            // Made since we observed; whatever it is, the next observation judges it (and re-creates it if it differs).
            return false;
        }
        if (d.Up)
        {
            _nl.LinkSetUp(link.Index);
        }
        return true;
    }

    private void LinkSet(LinkSetOp set)
    {
        var d = set.Device;
        int index = Index(d.Name);
        if (set.SetMtu)
        {
            _nl.LinkSetMtu(index, d.Mtu);
        }
        if (set.SetMac)
        {
            // VXLAN devices take a new address while up (IFF_LIVE_ADDR_CHANGE); the kernel then flushes the
            // device's neighbours, which Sync re-adds.
            _nl.LinkSetMac(index, d.Mac.ToBytes());
        }
        if (set.SetUp)
        {
            if (d.Up)
            {
                _nl.LinkSetUp(index);
            }
            else
            {
                _nl.LinkSetDown(index);
            }
        }
    }

    private bool RouteDelete(RouteSpec r)
    {
        int? index = null;
        if (r.Device.Length > 0)
        {
            if (IndexIfPresent(r.Device) is not int i)
            {
                return false; // the kernel deleted the route with its device
            }
            index = i;
        }
        return Tolerate(() => _nl.RouteDel(ToRoute(r, index)), notFound: true);
    }

    private static Route ToRoute(RouteSpec r, int? index) => new()
    {
        Destination = r.Destination,
        Gateway = r.Gateway.Equals(IPAddress.Any) || r.Gateway.Equals(IPAddress.IPv6Any) ? null : r.Gateway,
        OutIndex = index,
        OnLink = r.OnLink,
        Protocol = r.Protocol,
        Priority = r.Metric,
        Scope = RouteScope.Universe,
        Table = RouteTables.Main,
        Family = r.Destination.BaseAddress.AddressFamily,
    };

    private int Index(string device) =>
        IndexIfPresent(device) ?? throw new NetlinkException(ENODEV, "RTM_GETLINK", $"link '{device}'", "no such device");

    private int? IndexIfPresent(string device) =>
        RoutingNames.IsValidInterfaceName(device) ? _nl.LinkGetByName(device)?.Index : null;

    /// <summary>Runs a change; an error of the tolerated kind means the kernel already is as asked (false).</summary>
    private static bool Tolerate(Action change, bool exists = false, bool notFound = false)
    {
        try
        {
            change();
            return true;
        }
        catch (NetlinkException e) when ((exists && e.IsExists) || (notFound && e.IsNotFound))
        {
            return false;
        }
    }
}
