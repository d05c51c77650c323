using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>v1 Node.</summary>
public sealed class NodeView(JsonObject json) : ObjectView(json)
{
    public string? PodCIDR => Spec.Str("podCIDR");

    /// <summary>spec.podCIDRs, or podCIDR alone when podCIDRs is absent.</summary>
    public IReadOnlyList<string> PodCIDRs
    {
        get
        {
            var cidrs = Spec.StrList("podCIDRs");
            return cidrs.Count == 0 && PodCIDR is { Length: > 0 } c ? [c] : cidrs;
        }
    }

    public bool Unschedulable => Spec.Bool("unschedulable") ?? false;

    public IReadOnlyList<NodeAddress> Addresses =>
        Status.Objects("addresses").Select(a => new NodeAddress(a.Str("type") ?? "", a.Str("address") ?? "")).ToList();

    /// <summary>The first InternalIP address.</summary>
    public string? InternalIP => Addresses.FirstOrDefault(a => a.Type == "InternalIP")?.Address;

    public IReadOnlyList<Condition> Conditions => Condition.ListFrom(Status);

    public bool IsReady => Conditions.Any(c => c.Type == "Ready" && c.IsTrue);

    public IReadOnlyDictionary<string, string> Annotations => Metadata.Annotations;

    public string? KubeletVersion => Status.Obj("nodeInfo").Str("kubeletVersion");

    /// <summary>kubectl's ROLES: <c>node-role.kubernetes.io/&lt;role&gt;</c> label keys and the <c>kubernetes.io/role</c> value.</summary>
    public IReadOnlyList<string> Roles
    {
        get
        {
            var roles = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var (k, v) in Metadata.Labels)
            {
                if (k.StartsWith("node-role.kubernetes.io/", StringComparison.Ordinal) && k.Length > "node-role.kubernetes.io/".Length)
                {
                    roles.Add(k["node-role.kubernetes.io/".Length..]);
                }
                else if (k == "kubernetes.io/role" && v.Length > 0)
                {
                    roles.Add(v);
                }
            }
            return [.. roles];
        }
    }
}

public sealed record NodeAddress(string Type, string Address);
