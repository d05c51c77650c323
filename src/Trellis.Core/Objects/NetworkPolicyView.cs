using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>networking.k8s.io/v1 NetworkPolicy.</summary>
public sealed class NetworkPolicyView(JsonObject json) : ObjectView(json)
{
    /// <summary>spec.podSelector; absent reads as <c>{}</c> (all pods in the namespace), as the Go struct decodes it.</summary>
    public LabelSelector PodSelector => Selector(Spec.Obj("podSelector")) ?? LabelSelector.Everything;

    /// <summary>spec.policyTypes, or the inferred ones when absent (Ingress, plus Egress if there are egress rules).</summary>
    public IReadOnlyList<string> PolicyTypes
    {
        get
        {
            var types = Spec.StrList("policyTypes");
            if (types.Count > 0)
            {
                return types;
            }
            return Spec.Arr("egress") is { Count: > 0 } ? ["Ingress", "Egress"] : ["Ingress"];
        }
    }

    public bool AffectsIngress => PolicyTypes.Contains("Ingress");

    public bool AffectsEgress => PolicyTypes.Contains("Egress");

    public IReadOnlyList<NetworkPolicyRule> Ingress => Rules("ingress", "from");

    public IReadOnlyList<NetworkPolicyRule> Egress => Rules("egress", "to");

    private List<NetworkPolicyRule> Rules(string key, string peersKey) =>
        Spec.Arr(key) is not { } arr ? [] : arr.Select(r => r as JsonObject).Select(r => new NetworkPolicyRule(
            r.Objects(peersKey).Select(p => new NetworkPolicyPeer(Selector(p.Obj("podSelector")), Selector(p.Obj("namespaceSelector")), IpBlock(p.Obj("ipBlock")))).ToList(),
            r.Objects("ports").Select(p => new NetworkPolicyPort(p.Str("protocol") ?? "TCP", IntOrString.FromJson(p.Get("port")), p.Int("endPort") is { } e ? (int)e : null)).ToList(),
            r.Arr(peersKey) is { Count: > 0 },
            r.Arr("ports") is { Count: > 0 })).ToList();

    // A selector that fails to parse matches nothing: validation refuses such policies before they are stored.
    private static LabelSelector? Selector(JsonObject? s) =>
        s is null ? null : LabelSelector.TryFromJson(s, out var sel, out _) ? sel : LabelSelector.Nothing;

    private static IpBlock? IpBlock(JsonObject? b) => b is null ? null : new IpBlock(b.Str("cidr") ?? "", b.StrList("except"));
}

/// <summary>
/// One ingress or egress rule. Upstream semantics: an empty (or absent) peer list matches all sources or
/// destinations; an empty port list matches all ports.
/// </summary>
public sealed record NetworkPolicyRule(IReadOnlyList<NetworkPolicyPeer> Peers, IReadOnlyList<NetworkPolicyPort> Ports, bool HasPeers, bool HasPorts);

/// <summary>
/// A peer: podSelector alone selects pods in the policy's namespace; namespaceSelector alone, all pods in the
/// selected namespaces; both, the selected pods in the selected namespaces; ipBlock stands alone.
/// </summary>
public sealed record NetworkPolicyPeer(LabelSelector? PodSelector, LabelSelector? NamespaceSelector, IpBlock? IpBlock);

public sealed record IpBlock(string Cidr, IReadOnlyList<string> Except);

/// <summary>A port (number or named container port; null for all ports of the protocol) and an optional range end.</summary>
public sealed record NetworkPolicyPort(string Protocol, IntOrString? Port, int? EndPort);
