using System.Net;

namespace Trellis.Core.Proxy;

/// <summary>A base chain's hook: <c>{ type TYPE hook HOOK priority PRIORITY ; }</c>.</summary>
public sealed record ProxyBaseHook(string Type, string Hook, int Priority)
{
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{{ type {Type} hook {Hook} priority {Priority} ; }}");
}

/// <summary>One chain of the table: its hook (null for a regular chain) and its rules, in order, as rule text.</summary>
public sealed record ProxyChain(string Name, ProxyBaseHook? BaseHook, IReadOnlyList<string> Rules)
{
    public bool Equals(ProxyChain? other) =>
        other is not null && Name == other.Name && BaseHook == other.BaseHook && Rules.SequenceEqual(other.Rules);

    public override int GetHashCode() => HashCode.Combine(Name, BaseHook, Rules.Count);
}

/// <summary>
/// A set or verdict map. <see cref="Elements"/> is sorted canonical element text: <c>10.96.0.1</c>, or for a map
/// <c>KEY : VERDICT</c> (<c>10.96.0.1 . tcp . 80 : goto service-…</c>).
/// </summary>
public sealed record ProxySet(string Name, bool IsMap, string Declaration, IReadOnlyList<string> Elements)
{
    /// <summary>Affinity sets are filled by the packet path (<c>update @set</c>), never by a sync.</summary>
    public bool IsDynamic => Declaration.Contains("dynamic", StringComparison.Ordinal);

    public string Keyword => IsMap ? "map" : "set";

    public bool Equals(ProxySet? other) =>
        other is not null && Name == other.Name && IsMap == other.IsMap && Declaration == other.Declaration && Elements.SequenceEqual(other.Elements);

    public override int GetHashCode() => HashCode.Combine(Name, Declaration, Elements.Count);

    /// <summary>The key of a map element (<c>KEY : VERDICT</c>), or the whole element of a set.</summary>
    public static string KeyOf(string element)
    {
        int i = element.IndexOf(" : ", StringComparison.Ordinal);
        return i < 0 ? element : element[..i];
    }
}

/// <summary>One endpoint as the proxy sees it (kube-proxy's BaseEndpointInfo).</summary>
public sealed record ProxyEndpoint(IPAddress Ip, int Port, bool Ready, bool Serving, bool Terminating, string? NodeName, bool IsLocal)
{
    public override string ToString() => $"{Ip}:{Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
}

/// <summary>One programmed service port, for the agent (health-check server, conntrack cleanup, status).</summary>
public sealed record ProxyServicePort(
    string Namespace,
    string Name,
    string PortName,
    string Protocol,
    IReadOnlyList<IPAddress> ClusterIPs,
    int Port,
    int? NodePort,
    IReadOnlyList<IPAddress> ExternalIPs,
    IReadOnlyList<IPAddress> LoadBalancerIPs,
    IReadOnlyList<ProxyEndpoint> Endpoints,
    IReadOnlyList<ProxyEndpoint> ClusterEndpoints,
    IReadOnlyList<ProxyEndpoint> LocalEndpoints,
    bool ExternalPolicyLocal,
    bool InternalPolicyLocal,
    int? HealthCheckNodePort);

/// <summary>Chain and set/map names present in the kernel's table (<see cref="ProxyTransaction.ParseListing"/>).</summary>
public sealed record ProxyObjectNames(IReadOnlySet<string> Chains, IReadOnlySet<string> Sets)
{
    /// <summary>
    /// The names in <see cref="Sets"/> that are verdict maps: nft refuses <c>flush set</c> on a map ("No such
    /// file or directory"), so a stale one must be flushed with <c>flush map</c>. Names not listed here are
    /// treated as sets.
    /// </summary>
    public IReadOnlySet<string> Maps { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    public static ProxyObjectNames Empty { get; } = new(new HashSet<string>(StringComparer.Ordinal), new HashSet<string>(StringComparer.Ordinal));
}

/// <summary>The desired content of the <c>ip trellis-proxy</c> table: the output of <see cref="ProxyCompiler.Compile"/>.</summary>
public sealed class ProxyRuleset
{
    private readonly IReadOnlyList<ProxyChain> _orderedChains;
    private readonly IReadOnlyList<ProxySet> _orderedSets;

    internal ProxyRuleset(IReadOnlyList<ProxyChain> chains, IReadOnlyList<ProxySet> sets, IReadOnlyList<ProxyServicePort> servicePorts, IReadOnlyList<string> problems)
    {
        _orderedChains = chains;
        _orderedSets = sets;
        Chains = chains.ToDictionary(c => c.Name, StringComparer.Ordinal);
        Sets = sets.ToDictionary(s => s.Name, StringComparer.Ordinal);
        ServicePorts = servicePorts;
        Problems = problems;
    }

    public IReadOnlyDictionary<string, ProxyChain> Chains { get; }

    public IReadOnlyDictionary<string, ProxySet> Sets { get; }

    public IReadOnlyList<ProxyServicePort> ServicePorts { get; }

    /// <summary>Objects (or parts of them) that were skipped, each naming the object and the field at fault.</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>Chains in transaction order: base chains in hook order, then the rest by name.</summary>
    public IReadOnlyList<ProxyChain> OrderedChains => _orderedChains;

    /// <summary>Sets and maps by name.</summary>
    public IReadOnlyList<ProxySet> OrderedSets => _orderedSets;

    /// <summary>The full-sync transaction on an empty table: canonical text, what golden files hold.</summary>
    public string Dump() => ProxyTransaction.Full(this, null);
}
