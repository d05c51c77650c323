using System.Net;
using Trellis.Core.Objects;
using Trellis.Model;

namespace Trellis.Core.Routing;

/// <summary>One BGP session a node should have.</summary>
/// <param name="Source">Why: <c>node-mesh</c>, <c>route-reflector</c> or <c>BGPPeer/NAME</c> (shown by <c>trellis bgp status</c>).</param>
public sealed record BgpPeerSpec(string Source, IPAddress Address, int Port, uint Asn, string? Password, bool RouteReflectorClient);

/// <summary>What the speaker of one node should be: its AS, whether it reflects, and its sessions.</summary>
public sealed record BgpTopology(uint Asn, IPAddress? ClusterId, int ListenPort, TimeSpan HoldTime, TimeSpan GracefulRestartTime, IReadOnlyList<BgpPeerSpec> Peers, IReadOnlyList<string> Errors)
{
    public string Dump()
    {
        var text = new System.Text.StringBuilder();
        text.Append(System.Globalization.CultureInfo.InvariantCulture, $"as {Asn}{(ClusterId is { } c ? $" route-reflector {c}" : "")}\n");
        foreach (var p in Peers)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture,
                $"peer {p.Address}{(p.Port != 179 ? $":{p.Port}" : "")} as {p.Asn}{(p.RouteReflectorClient ? " rr-client" : "")}{(p.Password is null ? "" : " md5")} ({p.Source})\n");
        }
        foreach (var e in Errors)
        {
            text.Append("error ").Append(e).Append('\n');
        }
        return text.ToString();
    }
}

/// <summary>
/// Calico's peering rules as a pure function of Nodes, BGPPeers and the BGPConfiguration:
/// <list type="bullet">
/// <item>no route reflector: every node peers with every other (iBGP full mesh) unless nodeToNodeMeshEnabled is false;</item>
/// <item>nodes annotated with a route-reflector cluster id reflect: they peer with every node (the non-reflectors
/// as their clients, each other as plain iBGP), and every other node peers with the reflectors only;</item>
/// <item>a BGPPeer adds a session on the nodes it selects (spec.node, spec.nodeSelector, or all).</item>
/// </list>
/// </summary>
public static class BgpTopologyCompiler
{
    public static BgpTopology Compile(string self, IReadOnlyList<NodeView> nodes, BgpConfigurationView? config, IReadOnlyList<BgpPeerView> bgpPeers)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(bgpPeers);
        uint asn = config?.AsNumber ?? BgpConfigurationView.DefaultAsNumber;
        bool mesh = config?.NodeToNodeMeshEnabled ?? true;
        int port = config?.ListenPort ?? 179;
        var hold = config?.HoldTime ?? TimeSpan.FromSeconds(90);
        var restart = config?.GracefulRestartTime ?? TimeSpan.FromSeconds(120);
        var errors = new List<string>();
        var peers = new List<BgpPeerSpec>();
        var selfNode = nodes.FirstOrDefault(n => n.Name == self);
        IPAddress? selfIp = selfNode?.InternalIP is { } sip && IPAddress.TryParse(sip, out var parsedSelf) ? parsedSelf : null;
        var selfCluster = selfNode is null ? null : BgpNodeAnnotations.ClusterId(selfNode);
        if (selfNode is null || selfIp is null)
        {
            errors.Add($"node {self}: no InternalIP address yet; no sessions");
            return new BgpTopology(asn, selfCluster, port, hold, restart, [], errors);
        }
        var taken = new HashSet<IPAddress> { selfIp };
        var others = nodes.Where(n => n.Name != self).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        bool anyReflector = nodes.Any(n => BgpNodeAnnotations.ClusterId(n) is not null);
        foreach (var n in others)
        {
            if (n.InternalIP is not { } ip || !IPAddress.TryParse(ip, out var address))
            {
                errors.Add($"node {n.Name}: status.addresses: no InternalIP; not peered");
                continue;
            }
            bool reflector = BgpNodeAnnotations.ClusterId(n) is not null;
            BgpPeerSpec? spec = null;
            if (anyReflector)
            {
                if (selfCluster is not null)
                {
                    // Reflectors peer with everyone: non-reflectors as clients, other reflectors as plain iBGP.
                    spec = new BgpPeerSpec("route-reflector", address, port, asn, null, RouteReflectorClient: !reflector);
                }
                else if (reflector)
                {
                    spec = new BgpPeerSpec("route-reflector", address, port, asn, null, false);
                }
            }
            else if (mesh)
            {
                spec = new BgpPeerSpec("node-mesh", address, port, asn, null, false);
            }
            if (spec is not null && taken.Add(address))
            {
                peers.Add(spec);
            }
        }
        foreach (var p in bgpPeers.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            if (!string.IsNullOrEmpty(p.Node) && p.Node != self)
            {
                continue;
            }
            if (!string.IsNullOrEmpty(p.NodeSelector))
            {
                if (!LabelSelector.TryParse(p.NodeSelector, out var selector, out var problem))
                {
                    errors.Add($"BGPPeer {p.Name}: spec.nodeSelector: {problem}");
                    continue;
                }
                if (!selector.Matches(selfNode.Metadata.Labels))
                {
                    continue;
                }
            }
            if (!p.TryEndpoint(out var address, out int peerPort))
            {
                errors.Add($"BGPPeer {p.Name}: spec.peerIP: '{p.PeerIP}' is not an IP address");
                continue;
            }
            if (p.AsNumber is not (long a and > 0 and <= uint.MaxValue))
            {
                errors.Add($"BGPPeer {p.Name}: spec.asNumber: '{p.AsNumber}' is not an AS number");
                continue;
            }
            if (address.Equals(selfIp))
            {
                continue; // a global BGPPeer naming this node itself (Calico skips it too)
            }
            var spec = new BgpPeerSpec("BGPPeer/" + p.Name, address, peerPort, (uint)a, string.IsNullOrEmpty(p.Password) ? null : p.Password, false);
            int existing = peers.FindIndex(x => x.Address.Equals(address));
            if (existing >= 0)
            {
                // An explicit BGPPeer overrides the implicit mesh session to the same address.
                if (peers[existing].Source.StartsWith("BGPPeer/", StringComparison.Ordinal))
                {
                    errors.Add($"BGPPeer {p.Name}: spec.peerIP: {address} is also {peers[existing].Source}'s; ignored");
                    continue;
                }
                peers[existing] = spec;
            }
            else
            {
                peers.Add(spec);
            }
        }
        return new BgpTopology(asn, selfCluster, port, hold, restart, peers, errors);
    }
}

