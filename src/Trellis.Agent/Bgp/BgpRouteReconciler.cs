using System.Net;
using System.Net.Sockets;
using Trellis.Core.Routing;
using Trellis.Netlink;

namespace Trellis.Agent.Bgp;

/// <summary>What one <see cref="BgpRouteReconciler.Sync"/> did.</summary>
/// <param name="Installed">Protocol-203 routes in the kernel afterwards.</param>
/// <param name="Changes">One line per route replaced or deleted (<c>replace …</c>, <c>del …</c>).</param>
/// <param name="Errors">Routes that could not be installed, with why (a foreign route in the way, an errno).</param>
internal sealed record BgpRouteSyncResult(int Installed, IReadOnlyList<string> Changes, IReadOnlyList<string> Errors);

/// <summary>
/// Keeps the main table's protocol-203 routes equal to the desired list: <c>ip route replace</c> what is
/// missing or different, <c>ip route del</c> what no peer offers any more (unless deleting is held back
/// during a graceful restart). Routes of any other protocol are never touched; one that holds a desired
/// destination is reported and left alone.
/// </summary>
internal sealed class BgpRouteReconciler(RtNetlink nl, string device)
{
    /// <summary>This node's protocol-203 IPv4 routes in the main table.</summary>
    public List<Route> Observe() =>
        [.. nl.RouteList(AddressFamily.InterNetwork).Where(r => r.Protocol == RoutingNames.TrellisBgpRouteProtocol && r.Destination is not null)];

    public BgpRouteSyncResult Sync(IReadOnlyList<RouteSpec> desired, bool allowDelete)
    {
        var changes = new List<string>();
        var errors = new List<string>();
        var all = nl.RouteList(AddressFamily.InterNetwork);
        var ours = all.Where(r => r.Protocol == RoutingNames.TrellisBgpRouteProtocol && r.Destination is not null && (r.Priority ?? 0) == 0)
            .GroupBy(r => r.Destination!.Value).ToDictionary(g => g.Key, g => g.First());
        var foreign = all.Where(r => r.Protocol != RoutingNames.TrellisBgpRouteProtocol && r.Destination is not null && (r.Priority ?? 0) == 0 && r.Type == RouteTypes.Unicast)
            .GroupBy(r => r.Destination!.Value).ToDictionary(g => g.Key, g => g.First());
        int? index = nl.LinkGetByName(device)?.Index;
        if (index is null)
        {
            return new BgpRouteSyncResult(ours.Count, [], [$"device {device}: not found; no routes installed"]);
        }
        var wanted = new HashSet<IPNetwork>();
        foreach (var spec in desired)
        {
            wanted.Add(spec.Destination);
            if (ours.TryGetValue(spec.Destination, out var have) && Equals(have.Gateway, spec.Gateway) && have.OutIndex == index)
            {
                continue;
            }
            if (foreign.TryGetValue(spec.Destination, out var other))
            {
                errors.Add($"{spec.Destination}: held by a route Trellis does not own (proto {other.Protocol}, via {other.Gateway}); left alone");
                continue;
            }
            try
            {
                nl.RouteReplace(new Route
                {
                    Destination = spec.Destination,
                    Gateway = spec.Gateway,
                    OutIndex = index,
                    Protocol = RoutingNames.TrellisBgpRouteProtocol,
                    Scope = RouteScope.Universe,
                });
                changes.Add($"replace {spec}");
            }
            catch (NetlinkException e)
            {
                errors.Add($"ip route replace {spec}: {e.Message}");
            }
        }
        int installed = wanted.Count;
        foreach (var (dst, route) in ours)
        {
            if (wanted.Contains(dst))
            {
                continue;
            }
            if (!allowDelete)
            {
                installed++;
                continue;
            }
            try
            {
                nl.RouteDel(route);
                changes.Add($"del {dst} via {route.Gateway}");
            }
            catch (NetlinkException e) when (e.IsNotFound)
            {
                // gone already
            }
            catch (NetlinkException e)
            {
                errors.Add($"ip route del {dst}: {e.Message}");
                installed++;
            }
        }
        return new BgpRouteSyncResult(installed - errors.Count(e => !e.StartsWith("ip route del", StringComparison.Ordinal)), changes, errors);
    }

    internal static bool SameGateway(IPAddress? a, IPAddress? b) => Equals(a, b);
}
