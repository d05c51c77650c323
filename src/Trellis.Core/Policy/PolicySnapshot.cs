using System.Net;
using System.Net.Sockets;
using Trellis.Core.Objects;

namespace Trellis.Core.Policies;

/// <summary>
/// The intent NetworkPolicy is decided from: every Namespace, Pod, NetworkPolicy and Node of the cluster (the
/// policy engine of one node needs all of them: peers live anywhere). Both <see cref="PolicyCompiler"/> and
/// <see cref="PolicyEvaluator"/> read it through <see cref="PolicyIndex"/>, which only extracts data (pod IPs,
/// labels, ports); the two implement the API's semantics separately.
/// </summary>
public sealed record PolicySnapshot
{
    public IReadOnlyList<NamespaceView> Namespaces { get; init; } = [];

    public IReadOnlyList<PodView> Pods { get; init; } = [];

    public IReadOnlyList<NetworkPolicyView> Policies { get; init; } = [];

    /// <summary>Nodes, for their pod CIDRs: an address of a node's pod CIDR that no known pod holds is dropped.</summary>
    public IReadOnlyList<NodeView> Nodes { get; init; } = [];
}

/// <summary>A container port as policy sees it: named ports resolve per protocol.</summary>
public sealed record PolicyPodPort(string Name, string Protocol, int Number);

/// <summary>A pod that takes part in NetworkPolicy: not hostNetwork, not finished, with an IPv4 pod IP.</summary>
public sealed record PolicyPod(string Namespace, string Name, IPAddress Ip, string? Node, IReadOnlyDictionary<string, string> Labels, IReadOnlyList<PolicyPodPort> Ports)
{
    public string Key => Namespace + "/" + Name;

    /// <summary>The container port called <paramref name="name"/> for <paramref name="protocol"/>, as upstream resolves named ports.</summary>
    public int? NamedPort(string name, string protocol) =>
        Ports.FirstOrDefault(p => p.Name == name && string.Equals(p.Protocol, protocol, StringComparison.OrdinalIgnoreCase))?.Number;

    public override string ToString() => $"{Key} ({Ip})";
}

/// <summary>
/// A NetworkPolicy with its namespace/name (sorted by it: the order counters and explanations use), its fields
/// parsed once — <see cref="NetworkPolicyView"/> parses on every access.
/// </summary>
public sealed class PolicyRef
{
    public PolicyRef(string ns, string name, NetworkPolicyView view)
    {
        ArgumentNullException.ThrowIfNull(view);
        Namespace = ns;
        Name = name;
        View = view;
        PodSelector = view.PodSelector;
        AffectsIngress = view.AffectsIngress;
        AffectsEgress = view.AffectsEgress;
        Ingress = view.Ingress;
        Egress = view.Egress;
    }

    public string Namespace { get; }

    public string Name { get; }

    public NetworkPolicyView View { get; }

    public LabelSelector PodSelector { get; }

    public bool AffectsIngress { get; }

    public bool AffectsEgress { get; }

    public IReadOnlyList<NetworkPolicyRule> Ingress { get; }

    public IReadOnlyList<NetworkPolicyRule> Egress { get; }

    public string Key => Namespace + "/" + Name;
}

/// <summary>Data extracted once from a <see cref="PolicySnapshot"/>; no policy semantics here.</summary>
public sealed class PolicyIndex
{
    private readonly Dictionary<string, IReadOnlyDictionary<string, string>> _nsLabels = new(StringComparer.Ordinal);

    public PolicyIndex(PolicySnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        foreach (var ns in snapshot.Namespaces)
        {
            _nsLabels[ns.Name] = ns.Labels;
        }
        var pods = new List<PolicyPod>();
        var byIp = new Dictionary<IPAddress, PolicyPod>();
        // Terminating pods still hold their IP (and still get their rules) until they are gone.
        foreach (var p in snapshot.Pods.OrderBy(p => p.Namespace, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal))
        {
            if (p.HostNetwork || p.Phase is "Succeeded" or "Failed")
            {
                continue;
            }
            var ip = p.PodIPs.Select(s => IPAddress.TryParse(s, out var a) ? a : null).FirstOrDefault(a => a?.AddressFamily == AddressFamily.InterNetwork);
            if (ip is null || byIp.ContainsKey(ip))
            {
                continue; // no IPv4 address yet, or a stale object still claiming a reused address
            }
            var ports = p.Containers.SelectMany(c => c.Ports)
                .Where(cp => cp.ContainerPort is > 0 and <= 65535)
                .Select(cp => new PolicyPodPort(cp.Name ?? "", cp.Protocol.ToUpperInvariant(), cp.ContainerPort)).ToList();
            var pod = new PolicyPod(p.Namespace ?? "default", p.Name, ip, p.NodeName, p.Metadata.Labels, ports);
            pods.Add(pod);
            byIp[ip] = pod;
        }
        Pods = pods;
        PodsByIp = byIp;
        Policies = snapshot.Policies
            .Select(p => new PolicyRef(p.Namespace ?? "default", p.Name, p))
            .OrderBy(p => p.Namespace, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal).ToList();
        NodePodCidrs = snapshot.Nodes.ToDictionary(
            n => n.Name,
            n => (IReadOnlyList<IPNetwork>)n.PodCIDRs.Select(c => IPNetwork.TryParse(c, out var net) ? (IPNetwork?)net : null)
                .OfType<IPNetwork>().Where(c => c.BaseAddress.AddressFamily == AddressFamily.InterNetwork).ToList(),
            StringComparer.Ordinal);
    }

    /// <summary>Pods by namespace/name.</summary>
    public IReadOnlyList<PolicyPod> Pods { get; }

    public IReadOnlyDictionary<IPAddress, PolicyPod> PodsByIp { get; }

    /// <summary>Sorted by namespace, then name.</summary>
    public IReadOnlyList<PolicyRef> Policies { get; }

    public IReadOnlyDictionary<string, IReadOnlyList<IPNetwork>> NodePodCidrs { get; }

    /// <summary>A namespace's labels; a namespace with no object has what admission would have given it.</summary>
    public IReadOnlyDictionary<string, string> NamespaceLabels(string ns) =>
        _nsLabels.TryGetValue(ns, out var labels) ? labels : new Dictionary<string, string>(StringComparer.Ordinal) { [NamespaceView.NameLabel] = ns };

    /// <summary>The node whose pod CIDR holds <paramref name="ip"/>, if any.</summary>
    public string? NodeOfPodCidr(IPAddress ip) =>
        NodePodCidrs.Where(kv => kv.Value.Any(c => c.Contains(ip))).Select(kv => kv.Key).OrderBy(n => n, StringComparer.Ordinal).FirstOrDefault();
}
