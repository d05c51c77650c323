using System.Globalization;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;

namespace Trellis.Core.Policies;

/// <summary>
/// Compiles every NetworkPolicy of the cluster into <c>inet trellis-policy</c> for one node. The packet path is
/// a fixed handful of rules whatever the number of policies: all policies are unioned into sets and verdict
/// maps keyed by pod IP (see README.md). Pure and total: a bad field is skipped and reported in
/// <see cref="PolicyRuleset.Problems"/>.
/// </summary>
public static class PolicyCompiler
{
    internal const string Forward = "forward";
    internal const string IngressCheck = "ingress-check";
    internal const string EgressCheck = "egress-check";
    internal const string LocalPods = "local-pods";
    internal const string PodCidrs = "pod-cidrs";
    internal const string IngressIsolated = "ingress-isolated";
    internal const string EgressIsolated = "egress-isolated";
    internal const string IngressAllow = "ingress-allow";
    internal const string IngressAllowAll = "ingress-allow-all";
    internal const string EgressAllow = "egress-allow";
    internal const string EgressAllowAll = "egress-allow-all";
    internal const string IngressDrop = "ingress-drop";
    internal const string EgressDrop = "egress-drop";

    private const string AddrSet = "{ type ipv4_addr ; }";
    private const string AddrIntervalSet = "{ type ipv4_addr ; flags interval ; }";
    private const string PortMap = "{ type ipv4_addr . ipv4_addr . inet_proto . inet_service : verdict ; flags interval ; }";
    private const string AllMap = "{ type ipv4_addr . ipv4_addr : verdict ; flags interval ; }";
    private const string AddrMap = "{ type ipv4_addr : verdict ; }";

    // Rules of the packet path. Priority 0 runs after the proxy's DNAT (-100), so a ClusterIP is already the pod.
    private static readonly PolicyChain s_forward = new(Forward, new PolicyBaseHook("filter", "forward", 0),
    [
        "ct state established,related accept",
        "ct state invalid drop",
        $"ip saddr @{PodCidrs} ip saddr != @{LocalPods} counter drop comment \"unprogrammed pod address\"",
        $"ip daddr @{PodCidrs} ip daddr != @{LocalPods} counter drop comment \"unprogrammed pod address\"",
        $"ip saddr @{EgressIsolated} jump {EgressCheck}",
        $"ip daddr @{IngressIsolated} jump {IngressCheck}",
    ]);

    // A hit in an allow map goes to the policy's counter chain, whose end returns to forward (goto does not push):
    // allowed means "continue with the next check". The drop map jumps, so a pod's drop chain that lost its rule
    // still ends in the trailing drop.
    private static readonly PolicyChain s_egressCheck = new(EgressCheck, null,
    [
        $"ip saddr . ip daddr . meta l4proto . th dport vmap @{EgressAllow}",
        $"ip saddr . ip daddr vmap @{EgressAllowAll}",
        $"ip saddr vmap @{EgressDrop}",
        "counter drop",
    ]);

    private static readonly PolicyChain s_ingressCheck = new(IngressCheck, null,
    [
        $"ip daddr . ip saddr . meta l4proto . th dport vmap @{IngressAllow}",
        $"ip daddr . ip saddr vmap @{IngressAllowAll}",
        $"ip daddr vmap @{IngressDrop}",
        "counter drop",
    ]);

    public static PolicyRuleset Compile(PolicySnapshot snapshot, string nodeName) => Compile(new PolicyIndex(snapshot), nodeName);

    public static PolicyRuleset Compile(PolicyIndex index, string nodeName)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(nodeName);
        var problems = new List<string>();
        var local = index.Pods.Where(p => p.Node == nodeName).ToList();
        var peers = new PeerCache(index, problems);
        var ingress = new DirectionBuilder(index, peers, egress: false);
        var egress = new DirectionBuilder(index, peers, egress: true);
        for (int pi = 0; pi < index.Policies.Count; pi++)
        {
            var policy = index.Policies[pi];
            var selected = local.Where(p => p.Namespace == policy.Namespace && policy.PodSelector.Matches(p.Labels)).ToList();
            if (selected.Count == 0)
            {
                continue;
            }
            if (policy.AffectsIngress)
            {
                ingress.Add(pi, policy, selected);
            }
            if (policy.AffectsEgress)
            {
                egress.Add(pi, policy, selected);
            }
        }

