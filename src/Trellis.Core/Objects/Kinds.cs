using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>The kinds Trellis stores, and the names kubectl accepts for them.</summary>
public static class Kinds
{
    public static readonly KindInfo Namespace = new("v1", "Namespace", "namespaces", "namespace", false, ["ns"]);
    public static readonly KindInfo Node = new("v1", "Node", "nodes", "node", false, ["no"]);
    public static readonly KindInfo Pod = new("v1", "Pod", "pods", "pod", true, ["po"]);
    public static readonly KindInfo Service = new("v1", "Service", "services", "service", true, ["svc"]);
    public static readonly KindInfo EndpointSlice = new("discovery.k8s.io/v1", "EndpointSlice", "endpointslices", "endpointslice", true, ["eps"]);
    public static readonly KindInfo NetworkPolicy = new("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true, ["netpol"]);

    /// <summary>An external BGP router the nodes peer with (Calico's BGPPeer, cluster-scoped).</summary>
    public static readonly KindInfo BgpPeer = new("trellis.dev/v1alpha1", "BGPPeer", "bgppeers", "bgppeer", false, []);

    /// <summary>The cluster's BGP settings, one object named "default" (Calico's BGPConfiguration).</summary>
    public static readonly KindInfo BgpConfiguration = new("trellis.dev/v1alpha1", "BGPConfiguration", "bgpconfigurations", "bgpconfiguration", false, []);

    public static ImmutableArray<KindInfo> All { get; } = [Namespace, Node, Pod, Service, EndpointSlice, NetworkPolicy, BgpPeer, BgpConfiguration];

    /// <summary>The kind a manifest's <c>apiVersion</c> and <c>kind</c> name (exact, as the API server matches them).</summary>
    public static KindInfo? Find(string? apiVersion, string? kind)
    {
        foreach (var k in All)
        {
            if (string.Equals(k.ApiVersion, apiVersion, StringComparison.Ordinal) && string.Equals(k.Kind, kind, StringComparison.Ordinal))
            {
                return k;
            }
        }
        return null;
    }

    public static KindInfo? Find(JsonObject obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        return Find(obj.Str("apiVersion"), obj.Str("kind"));
    }

    /// <summary>
    /// A CLI resource name as kubectl resolves it, case-insensitively: plural, singular, Kind or short name
    /// (<c>pods</c>, <c>pod</c>, <c>Pod</c>, <c>po</c>), optionally qualified by group
    /// (<c>networkpolicies.networking.k8s.io</c>) or by version and group (<c>endpointslices.v1.discovery.k8s.io</c>).
    /// </summary>
    public static bool TryResolve(string? name, [NotNullWhen(true)] out KindInfo? kind)
    {
        kind = null;
        if (string.IsNullOrWhiteSpace(name))
        {
            return false;
        }
        string resource = name.Trim();
        string? group = null;
        int dot = resource.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0)
        {
            group = resource[(dot + 1)..];
            resource = resource[..dot];
        }
        foreach (var k in All)
        {
            if (group is not null && !GroupMatches(k, group))
            {
                continue;
            }
            if (Names(k).Any(n => string.Equals(n, resource, StringComparison.OrdinalIgnoreCase)))
            {
                kind = k;
                return true;
            }
        }
        return false;
    }

    public static KindInfo Resolve(string name) =>
        TryResolve(name, out var kind) ? kind : throw new ArgumentException($"the server doesn't have a resource type \"{name}\"", nameof(name));

    /// <summary>
    /// The store key of an object whose kind is supported and whose metadata names it — all that
    /// <c>delete -f</c> needs. A namespaced object without a namespace is in <paramref name="defaultNamespace"/>.
    /// </summary>
    public static string StoreKey(JsonObject obj, string defaultNamespace = ObjectDefaults.DefaultNamespace)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var kind = Find(obj) ?? throw new ArgumentException($"unsupported kind {obj.Str("kind")} in {obj.Str("apiVersion")}", nameof(obj));
        var meta = obj.Obj("metadata");
        string? ns = meta.Str("namespace");
        return kind.StoreKey(string.IsNullOrEmpty(ns) ? defaultNamespace : ns, meta.Str("name") ?? "");
    }

    private static IEnumerable<string> Names(KindInfo k)
    {
        yield return k.Plural;
        yield return k.Singular;
        yield return k.Kind;
        foreach (var s in k.ShortNames)
        {
            yield return s;
        }
    }

    // kubectl accepts "resource.group" and "resource.version.group"; the core group is written "" ("pods.v1.").
    private static bool GroupMatches(KindInfo k, string qualifier)
    {
        string version = k.ApiVersion[(k.ApiVersion.IndexOf('/', StringComparison.Ordinal) + 1)..];
        return string.Equals(qualifier, k.Group, StringComparison.OrdinalIgnoreCase)
            || string.Equals(qualifier, version + "." + k.Group, StringComparison.OrdinalIgnoreCase)
            || (k.Group.Length == 0 && string.Equals(qualifier, version, StringComparison.OrdinalIgnoreCase));
    }
}
