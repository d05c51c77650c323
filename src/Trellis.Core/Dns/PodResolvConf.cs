using Trellis.Core.Objects;

namespace Trellis.Core.Dns;

/// <summary>A resolver configuration: what a pod's /etc/resolv.conf says.</summary>
public sealed record ResolverConfig(IReadOnlyList<string> Nameservers, IReadOnlyList<string> Searches, IReadOnlyList<string> Options)
{
    public static ResolverConfig Empty { get; } = new([], [], []);

    /// <summary>The file, in the order containerd writes it (search, nameserver, options); an empty config is an empty file.</summary>
    public string Format()
    {
        var lines = new List<string>();
        if (Searches.Count > 0)
        {
            lines.Add("search " + string.Join(' ', Searches));
        }
        lines.AddRange(Nameservers.Select(s => "nameserver " + s));
        if (Options.Count > 0)
        {
            lines.Add("options " + string.Join(' ', Options));
        }
        return lines.Count == 0 ? "" : string.Join('\n', lines) + "\n";
    }
}

/// <summary>
/// The kubelet's pod DNS configuration (pkg/kubelet/network/dns, GetPodDNS), as a pure function: the
/// dnsPolicy picks the base (ClusterFirst: the cluster DNS, the cluster search path and ndots:5;
/// Default: the node's resolver; None: nothing), spec.dnsConfig is appended to it (nameservers and
/// searches de-duplicated, options merged by name with the pod's value winning), and the result is cut
/// to the resolver's limits (3 nameservers; 32 search domains and 2048 characters).
/// </summary>
public static class PodResolvConf
{
    public const int MaxNameservers = 3;
    public const int MaxSearchPaths = 32;
    public const int MaxSearchListChars = 2048;

    /// <param name="pod">The pod (its namespace, dnsPolicy, hostNetwork and dnsConfig are read).</param>
    /// <param name="clusterDns">The kubelet's --cluster-dns addresses; empty makes ClusterFirst fall back to Default, as the kubelet does.</param>
    /// <param name="clusterDomain">The kubelet's --cluster-domain; empty leaves the node's search path alone.</param>
    /// <param name="node">The node's own resolver configuration (the kubelet's --resolv-conf).</param>
    public static ResolverConfig For(PodView pod, IReadOnlyList<string> clusterDns, string clusterDomain, ResolverConfig node)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(clusterDns);
        ArgumentNullException.ThrowIfNull(node);
        var config = Base(pod, clusterDns, clusterDomain ?? "", node);
        if (pod.DnsConfig is { } dc)
        {
            config = new ResolverConfig(
                Distinct(config.Nameservers.Concat(dc.Nameservers)),
                Distinct(config.Searches.Concat(dc.Searches)),
                MergeOptions(config.Options, dc.Options));
        }
        return config with { Nameservers = config.Nameservers.Take(MaxNameservers).ToList(), Searches = FitSearches(config.Searches) };
    }

    private static ResolverConfig Base(PodView pod, IReadOnlyList<string> clusterDns, string clusterDomain, ResolverConfig node)
    {
        switch (pod.DnsPolicy)
        {
            case "None":
                return ResolverConfig.Empty;
            case "ClusterFirst" when pod.HostNetwork:
            case "Default":
                return node;
        }
        // ClusterFirst, ClusterFirstWithHostNet (and anything admission let through, as the kubelet defaults it).
        if (clusterDns.Count == 0)
        {
            // The kubelet logs "ClusterFirst policy specified but no cluster DNS" and uses the node's resolver.
            return node;
        }
        IEnumerable<string> searches = clusterDomain.Length == 0
            ? node.Searches
            : new[] { $"{pod.Namespace ?? "default"}.svc.{clusterDomain}", $"svc.{clusterDomain}", clusterDomain }.Concat(node.Searches);
        return new ResolverConfig([.. clusterDns], Distinct(searches), ["ndots:5"]);
    }

    /// <summary>kubelet's mergeDNSOptions: by name (the part before ':'); the pod's entries replace the base's; a value of "" means none.</summary>
    private static List<string> MergeOptions(IReadOnlyList<string> existing, IReadOnlyList<KeyValuePair<string, string?>> pod)
    {
        // Insertion order is kept (Go's map order is random; any order means the same to the resolver).
        var names = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        void Set(string name, string value)
        {
            if (!values.ContainsKey(name))
            {
                names.Add(name);
            }
            values[name] = value;
        }
        foreach (string op in existing)
        {
            int colon = op.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0)
            {
                Set(op[..colon], op[(colon + 1)..]);
            }
            else
            {
                Set(op, "");
            }
        }
        foreach (var (name, value) in pod)
        {
            Set(name, value ?? "");
        }
        return names.Select(n => values[n].Length == 0 ? n : $"{n}:{values[n]}").ToList();
    }

    /// <summary>
    /// kubelet's formDNSSearchFitsLimits: at most 32 domains, none longer than 253 characters (glibc 2.28
    /// aborts on such a search path), and 2048 characters in all; the rest is dropped from the end.
    /// </summary>
    private static List<string> FitSearches(IReadOnlyList<string> searches)
    {
        var kept = searches.Take(MaxSearchPaths).Where(s => s.Length <= 253).ToList();
        while (kept.Count > 0 && kept.Sum(s => s.Length) + kept.Count - 1 > MaxSearchListChars)
        {
            kept.RemoveAt(kept.Count - 1);
        }
        return kept;
    }

    private static List<string> Distinct(IEnumerable<string> items)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        return items.Where(seen.Add).ToList();
    }
}