        // Elements first: they decide which allow chains are referenced.
        var ingressPorts = ingress.PortElements().ToList();
        var ingressAll = ingress.AllElements().ToList();
        var egressPorts = egress.PortElements().ToList();
        var egressAll = egress.AllElements().ToList();
        var counters = new List<PolicyCounterChain>();
        var counterChains = new List<PolicyChain>();
        foreach (var d in (DirectionBuilder[])[ingress, egress])
        {
            foreach (var (chain, policy) in d.UsedAllowChains)
            {
                counterChains.Add(new PolicyChain(chain, null, ["counter"]));
                counters.Add(new PolicyCounterChain(chain, "allow", d.Direction, policy.Namespace, policy.Name));
            }
            foreach (var (chain, pod) in d.DropChains)
            {
                counterChains.Add(new PolicyChain(chain, null, ["counter drop"]));
                counters.Add(new PolicyCounterChain(chain, "drop", d.Direction, pod.Namespace, pod.Name));
            }
        }
        var chains = new List<PolicyChain> { s_forward, s_egressCheck, s_ingressCheck };
        chains.AddRange(counterChains.OrderBy(c => c.Name, StringComparer.Ordinal));

        // The node's own addresses at the start of its pod CIDR (tunnel network address, bridge gateway) are
        // not pods; everything after them that no known pod holds is dropped until programmed.
        var cidrs = index.NodePodCidrs.GetValueOrDefault(nodeName) ?? [];
        var unprogrammed = cidrs.Select(c =>
        {
            uint lo = Ipv4Interval.ToUInt(c.BaseAddress);
            uint hi = lo | (c.PrefixLength == 0 ? uint.MaxValue : ~(uint.MaxValue << (32 - c.PrefixLength)));
            return hi - lo < 2 ? (Ipv4Interval?)null : new Ipv4Interval(lo + 2, hi);
        }).OfType<Ipv4Interval>();

