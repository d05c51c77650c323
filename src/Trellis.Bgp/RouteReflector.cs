using System.Net;
using System.Threading.Channels;
using Trellis.Bgp.Wire;

namespace Trellis.Bgp;

/// <summary>
/// The route-reflector half of a speaker (RFC 4456): a Loc-RIB of every iBGP/eBGP peer's routes, the best
/// path per prefix, and what each peer has been sent. Changes are queued and applied on one worker so that
/// sending to peer B never happens under peer A's FSM lock (two reflecting peers would deadlock otherwise).
/// </summary>
internal sealed class RouteReflector
{
    private readonly BgpSpeaker _speaker;
    private readonly uint _clusterId;
    private readonly Lock _lock = new();
    private readonly Dictionary<IPNetwork, Dictionary<IPAddress, Candidate>> _candidates = [];
    private readonly Dictionary<IPNetwork, Candidate> _best = [];
    private readonly Channel<(BgpRoutesChanged Change, uint RouterId, bool FromClient, bool FromInternal)> _queue =
        Channel.CreateUnbounded<(BgpRoutesChanged, uint, bool, bool)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _worker;

    public RouteReflector(BgpSpeaker speaker, uint clusterId)
    {
        _speaker = speaker;
        _clusterId = clusterId;
        _worker = Task.Run(WorkAsync);
    }

    /// <summary>One peer's route and what reflecting it looks like.</summary>
    private sealed record Candidate(IPAddress From, BgpRoute Route, uint PeerRouterId, bool FromClient, bool FromInternal, PathAttributes Reflected);

    public void Enqueue(BgpRoutesChanged change, uint peerRouterId, bool fromClient, bool fromInternal) =>
        _queue.Writer.TryWrite((change, peerRouterId, fromClient, fromInternal));

    public async Task StopAsync()
    {
        _queue.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
    }

    /// <summary>What a peer that just came up must be sent: every best path eligible for it, grouped by shared attributes.</summary>
    public List<(PathAttributes Attributes, List<IPNetwork> Prefixes)> TableFor(BgpPeer peer)
    {
        var groups = new Dictionary<PathAttributes, List<IPNetwork>>(ReferenceEqualityComparer.Instance);
        lock (_lock)
        {
            foreach (var (prefix, best) in _best)
            {
                if (Eligible(best, peer))
                {
                    if (!groups.TryGetValue(best.Reflected, out var list))
                    {
                        groups[best.Reflected] = list = [];
                    }
                    list.Add(prefix);
                }
            }
        }
        return [.. groups.Select(g => (g.Key, g.Value))];
    }

