using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Trellis.Core.Endpoints;
using Trellis.Netlink;

namespace Trellis.Cli.Lab;

/// <summary>
/// MetalLB's speaker for the lab, layer-3 style (the lab has no L2 speaker): the controller process
/// runs inside the underlay netns — the lab's "outside" router — so installing
/// <c>LBIP/32 via NODE-IP proto 202</c> (ECMP over every eligible node) there is what a BGP announcement achieves on a real network:
/// traffic from outside reaches a node, whose proxy takes it to a backend. The routes come from
/// <see cref="LoadBalancerRoutes"/> (Ready nodes for Cluster, nodes with a ready endpoint for Local).
/// Only routes of protocol <see cref="LoadBalancerRoutes.RouteProtocol"/> are listed, changed or
/// removed, so nothing else in the table is touched; a periodic pass repairs hand-made drift.
/// Routes stay when the announcer stops (as trellisd never flushes on exit): a controller restart
/// must not blackhole Services, and `lab down` removes the netns with them.
/// </summary>
public sealed class LoadBalancerAnnouncer(EndpointSliceController source, TextWriter log)
{
    public static readonly TimeSpan ResyncPeriod = TimeSpan.FromSeconds(10);

    public async Task RunAsync(CancellationToken ct)
    {
        // The whole process was started in the underlay netns (nsenter), so any thread's socket is there.
        using var nl = RtNetlink.Open();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                foreach (var change in Sync(nl, source.LoadBalancerRoutes))
                {
                    Log(change);
                }
            }
            catch (NetlinkException e)
            {
                Log($"sync failed: {e.Message}; retrying");
            }
            await source.WaitRoutesChangedAsync(ResyncPeriod, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Makes the protocol-202 routes of the main table equal <paramref name="desired"/>: one next hop
    /// is a plain gateway route, several an ECMP route (the kernel hashes flows across the nodes, as a
    /// router does with several BGP paths). Returns the changes made.
    /// </summary>
    public static IReadOnlyList<string> Sync(RtNetlink nl, IReadOnlyList<LoadBalancerRoute> desired)
    {
        ArgumentNullException.ThrowIfNull(nl);
        ArgumentNullException.ThrowIfNull(desired);
        var changes = new List<string>();
        var want = desired.ToDictionary(r => new IPNetwork(r.Destination, 32), r => r.NextHops);
        var have = nl.RouteList(AddressFamily.InterNetwork).Where(r => r.Protocol == LoadBalancerRoutes.RouteProtocol).ToList();
        foreach (var r in have)
        {
            if (r.Destination is not { } dst || !want.TryGetValue(dst, out var hops))
            {
                try
                {
                    nl.RouteDel(r);
                    changes.Add($"withdrew {r}");
                }
                catch (NetlinkException e) when (e.IsNotFound)
                {
                    // Gone already.
                }
                continue;
            }
            if (Gateways(r).SetEquals(hops))
            {
                want.Remove(dst);
            }
        }
        foreach (var (dst, hops) in want)
        {
            var route = hops.Count == 1
                ? new Route { Destination = dst, Gateway = hops[0], Protocol = LoadBalancerRoutes.RouteProtocol }
                : new Route { Destination = dst, MultiPath = [.. hops.Select(h => new NextHop(h))], Protocol = LoadBalancerRoutes.RouteProtocol };
            nl.RouteReplace(route);
            changes.Add($"announced {route}");
        }
        return changes;

        static HashSet<IPAddress> Gateways(Route r) =>
            r.MultiPath is { Count: > 0 } mp ? mp.Select(h => h.Gateway).OfType<IPAddress>().ToHashSet() : r.Gateway is { } g ? [g] : [];
    }

    private void Log(string message) =>
        log.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} lb-announcer: {message}");
}
