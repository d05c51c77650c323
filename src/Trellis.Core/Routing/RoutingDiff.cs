using System.Net;
using Trellis.Model;

namespace Trellis.Core.Routing;

/// <summary>
/// Desired vs observed routing state → the replace/delete operations that converge them. Pure. What
/// Trellis owns, and so may change or delete:
/// <list type="bullet">
/// <item>links named <c>trellis.&lt;digits&gt;</c> (<see cref="RoutingNames.IsVxlanDevice"/>), and the
/// non-link-local addresses on them (the kernel's fe80:: address is its own business);</item>
/// <item>main-table routes with protocol <see cref="RoutingNames.TrellisRouteProtocol"/>, wherever they point;</item>
/// <item>permanent neighbour and FDB entries on its links (dynamic ones are the kernel's cache).</item>
/// </list>
/// Everything else is read only to notice a clash: a desired route whose destination and metric are
/// held by a foreign route is not written (replace would overwrite it) but reported.
/// </summary>
public static class RoutingDiff
{
    public static RoutingPlan Plan(RoutingState desired, RoutingState observed)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(observed);
        if (desired.Devices.Count > 1)
        {
            throw new ArgumentException("desired state has more than one VXLAN device", nameof(desired));
        }

        var linkOps = new List<RoutingOp>();
        // Devices whose contents the kernel has dropped (deleted or re-created): nothing observed on them survives.
        var gone = new HashSet<string>(StringComparer.Ordinal);
        var want = desired.Devices.Count == 1 ? desired.Devices[0] : null;
        foreach (var dev in observed.Devices.Where(d => RoutingNames.IsVxlanDevice(d.Name)).OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            if (want is null || dev.Name != want.Name)
            {
                linkOps.Add(new LinkDeleteOp(dev.Name, want is null ? "no VXLAN device wanted" : $"replaced by {want.Name}"));
                gone.Add(dev.Name);
            }
        }
        if (want is not null)
        {
            var have = observed.Devices.FirstOrDefault(d => d.Name == want.Name);
            if (have is null)
            {
                linkOps.Add(new LinkAddOp(want));
                gone.Add(want.Name);
            }
            else if (want.DiffersAtCreation(have))
            {
                // VNI, port, local address and lower device are fixed at creation: re-create, as flannel
                // does for an incompatible existing device. Everything on it is re-added below.
                linkOps.Add(new LinkDeleteOp(have.Name, $"re-created: is {have}"));
                linkOps.Add(new LinkAddOp(want));
                gone.Add(want.Name);
            }
            else if (have.Mtu != want.Mtu || have.Mac != want.Mac || have.Up != want.Up)
            {
                linkOps.Add(new LinkSetOp(want, have.Mtu != want.Mtu, have.Mac != want.Mac, have.Up != want.Up));
            }
        }

        bool Survives(string device) => !gone.Contains(device);
        bool OnOwnedDevice(string device) => RoutingNames.IsVxlanDevice(device) && Survives(device);

        // Addresses.
        var addressOps = new List<RoutingOp>();
        var haveAddresses = observed.Addresses.Where(a => OnOwnedDevice(a.Device) && !IsLinkLocal(a.Address.Address)).ToHashSet();
        foreach (var a in desired.Addresses.Where(a => !haveAddresses.Contains(a)))
        {
            addressOps.Add(new AddressAddOp(a));
        }
        var wantAddresses = desired.Addresses.ToHashSet();
        foreach (var a in haveAddresses.Where(a => !wantAddresses.Contains(a)))
        {
            addressOps.Add(new AddressDeleteOp(a));
        }

        // Routes, keyed as the kernel keys them in one table: destination + metric.
        var ownedRoutes = new Dictionary<(IPNetwork, int), RouteSpec>();
        var foreignRoutes = new Dictionary<(IPNetwork, int), RouteSpec>();
        foreach (var r in observed.Routes)
        {
            if (r.IsOwned)
            {
                if (Survives(r.Device))
                {
                    ownedRoutes.TryAdd((r.Destination, r.Metric), r);
                }
            }
            else
            {
                foreignRoutes.TryAdd((r.Destination, r.Metric), r);
            }
        }
        var routeReplaces = new List<RoutingOp>();
        var conflicts = new List<RouteConflict>();
        var wantRouteKeys = new HashSet<(IPNetwork, int)>();
        foreach (var r in desired.Routes)
        {
            var key = (r.Destination, r.Metric);
            wantRouteKeys.Add(key);
            if (ownedRoutes.TryGetValue(key, out var have))
            {
                if (have != r)
                {
                    routeReplaces.Add(new RouteReplaceOp(r));
                }
            }
            else if (foreignRoutes.TryGetValue(key, out var foreign))
            {
                conflicts.Add(new RouteConflict(r, foreign));
            }
            else
            {
                routeReplaces.Add(new RouteReplaceOp(r));
            }
        }
        var routeDeletes = new List<RoutingOp>();
        foreach (var r in observed.Routes.Where(r => r.IsOwned && Survives(r.Device) && !wantRouteKeys.Contains((r.Destination, r.Metric))))
        {
            routeDeletes.Add(new RouteDeleteOp(r));
        }

