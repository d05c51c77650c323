using System.Net;
using System.Net.Sockets;
using Trellis.Core.Objects;

namespace Trellis.Core.Endpoints;

/// <summary>One announced LoadBalancer address: <c>IP/32</c> via these node IPs (first is preferred; all for ECMP).</summary>
public sealed record LoadBalancerRoute(IPAddress Destination, IReadOnlyList<IPAddress> NextHops, IReadOnlyList<string> Services);

/// <summary>
/// What MetalLB in BGP mode announces, as a pure function: for every LoadBalancer Service with
/// <c>status.loadBalancer.ingress[].ip</c>, a host route to that IP via the nodes that may take its
/// traffic — every Ready node for <c>externalTrafficPolicy: Cluster</c>, only Ready nodes holding a ready
/// endpoint of the Service for <c>Local</c> (MetalLB withdraws the announcement from nodes without one,
/// so traffic is never sent where kube-proxy would drop it). No next hop, no route. Services sharing an
/// IP (MetalLB's allow-shared-ip) get one route with the union of their next hops. Next hops are ordered
/// by node name so the preferred one is stable.
/// </summary>
public static class LoadBalancerRoutes
{
    /// <summary>
    /// The rtnetlink protocol number of the routes the lab's announcer installs (RTPROT values above 200
    /// are unassigned: babel is 42, bird 12, bgp 186, zebra 11…). Listing by it finds exactly our routes,
    /// so removal never touches a route someone else made.
    /// </summary>
    public const byte RouteProtocol = 202;

    public static IReadOnlyList<LoadBalancerRoute> Compute(IEnumerable<ServiceView> services, IEnumerable<NodeView> nodes, IEnumerable<EndpointSliceView> slices)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(slices);
        var ready = nodes.Where(n => n.IsReady && ParseV4(n.InternalIP) is not null)
            .OrderBy(n => n.Name, StringComparer.Ordinal)
            .ToList();
        var sliceList = slices.ToList();
        var byIp = new SortedDictionary<string, (IPAddress Ip, SortedSet<string> Nodes, SortedSet<string> Services)>(StringComparer.Ordinal);
        foreach (var svc in services)
        {
            if (svc.Type != "LoadBalancer")
            {
                continue;
            }
            var ips = svc.LoadBalancerIngress.Select(i => ParseV4(i.IP)).OfType<IPAddress>().Distinct().ToList();
            if (ips.Count == 0)
            {
                continue;
            }
            IEnumerable<NodeView> via = ready;
            if (svc.ExternalTrafficPolicy == "Local")
            {
                var withEndpoint = sliceList
                    .Where(s => s.Namespace == svc.Namespace && s.ServiceName == svc.Name)
                    .SelectMany(s => s.Endpoints)
                    .Where(e => e.Ready != false && e.NodeName is not null)
                    .Select(e => e.NodeName!)
                    .ToHashSet(StringComparer.Ordinal);
                via = ready.Where(n => withEndpoint.Contains(n.Name));
            }
            var names = via.Select(n => n.Name).ToList();
            foreach (var ip in ips)
            {
                string key = ip.ToString();
                if (!byIp.TryGetValue(key, out var entry))
                {
                    byIp[key] = entry = (ip, new SortedSet<string>(StringComparer.Ordinal), new SortedSet<string>(StringComparer.Ordinal));
                }
                entry.Nodes.UnionWith(names);
                entry.Services.Add(svc.ToString());
            }
        }
        var nodeIp = ready.ToDictionary(n => n.Name, n => ParseV4(n.InternalIP)!, StringComparer.Ordinal);
        return byIp.Values
            .Where(e => e.Nodes.Count > 0)
            .Select(e => new LoadBalancerRoute(e.Ip, e.Nodes.Select(n => nodeIp[n]).ToList(), e.Services.ToList()))
            .ToList();
    }

    private static IPAddress? ParseV4(string? text) =>
        text is not null && IPAddress.TryParse(text, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork ? ip : null;
}
