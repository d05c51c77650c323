using System.Globalization;
using System.Net;
using System.Text;
using Trellis.Core.Objects;

namespace Trellis.Core.Policies;

public enum PolicyOutcome
{
    /// <summary>No policy of this direction selects the pod (or the end is not a pod): allowed.</summary>
    NotIsolated,

    /// <summary>Selected by a policy of this direction, and some rule of one of them allows the packet.</summary>
    Allowed,

    /// <summary>Selected by a policy of this direction, and no rule allows the packet.</summary>
    Denied,
}

/// <summary>A policy, and the index of the ingress/egress rule that allowed (null: the policy only isolates).</summary>
public sealed record PolicyRuleRef(string Namespace, string Policy, int? Rule)
{
    public override string ToString() =>
        Rule is int i ? $"{Namespace}/{Policy} rule {i.ToString(CultureInfo.InvariantCulture)}" : $"{Namespace}/{Policy}";
}

/// <summary>The verdict of one direction: the policies that decided it and why, in words.</summary>
public sealed record DirectionVerdict(PolicyOutcome Outcome, IReadOnlyList<PolicyRuleRef> Deciding, string Reason)
{
    public bool Allows => Outcome != PolicyOutcome.Denied;
}

/// <summary>
/// The answer of <see cref="PolicyEvaluator"/>. <see cref="Unprogrammed"/> is set when an end is an address of a
/// node's pod CIDR that no known pod holds (dropped until the agent programs it); then both directions say so.
/// </summary>
public sealed record PolicyDecision(bool Allowed, DirectionVerdict Ingress, DirectionVerdict Egress, string? Unprogrammed = null)
{
    /// <summary>Several lines, for <c>trellis policy explain</c>.</summary>
    public string Explain()
    {
        var w = new StringBuilder();
        w.Append(Allowed ? "allowed" : "denied").Append('\n');
        if (Unprogrammed is not null)
        {
            w.Append("  ").Append(Unprogrammed).Append('\n');
            return w.ToString();
        }
        w.Append("  egress:  ").Append(Egress.Reason).Append('\n');
        w.Append("  ingress: ").Append(Ingress.Reason).Append('\n');
        return w.ToString();
    }
}

/// <summary>
/// The reference NetworkPolicy semantics (networking.k8s.io/v1), evaluated directly on the objects for one
/// packet — independently of <see cref="PolicyCompiler"/>, so the property test can hold one against the other.
/// A packet is allowed when egress allows it at the source pod and ingress allows it at the destination pod.
/// Per direction: a pod selected by no policy of that direction is not isolated; otherwise the union of the
/// rules of all selecting policies decides. Named ports resolve on the destination pod per protocol; in egress
/// rules only through pod peers (or "all destinations"), never through an ipBlock peer — the compiler's
/// documented choice, as the ipBlock side has no pod to read a port from.
/// </summary>
public static class PolicyEvaluator
{
    public static PolicyDecision Evaluate(PolicySnapshot snapshot, IPAddress src, IPAddress dst, string protocol, int port) =>
        Evaluate(new PolicyIndex(snapshot), src, dst, protocol, port);