        // Neighbours, keyed (device, IP). A dynamic entry for a desired IP is replaced (made permanent);
        // a dynamic entry for anything else is the kernel's and stays.
        var neighReplaces = new List<RoutingOp>();
        var neighDeletes = new List<RoutingOp>();
        var haveNeigh = observed.Neighbours.Where(n => OnOwnedDevice(n.Device))
            .GroupBy(n => (n.Device, n.Ip)).ToDictionary(g => g.Key, g => g.First());
        var wantNeighKeys = new HashSet<(string, IPAddress)>();
        foreach (var n in desired.Neighbours)
        {
            wantNeighKeys.Add((n.Device, n.Ip));
            if (!haveNeigh.TryGetValue((n.Device, n.Ip), out var have) || have != n)
            {
                neighReplaces.Add(new NeighReplaceOp(n));
            }
        }
        foreach (var (key, n) in haveNeigh)
        {
            if (n.Permanent && !wantNeighKeys.Contains(key))
            {
                neighDeletes.Add(new NeighDeleteOp(n));
            }
        }

        // FDB, keyed (device, MAC). A VXLAN MAC may have several remotes; the one we want is kept or
        // written with replace, every other permanent remote of an owned device is deleted by its dst.
        var fdbReplaces = new List<RoutingOp>();
        var fdbDeletes = new List<RoutingOp>();
        var haveFdb = observed.Fdb.Where(f => OnOwnedDevice(f.Device)).ToList();
        var wantFdb = desired.Fdb.ToHashSet();
        foreach (var f in desired.Fdb)
        {
            if (!haveFdb.Contains(f))
            {
                fdbReplaces.Add(new FdbReplaceOp(f));
            }
        }
        foreach (var f in haveFdb)
        {
            if (f.Permanent && !wantFdb.Contains(f))
            {
                bool replacedInPlace = desired.Fdb.Any(w => w.Device == f.Device && w.Mac == f.Mac)
                    && haveFdb.Count(h => h.Device == f.Device && h.Mac == f.Mac) == 1;
                if (!replacedInPlace)
                {
                    fdbDeletes.Add(new FdbDeleteOp(f));
                }
            }
        }

        // Order, after flannel's: device first; stale routes out before their next hops go; neighbour and
        // FDB entries in before the route that uses them (else the kernel ARPs on the VXLAN device for the
        // next hop and drops the first packets); stale neighbour and FDB entries last.
        var ops = new List<RoutingOp>();
        ops.AddRange(linkOps);
        ops.AddRange(addressOps);
        ops.AddRange(routeDeletes.OrderBy(o => ((RouteDeleteOp)o).Route.Destination, IPNetworkOrder.Instance));
        ops.AddRange(fdbReplaces.OrderBy(o => ((FdbReplaceOp)o).Entry.Mac));
        ops.AddRange(neighReplaces.OrderBy(o => IPAddressMath.ToInteger(((NeighReplaceOp)o).Neighbour.Ip)));
        ops.AddRange(routeReplaces.OrderBy(o => ((RouteReplaceOp)o).Route.Destination, IPNetworkOrder.Instance));
        ops.AddRange(neighDeletes.OrderBy(o => IPAddressMath.ToInteger(((NeighDeleteOp)o).Neighbour.Ip)));
        ops.AddRange(fdbDeletes.OrderBy(o => ((FdbDeleteOp)o).Entry.Mac).ThenBy(o => IPAddressMath.ToInteger(((FdbDeleteOp)o).Entry.Destination)));
        return new RoutingPlan(ops, conflicts);
    }

    private static bool IsLinkLocal(IPAddress address) => address.IsIPv6LinkLocal;
}