        var sets = new List<PolicySet>
        {
            Set(LocalPods, false, AddrSet, local.Select(p => p.Ip.ToString())),
            Set(PodCidrs, false, AddrIntervalSet, MergeIntervals(unprogrammed).Select(i => i.ToString())),
            Set(IngressIsolated, false, AddrSet, ingress.Isolated.Select(p => p.Ip.ToString())),
            Set(EgressIsolated, false, AddrSet, egress.Isolated.Select(p => p.Ip.ToString())),
            Set(IngressAllow, true, PortMap, ingressPorts),
            Set(IngressAllowAll, true, AllMap, ingressAll),
            Set(EgressAllow, true, PortMap, egressPorts),
            Set(EgressAllowAll, true, AllMap, egressAll),
            Set(IngressDrop, true, AddrMap, ingress.DropChains.Select(d => $"{d.Pod.Ip} : jump {d.Chain}")),
            Set(EgressDrop, true, AddrMap, egress.DropChains.Select(d => $"{d.Pod.Ip} : jump {d.Chain}")),
        };
        return new PolicyRuleset(chains, [.. sets.OrderBy(s => s.Name, StringComparer.Ordinal)], counters, problems);
    }

    private static PolicySet Set(string name, bool map, string decl, IEnumerable<string> elements) =>
        new(name, map, decl, [.. elements.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)]);

    internal static string ChainName(string prefix, string ns, string name) => prefix + ProxyChainNames.HashAndTruncate(ns + "/" + name);

    private static List<Ipv4Interval> MergeIntervals(IEnumerable<Ipv4Interval> intervals)
    {
        var result = new List<Ipv4Interval>();
        foreach (var i in intervals.OrderBy(i => i.Lo))
        {
            if (result.Count > 0 && (ulong)result[^1].Hi + 1 >= i.Lo)
            {
                result[^1] = new Ipv4Interval(result[^1].Lo, Math.Max(result[^1].Hi, i.Hi));
            }
            else
            {
                result.Add(i);
            }
        }
        return result;
    }

    internal static int ProtoNumber(string protocol) => protocol.ToUpperInvariant() switch
    {
        "TCP" => 6,
        "UDP" => 17,
        "SCTP" => 132,
        _ => -1,
    };

    internal static string ProtoName(int number) => number switch
    {
        6 => "tcp",
        17 => "udp",
        _ => "sctp",
    };

    internal static string I(long value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One peer of a rule resolved to addresses: an interval, and the pod when it is a pod peer (null for ipBlock).</summary>
internal readonly record struct ResolvedPeer(Ipv4Interval Range, PolicyPod? Pod, bool IsIpBlock);

/// <summary>The peers of each rule resolved once per compile (they do not depend on the selected pod).</summary>
internal sealed class PeerCache(PolicyIndex index, List<string> problems)
{
    private readonly Dictionary<(int Policy, bool Egress, int Rule), RulePeers> _cache = [];
    private readonly Dictionary<string, List<PolicyPod>> _podsByNamespace = index.Pods.GroupBy(p => p.Namespace, StringComparer.Ordinal)
        .ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);

    public RulePeers Peers(int pi, PolicyRef policy, bool egress, int ri, NetworkPolicyRule rule)
    {
        if (_cache.TryGetValue((pi, egress, ri), out var cached))
        {
            return cached;
        }
        var list = new List<ResolvedPeer>();
        if (!rule.HasPeers)
        {
            list.Add(new ResolvedPeer(Ipv4Interval.All, null, false));
        }
        for (int k = 0; k < rule.Peers.Count; k++)
        {
            var peer = rule.Peers[k];
            string field = $"{policy.Key}: spec.{(egress ? "egress" : "ingress")}[{ri}].{(egress ? "to" : "from")}[{k}]";
            if (peer.IpBlock is { } block)
            {
                if (Ipv4Interval.ParseCidr(block.Cidr) is not { } cidr)
                {
                    if (!block.Cidr.Contains(':', StringComparison.Ordinal))
                    {
                        problems.Add($"{field}.ipBlock.cidr: \"{block.Cidr}\" is not an IPv4 CIDR; the peer matches nothing");
                    }
                    continue; // IPv6 blocks have no IPv4 address to match: this table is IPv4
                }
                var holes = block.Except.Select(e => Ipv4Interval.ParseCidr(e)).OfType<Ipv4Interval>();
                list.AddRange(Ipv4Interval.Subtract(cidr, holes).Select(r => new ResolvedPeer(r, null, true)));
                continue;
            }
            if (peer.PodSelector is null && peer.NamespaceSelector is null)
            {
                continue;
            }
            var namespaces = peer.NamespaceSelector is { } nss
                ? _podsByNamespace.Keys.Where(n => nss.Matches(index.NamespaceLabels(n)))
                : [policy.Namespace];
            foreach (var pod in namespaces.SelectMany(n => _podsByNamespace.GetValueOrDefault(n) ?? []))
            {
                if (peer.PodSelector is not { } ps || ps.Matches(pod.Labels))
                {
                    uint ip = Ipv4Interval.ToUInt(pod.Ip);
                    list.Add(new ResolvedPeer(new Ipv4Interval(ip, ip), pod, false));
                }
            }
        }
        // Where the port does not depend on the peer pod, neighbouring addresses are one range: pods of one
        // node are numbered consecutively, so "all pods of a namespace" is a few ranges, not one box per pod.
        var merged = new List<Ipv4Interval>();
        foreach (var r in list.Select(r => r.Range).OrderBy(r => r.Lo))
        {
            if (merged.Count > 0 && (ulong)merged[^1].Hi + 1 >= r.Lo)
            {
                merged[^1] = new Ipv4Interval(merged[^1].Lo, Math.Max(merged[^1].Hi, r.Hi));
            }
            else
            {
                merged.Add(r);
            }
        }
        var result = new RulePeers(list, merged);
        _cache[(pi, egress, ri)] = result;
        return result;
    }
}

/// <summary>A rule's peers one by one (for named ports on peer pods) and as merged address ranges.</summary>
internal sealed record RulePeers(List<ResolvedPeer> Peers, List<Ipv4Interval> Merged);

