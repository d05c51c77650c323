namespace Trellis.Core.Policies;

public static class PolicyNames
{
    public const string Family = "inet";

    public const string Table = "trellis-policy";

    /// <summary>Prefixes of the counter chains: one per policy and direction (allow), one per isolated pod and direction (drop).</summary>
    public const string AllowIngressPrefix = "allow-in-";
    public const string AllowEgressPrefix = "allow-out-";
    public const string DropIngressPrefix = "drop-in-";
    public const string DropEgressPrefix = "drop-out-";

    public static bool IsCounterChain(string chain) =>
        chain.StartsWith("allow-", StringComparison.Ordinal) || chain.StartsWith("drop-", StringComparison.Ordinal);
}

/// <summary>A base chain's hook: <c>{ type filter hook forward priority 0 ; policy accept ; }</c>.</summary>
public sealed record PolicyBaseHook(string Type, string Hook, int Priority)
{
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{{ type {Type} hook {Hook} priority {Priority} ; policy accept ; }}");
}

/// <summary>One chain: its hook (null for a regular chain) and its rules as text, in order.</summary>
public sealed record PolicyChain(string Name, PolicyBaseHook? BaseHook, IReadOnlyList<string> Rules)
{
    public bool Equals(PolicyChain? other) =>
        other is not null && Name == other.Name && BaseHook == other.BaseHook && Rules.SequenceEqual(other.Rules, StringComparer.Ordinal);

    public override int GetHashCode() => HashCode.Combine(Name, BaseHook, Rules.Count);
}

/// <summary>A set or verdict map; <see cref="Elements"/> is sorted canonical element text (<c>KEY : VERDICT</c> for maps).</summary>
public sealed record PolicySet(string Name, bool IsMap, string Declaration, IReadOnlyList<string> Elements)
{
    public string Keyword => IsMap ? "map" : "set";

    public bool Equals(PolicySet? other) =>
        other is not null && Name == other.Name && IsMap == other.IsMap && Declaration == other.Declaration && Elements.SequenceEqual(other.Elements, StringComparer.Ordinal);

    public override int GetHashCode() => HashCode.Combine(Name, Declaration, Elements.Count);

    public static string KeyOf(string element)
    {
        int i = element.IndexOf(" : ", StringComparison.Ordinal);
        return i < 0 ? element : element[..i];
    }
}

/// <summary>What a counter chain counts: <see cref="Kind"/> "allow" (per policy) or "drop" (per pod); direction "ingress"/"egress".</summary>
public sealed record PolicyCounterChain(string Chain, string Kind, string Direction, string Namespace, string Name);

/// <summary>The desired content of <c>inet trellis-policy</c> on one node: the output of <see cref="PolicyCompiler.Compile(PolicySnapshot, string)"/>.</summary>
public sealed class PolicyRuleset
{
    internal PolicyRuleset(IReadOnlyList<PolicyChain> chains, IReadOnlyList<PolicySet> sets, IReadOnlyList<PolicyCounterChain> counters, IReadOnlyList<string> problems)
    {
        OrderedChains = chains;
        OrderedSets = sets;
        Chains = chains.ToDictionary(c => c.Name, StringComparer.Ordinal);
        Sets = sets.ToDictionary(s => s.Name, StringComparer.Ordinal);
        Counters = counters;
        Problems = problems;
    }

    public IReadOnlyDictionary<string, PolicyChain> Chains { get; }

    public IReadOnlyDictionary<string, PolicySet> Sets { get; }

    /// <summary>Base chain first, then the check chains, then counter chains by name.</summary>
    public IReadOnlyList<PolicyChain> OrderedChains { get; }

    public IReadOnlyList<PolicySet> OrderedSets { get; }

    public IReadOnlyList<PolicyCounterChain> Counters { get; }

    /// <summary>Parts of policies that could not be compiled, naming the policy and field.</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>The full sync on an empty table: what golden files hold.</summary>
    public string Dump() => PolicyTransaction.Full(this, null);
}