    private async Task WorkAsync()
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // Drain what is queued into one batch: many small UPDATEs become few large ones. Per peer and prefix
            // only the last decision counts (attributes to announce, or null to withdraw): a withdraw followed by
            // a re-announce in one batch (a peer's stale routes dropped, then sent again) must end announced.
            var decisions = new Dictionary<BgpPeer, Dictionary<IPNetwork, PathAttributes?>>();
            var peers = _speaker.PeerObjects().Where(p => p.IsInternal && p.Fsm.Session is not null).ToList();
            lock (_lock)
            {
                while (reader.TryRead(out var item))
                {
                    Apply(item.Change, item.RouterId, item.FromClient, item.FromInternal, peers, decisions);
                }
            }
            foreach (var (peer, byPrefix) in decisions)
            {
                var withdrawn = new List<IPNetwork>();
                var groups = new Dictionary<PathAttributes, List<IPNetwork>>(ReferenceEqualityComparer.Instance);
                foreach (var (prefix, attributes) in byPrefix)
                {
                    if (attributes is null)
                    {
                        withdrawn.Add(prefix);
                    }
                    else if (groups.TryGetValue(attributes, out var list))
                    {
                        list.Add(prefix);
                    }
                    else
                    {
                        groups[attributes] = [prefix];
                    }
                }
                foreach (var (attributes, prefixes) in groups)
                {
                    peer.SendReflected(attributes, prefixes);
                }
                if (withdrawn.Count > 0)
                {
                    peer.SendWithdraw(withdrawn);
                }
            }
        }
    }

    private void Apply(BgpRoutesChanged change, uint routerId, bool fromClient, bool fromInternal, List<BgpPeer> peers,
        Dictionary<BgpPeer, Dictionary<IPNetwork, PathAttributes?>> decisions)
    {
        var touched = new HashSet<IPNetwork>();
        foreach (var prefix in change.Withdrawn)
        {
            if (_candidates.TryGetValue(prefix, out var byPeer) && byPeer.Remove(change.Peer))
            {
                touched.Add(prefix);
                if (byPeer.Count == 0)
                {
                    _candidates.Remove(prefix);
                }
            }
        }
        var reflectedOf = new Dictionary<PathAttributes, PathAttributes>(ReferenceEqualityComparer.Instance);
        foreach (var route in change.Added)
        {
            if (!reflectedOf.TryGetValue(route.Attributes, out var reflected))
            {
                reflectedOf[route.Attributes] = reflected = Reflect(route, routerId, fromInternal);
            }
            if (!_candidates.TryGetValue(route.Prefix, out var byPeer))
            {
                _candidates[route.Prefix] = byPeer = [];
            }
            // Next hops differ per route while attributes are shared per UPDATE: give a route with its own
            // next hop its own copy (rare: classic NLRI shares the NEXT_HOP attribute).
            if (!Equals(NextHopOf(reflected), route.NextHop))
            {
                reflected = Reflect(route, routerId, fromInternal);
            }
            byPeer[change.Peer] = new Candidate(change.Peer, route, routerId, fromClient, fromInternal, reflected);
            touched.Add(route.Prefix);
        }
        var originated = _speaker.Originated().Select(o => o.Key).ToHashSet();
        foreach (var prefix in touched)
        {
            _best.TryGetValue(prefix, out var old);
            var best = originated.Contains(prefix) ? null : Best(prefix);
            if (best is null)
            {
                _best.Remove(prefix);
            }
            else
            {
                _best[prefix] = best;
            }
            foreach (var peer in peers)
            {
                if (best is not null && Eligible(best, peer))
                {
                    Decide(decisions, peer)[prefix] = best.Reflected;
                }
                else if (old is not null && Eligible(old, peer))
                {
                    Decide(decisions, peer)[prefix] = null;
                }
            }
        }
    }

    private static Dictionary<IPNetwork, PathAttributes?> Decide(Dictionary<BgpPeer, Dictionary<IPNetwork, PathAttributes?>> decisions, BgpPeer peer)
    {
        if (!decisions.TryGetValue(peer, out var byPrefix))
        {
            decisions[peer] = byPrefix = [];
        }
        return byPrefix;
    }

    /// <summary>RFC 4456 §6: client routes go to every iBGP peer, non-client iBGP routes to clients only, eBGP routes to all; never back to the source.</summary>
    private static bool Eligible(Candidate c, BgpPeer peer) =>
        !c.From.Equals(peer.Config.Address) && peer.IsInternal && (c.FromClient || !c.FromInternal || peer.Config.RouteReflectorClient);

    /// <summary>The BGP decision process, cut down to what an iBGP pod-network fabric needs; deterministic.</summary>
    private Candidate? Best(IPNetwork prefix)
    {
        if (!_candidates.TryGetValue(prefix, out var byPeer) || byPeer.Count == 0)
        {
            return null;
        }
        return byPeer.Values
            .OrderByDescending(c => c.Route.Attributes.LocalPref ?? 100)
            .ThenBy(c => c.Route.Attributes.PathAsns.Count())
            .ThenBy(c => (int)(c.Route.Attributes.Origin ?? BgpOrigin.Incomplete))
            .ThenBy(c => c.FromInternal ? 1 : 0)
            .ThenBy(c => c.Route.Attributes.OriginatorId ?? c.PeerRouterId)
            .ThenBy(c => c.Route.Attributes.ClusterList?.Length ?? 0)
            .ThenBy(c => c.From.ToString(), StringComparer.Ordinal)
            .First();
    }

    private PathAttributes Reflect(BgpRoute route, uint peerRouterId, bool fromInternal)
    {
        var a = route.Attributes.WithoutNlri();
        if (fromInternal)
        {
            // §8: ORIGINATOR_ID is set once, by the first reflector; each reflector prepends its cluster id.
            a.OriginatorId ??= peerRouterId;
            a.ClusterList = [_clusterId, .. route.Attributes.ClusterList ?? []];
        }
        else
        {
            // An eBGP route enters the AS here: plain iBGP advertisement, MED and the like as received.
            a.LocalPref = null;
        }
        a.LocalPref ??= 100;
        if (route.Prefix.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            a.MpReach = new MpReach { Family = AfiSafi.Ipv6Unicast, NextHop = route.NextHop, LinkLocalNextHop = route.Attributes.MpReach?.LinkLocalNextHop };
            a.NextHop = null;
        }
        else
        {
            a.NextHop = route.NextHop;
            a.MpReach = null;
        }
        return a;
    }

    private static IPAddress? NextHopOf(PathAttributes a) => a.NextHop ?? a.MpReach?.NextHop;
}