/// <summary>Collects one direction's isolated pods and allow boxes, and turns them into disjoint map elements.</summary>
internal sealed class DirectionBuilder(PolicyIndex index, PeerCache peers, bool egress)
{
    private readonly Dictionary<PolicyPod, PodBoxes> _pods = [];
    private readonly Dictionary<int, (string Chain, PolicyRef Policy)> _allowChains = [];
    private readonly HashSet<int> _usedPolicies = [];

    private sealed class PodBoxes
    {
        public List<Box> Ports { get; } = [];

        public List<Box> All { get; } = [];
    }

    /// <summary>A box: peer addresses × (protocol, ports), labelled with the index of the policy that allows it.</summary>
    private readonly record struct Box(long PeerLo, long PeerHi, int Proto, long PortLo, long PortHi, int Label);

    public string Direction => egress ? "egress" : "ingress";

    public IEnumerable<PolicyPod> Isolated => _pods.Keys;

    public IEnumerable<(string Chain, PolicyRef Policy)> UsedAllowChains =>
        _usedPolicies.Select(i => _allowChains[i]);

    public IEnumerable<(string Chain, PolicyPod Pod)> DropChains =>
        _pods.Keys.Select(p => (PolicyCompiler.ChainName(egress ? PolicyNames.DropEgressPrefix : PolicyNames.DropIngressPrefix, p.Namespace, p.Name), p));

    public void Add(int pi, PolicyRef policy, List<PolicyPod> selected)
    {
        _allowChains[pi] = (PolicyCompiler.ChainName(egress ? PolicyNames.AllowEgressPrefix : PolicyNames.AllowIngressPrefix, policy.Namespace, policy.Name), policy);
        var rules = egress ? policy.Egress : policy.Ingress;
        foreach (var pod in selected)
        {
            if (!_pods.TryGetValue(pod, out var boxes))
            {
                _pods[pod] = boxes = new PodBoxes();
            }
            for (int ri = 0; ri < rules.Count; ri++)
            {
                var rule = rules[ri];
                var resolved = peers.Peers(pi, policy, egress, ri, rule);
                if (!rule.HasPorts)
                {
                    foreach (var r in resolved.Merged)
                    {
                        boxes.All.Add(new Box(r.Lo, r.Hi, 0, 0, 0, pi));
                    }
                    continue;
                }
                foreach (var port in rule.Ports)
                {
                    int proto = PolicyCompiler.ProtoNumber(port.Protocol);
                    if (proto < 0)
                    {
                        continue;
                    }
                    string? named = port.Port is { IsInt: false } n ? n.StringValue ?? "" : null;
                    long lo = 0, hi = 65535;
                    if (port.Port is { IsInt: true } v)
                    {
                        lo = v.IntValue;
                        hi = Math.Min(65535, port.EndPort is int e && e >= lo ? e : lo);
                    }
                    if (named is null)
                    {
                        foreach (var r in resolved.Merged)
                        {
                            boxes.Ports.Add(new Box(r.Lo, r.Hi, proto, lo, hi, pi));
                        }
                    }
                    else if (!egress)
                    {
                        // Ingress: the destination is the selected pod; its own number for the name.
                        if (pod.NamedPort(named, port.Protocol) is int number)
                        {
                            foreach (var r in resolved.Merged)
                            {
                                boxes.Ports.Add(new Box(r.Lo, r.Hi, proto, number, number, pi));
                            }
                        }
                    }
                    else
                    {
                        // Egress: the destination is the peer; each peer pod's own number. ipBlock peers have no
                        // pod to resolve on and match nothing; "all destinations" means every pod with the name.
                        var targets = rule.HasPeers
                            ? resolved.Peers.Where(r => r.Pod is not null).Select(r => r.Pod!)
                            : index.Pods;
                        foreach (var target in targets)
                        {
                            if (target.NamedPort(named, port.Protocol) is int number)
                            {
                                uint ip = Ipv4Interval.ToUInt(target.Ip);
                                boxes.Ports.Add(new Box(ip, ip, proto, number, number, pi));
                            }
                        }
                    }
                }
            }
        }
    }