/// <summary>A route a peer sent, reduced to what choosing and installing it needs.</summary>
public sealed record BgpLearnedRoute(IPNetwork Prefix, IPAddress NextHop, IPAddress Peer, int AsPathLength = 0, uint LocalPref = 100);

/// <summary>The kernel routes the bgp backend wants, and the learned routes it refused (with why).</summary>
public sealed record BgpRouteCompilation(IReadOnlyList<RouteSpec> Routes, IReadOnlyList<string> Errors)
{
    public string Dump() =>
        string.Concat(Routes.Select(r => r + "\n")) + string.Concat(Errors.Select(e => "error " + e + "\n"));
}

/// <summary>
/// Learned BGP routes → kernel routes (<c>PREFIX via NEXTHOP dev eth0 proto 203</c>): one best path per prefix
/// (highest LOCAL_PREF, shortest AS_PATH, lowest peer address), never this node's own pod CIDR, and only next
/// hops on this node's L2 subnet — no recursive next-hop resolution, no encapsulation.
/// </summary>
public static class BgpRouteCompiler
{
    public static BgpRouteCompilation Compile(IPAddress selfIp, IPNetwork underlaySubnet, IPNetwork? selfPodCidr, string device, IEnumerable<BgpLearnedRoute> learned)
    {
        ArgumentNullException.ThrowIfNull(learned);
        var errors = new List<string>();
        var routes = new List<RouteSpec>();
        foreach (var group in learned.GroupBy(r => r.Prefix))
        {
            var prefix = group.Key;
            if (selfPodCidr is { } own && (own.Contains(prefix.BaseAddress) || prefix.Contains(own.BaseAddress)))
            {
                if (prefix != own)
                {
                    errors.Add($"{prefix}: overlaps this node's pod CIDR {own}; not installed");
                }
                continue;
            }
            var usable = new List<BgpLearnedRoute>();
            foreach (var r in group)
            {
                if (r.NextHop.Equals(selfIp))
                {
                    continue; // our own route, reflected back with an unchanged next hop
                }
                if (r.NextHop.AddressFamily != underlaySubnet.BaseAddress.AddressFamily || !underlaySubnet.Contains(r.NextHop))
                {
                    errors.Add($"{prefix} from {r.Peer}: next hop {r.NextHop} is not on this node's subnet {underlaySubnet}; not installed");
                    continue;
                }
                usable.Add(r);
            }
            var best = usable
                .OrderByDescending(r => r.LocalPref)
                .ThenBy(r => r.AsPathLength)
                .ThenBy(r => IPAddressMath.ToInteger(r.Peer))
                .FirstOrDefault();
            if (best is not null)
            {
                routes.Add(new RouteSpec(prefix, best.NextHop, device) { Protocol = RoutingNames.TrellisBgpRouteProtocol });
            }
        }
        routes.Sort((a, b) => IPNetworkOrder.Instance.Compare(a.Destination, b.Destination));
        return new BgpRouteCompilation(routes, errors);
    }
}