    public static PolicyDecision Evaluate(PolicyIndex index, IPAddress src, IPAddress dst, string protocol, int port)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(src);
        ArgumentNullException.ThrowIfNull(dst);
        ArgumentNullException.ThrowIfNull(protocol);
        string proto = protocol.ToUpperInvariant();
        if (proto is not ("TCP" or "UDP" or "SCTP" or "ICMP"))
        {
            throw new ArgumentException($"protocol '{protocol}' is not TCP, UDP, SCTP or ICMP", nameof(protocol));
        }
        var srcPod = index.PodsByIp.GetValueOrDefault(src);
        var dstPod = index.PodsByIp.GetValueOrDefault(dst);
        string? unprogrammed = Unprogrammed(index, src, srcPod, "source") ?? Unprogrammed(index, dst, dstPod, "destination");
        if (unprogrammed is not null)
        {
            var no = new DirectionVerdict(PolicyOutcome.Denied, [], unprogrammed);
            return new PolicyDecision(false, no, no, unprogrammed);
        }
        var egress = Direction(index, egress: true, srcPod, dst, dstPod, proto, port);
        var ingress = Direction(index, egress: false, dstPod, src, srcPod, proto, port);
        return new PolicyDecision(egress.Allows && ingress.Allows, ingress, egress);
    }

    private static string? Unprogrammed(PolicyIndex index, IPAddress ip, PolicyPod? pod, string end)
    {
        if (pod is not null || index.NodeOfPodCidr(ip) is not { } node)
        {
            return null;
        }
        // The CIDR's first two addresses are the node's own (network address on the tunnel, gateway on the bridge).
        var cidr = index.NodePodCidrs[node].First(c => c.Contains(ip));
        uint offset = Ipv4Interval.ToUInt(ip) - Ipv4Interval.ToUInt(cidr.BaseAddress);
        return offset < 2 ? null : $"{end} {ip} is in the pod CIDR of {node} but no known pod holds it: dropped until programmed";
    }

    /// <summary>One direction at <paramref name="self"/> (the source pod for egress, the destination pod for ingress).</summary>
    private static DirectionVerdict Direction(PolicyIndex index, bool egress, PolicyPod? self, IPAddress peerIp, PolicyPod? peerPod, string proto, int port)
    {
        string dir = egress ? "egress" : "ingress";
        if (self is null)
        {
            return new DirectionVerdict(PolicyOutcome.NotIsolated, [], $"{(egress ? "source" : "destination")} is not a pod: no {dir} policy applies");
        }
        var isolating = index.Policies.Where(p => p.Namespace == self.Namespace
            && (egress ? p.AffectsEgress : p.AffectsIngress)
            && p.PodSelector.Matches(self.Labels)).ToList();
        if (isolating.Count == 0)
        {
            return new DirectionVerdict(PolicyOutcome.NotIsolated, [], $"no policy selects {self.Key} for {dir}: not isolated");
        }
        var allowing = new List<PolicyRuleRef>();
        foreach (var p in isolating)
        {
            var rules = egress ? p.Egress : p.Ingress;
            for (int i = 0; i < rules.Count; i++)
            {
                if (RuleAllows(index, rules[i], p.Namespace, egress, self, peerIp, peerPod, proto, port))
                {
                    allowing.Add(new PolicyRuleRef(p.Namespace, p.Name, i));
                }
            }
        }
        string names = string.Join(", ", isolating.Select(p => p.Key));
        string packet = $"{proto.ToLowerInvariant()}{(proto == "ICMP" ? "" : "/" + port.ToString(CultureInfo.InvariantCulture))} {(egress ? "to" : "from")} {peerPod?.ToString() ?? peerIp.ToString()}";
        return allowing.Count > 0
            ? new DirectionVerdict(PolicyOutcome.Allowed, allowing, $"{self.Key} is isolated by {names}; {packet} allowed by {string.Join(", ", allowing)}")
            : new DirectionVerdict(PolicyOutcome.Denied, isolating.Select(p => new PolicyRuleRef(p.Namespace, p.Name, null)).ToList(),
                $"{self.Key} is isolated by {names}; no {dir} rule allows {packet}");
    }

    private static bool RuleAllows(PolicyIndex index, NetworkPolicyRule rule, string policyNs, bool egress, PolicyPod self, IPAddress peerIp, PolicyPod? peerPod, string proto, int port)
    {
        // The pod named ports are read from: the destination (self for ingress, the peer for egress).
        var portPod = egress ? peerPod : self;
        if (!rule.HasPeers)
        {
            return PortsAllow(rule, proto, port, portPod);
        }
        foreach (var peer in rule.Peers)
        {
            if (peer.IpBlock is { } block)
            {
                if (InBlock(block, peerIp) && PortsAllow(rule, proto, port, egress ? null : portPod))
                {
                    return true;
                }
                continue;
            }
            if (peer.PodSelector is null && peer.NamespaceSelector is null)
            {
                continue; // an empty peer is invalid; it selects nothing
            }
            if (peerPod is null)
            {
                continue;
            }
            bool nsOk = peer.NamespaceSelector is { } nss ? nss.Matches(index.NamespaceLabels(peerPod.Namespace)) : peerPod.Namespace == policyNs;
            bool podOk = peer.PodSelector is not { } ps || ps.Matches(peerPod.Labels);
            if (nsOk && podOk && PortsAllow(rule, proto, port, portPod))
            {
                return true;
            }
        }
        return false;
    }

    private static bool InBlock(IpBlock block, IPAddress ip)
    {
        if (ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || Ipv4Interval.ParseCidr(block.Cidr) is not { } cidr)
        {
            return false;
        }
        uint v = Ipv4Interval.ToUInt(ip);
        return cidr.Contains(v) && !block.Except.Any(e => Ipv4Interval.ParseCidr(e) is { } x && x.Contains(v));
    }

    /// <summary>No ports: everything, ICMP included. Otherwise some entry's protocol and port (range, or named port on <paramref name="portPod"/>).</summary>
    private static bool PortsAllow(NetworkPolicyRule rule, string proto, int port, PolicyPod? portPod)
    {
        if (!rule.HasPorts)
        {
            return true;
        }
        foreach (var p in rule.Ports)
        {
            if (!string.Equals(p.Protocol, proto, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            if (p.Port is not { } value)
            {
                return true;
            }
            if (value.IsInt)
            {
                long end = p.EndPort ?? value.IntValue;
                if (port >= value.IntValue && port <= end)
                {
                    return true;
                }
            }
            else if (portPod?.NamedPort(value.StringValue ?? "", proto) == port)
            {
                return true;
            }
        }
        return false;
    }
}