    public IEnumerable<string> PortElements()
    {
        foreach (var (pod, boxes) in _pods)
        {
            foreach (var group in boxes.Ports.GroupBy(b => b.Proto).OrderBy(g => g.Key))
            {
                string proto = PolicyCompiler.ProtoName(group.Key);
                foreach (var (peerLo, peerHi, pieces) in Decompose2(group.ToList()))
                {
                    string peer = new Ipv4Interval((uint)peerLo, (uint)peerHi).ToString();
                    foreach (var (lo, hi, label) in pieces)
                    {
                        string ports = lo == hi ? PolicyCompiler.I(lo) : PolicyCompiler.I(lo) + "-" + PolicyCompiler.I(hi);
                        yield return $"{pod.Ip} . {peer} . {proto} . {ports} : goto {Use(label)}";
                    }
                }
            }
        }
    }

    public IEnumerable<string> AllElements()
    {
        foreach (var (pod, boxes) in _pods)
        {
            foreach (var (lo, hi, label) in Decompose1(boxes.All.Select(b => (b.PeerLo, b.PeerHi, b.Label))))
            {
                yield return $"{pod.Ip} . {new Ipv4Interval((uint)lo, (uint)hi)} : goto {Use(label)}";
            }
        }
    }

    private string Use(int label)
    {
        _usedPolicies.Add(label);
        return _allowChains[label].Chain;
    }

    /// <summary>
    /// Disjoint intervals covering the union of the inputs, each labelled with the smallest label covering it
    /// (the first policy by namespace/name gets the count), adjacent pieces with one label merged. The kernel
    /// refuses overlapping elements in concatenated interval sets, so overlaps must be resolved here.
    /// </summary>
    internal static List<(long Lo, long Hi, int Label)> Decompose1(IEnumerable<(long Lo, long Hi, int Label)> input)
    {
        var items = input.ToList();
        var result = new List<(long Lo, long Hi, int Label)>();
        if (items.Count == 0)
        {
            return result;
        }
        var points = items.Select(i => i.Lo).Concat(items.Select(i => i.Hi + 1)).Distinct().Order().ToList();
        for (int k = 0; k + 1 < points.Count; k++)
        {
            long lo = points[k], hi = points[k + 1] - 1;
            int label = int.MaxValue;
            foreach (var i in items)
            {
                if (i.Lo <= lo && hi <= i.Hi && i.Label < label)
                {
                    label = i.Label;
                }
            }
            if (label == int.MaxValue)
            {
                continue;
            }
            if (result.Count > 0 && result[^1].Hi + 1 == lo && result[^1].Label == label)
            {
                result[^1] = (result[^1].Lo, hi, label);
            }
            else
            {
                result.Add((lo, hi, label));
            }
        }
        return result;
    }

    /// <summary>Two dimensions (peer addresses × ports): a sweep over the peer axis, ports decomposed per strip, equal neighbouring strips merged.</summary>
    private static List<(long Lo, long Hi, List<(long Lo, long Hi, int Label)> Pieces)> Decompose2(List<Box> boxes)
    {
        var result = new List<(long Lo, long Hi, List<(long Lo, long Hi, int Label)> Pieces)>();
        var points = boxes.Select(b => b.PeerLo).Concat(boxes.Select(b => b.PeerHi + 1)).Distinct().Order().ToList();
        var byStart = boxes.OrderBy(b => b.PeerLo).ToList();
        var active = new List<Box>();
        int next = 0;
        for (int k = 0; k + 1 < points.Count; k++)
        {
            long lo = points[k], hi = points[k + 1] - 1;
            while (next < byStart.Count && byStart[next].PeerLo <= lo)
            {
                active.Add(byStart[next++]);
            }
            active.RemoveAll(b => b.PeerHi < lo);
            if (active.Count == 0)
            {
                continue;
            }
            var pieces = Decompose1(active.Select(b => (b.PortLo, b.PortHi, b.Label)));
            if (result.Count > 0 && result[^1].Hi + 1 == lo && result[^1].Pieces.SequenceEqual(pieces))
            {
                result[^1] = (result[^1].Lo, hi, result[^1].Pieces);
            }
            else
            {
                result.Add((lo, hi, pieces));
            }
        }
        return result;
    }
}
