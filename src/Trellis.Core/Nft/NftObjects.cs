using System.Globalization;

namespace Trellis.Core.Nft;

public enum NftFamily
{
    Ip,
    Inet,
}

public enum NftHook
{
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

public enum NftChainType
{
    Filter,
    Nat,
}

/// <summary>The <c>{ type … hook … priority … ; policy … ; }</c> of a base chain.</summary>
public sealed record NftBaseChain(NftChainType Type, NftHook Hook, int Priority, NftVerdictKind Policy)
{
    internal string Declaration =>
        $"type {Type.ToString().ToLowerInvariant()} hook {Hook.ToString().ToLowerInvariant()} priority {Priority.ToString(CultureInfo.InvariantCulture)} ; policy {Policy.ToString().ToLowerInvariant()} ;";
}

/// <summary>A set or map element; <see cref="Verdict"/> is set for verdict-map elements.</summary>
public sealed record NftElement(IReadOnlyList<NftKeyPart> Key, NftVerdict? Verdict);

internal sealed class KeyComparer : IComparer<IReadOnlyList<NftKeyPart>>
{
    public static readonly KeyComparer Instance = new();

    public int Compare(IReadOnlyList<NftKeyPart>? x, IReadOnlyList<NftKeyPart>? y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        for (int i = 0; i < Math.Min(x.Count, y.Count); i++)
        {
            int c = x[i].CompareTo(y[i]);
            if (c != 0)
            {
                return c;
            }
        }
        return x.Count.CompareTo(y.Count);
    }
}

public sealed class NftSet
{
    private SortedDictionary<IReadOnlyList<NftKeyPart>, NftElement> _elements = new(KeyComparer.Instance);

    internal NftSet(string name, bool isMap, IReadOnlyList<NftDataType> keyTypes, bool interval, bool dynamic, bool timeoutFlag, string? timeout, string? comment)
    {
        Name = name;
        IsMap = isMap;
        KeyTypes = keyTypes;
        IsInterval = interval;
        IsDynamic = dynamic;
        HasTimeoutFlag = timeoutFlag;
        Timeout = timeout;
        Comment = comment;
    }

    public string Name { get; }

    /// <summary>A verdict map (<c>add map … : verdict</c>) rather than a set.</summary>
    public bool IsMap { get; }

    public IReadOnlyList<NftDataType> KeyTypes { get; }

    public bool IsInterval { get; }

    public bool IsDynamic { get; }

    public bool HasTimeoutFlag { get; }

    public string? Timeout { get; }

    public string? Comment { get; }

    /// <summary>Sorted by key.</summary>
    public IReadOnlyCollection<NftElement> Elements => _elements.Values;

    internal SortedDictionary<IReadOnlyList<NftKeyPart>, NftElement> ElementMap => _elements;

    /// <summary>Same definition (what nft compares on <c>add</c> of an existing set).</summary>
    internal bool SameDefinition(NftSet o) =>
        IsMap == o.IsMap && KeyTypes.SequenceEqual(o.KeyTypes) && IsInterval == o.IsInterval && IsDynamic == o.IsDynamic && HasTimeoutFlag == o.HasTimeoutFlag;

    internal string Declaration
    {
        get
        {
            var parts = new List<string>
            {
                "type " + string.Join(" . ", KeyTypes.Select(NftValues.TypeName)) + (IsMap ? " : verdict" : "") + " ;",
            };
            var flags = new List<string>();
            if (IsInterval)
            {
                flags.Add("interval");
            }
            if (IsDynamic)
            {
                flags.Add("dynamic");
            }
            if (HasTimeoutFlag)
            {
                flags.Add("timeout");
            }
            if (flags.Count > 0)
            {
                parts.Add("flags " + string.Join(',', flags) + " ;");
            }
            if (Timeout is not null)
            {
                parts.Add("timeout " + Timeout + " ;");
            }
            if (Comment is not null)
            {
                parts.Add("comment \"" + Comment + "\" ;");
            }
            return "{ " + string.Join(' ', parts) + " }";
        }
    }

    public string FormatElement(NftElement e) =>
        NftValues.FormatKey(e.Key, KeyTypes) + (e.Verdict is null ? "" : " : " + e.Verdict);

    internal NftSet Clone()
    {
        var copy = (NftSet)MemberwiseClone();
        copy._elements = new SortedDictionary<IReadOnlyList<NftKeyPart>, NftElement>(_elements, KeyComparer.Instance);
        return copy;
    }
}

public sealed class NftChain
{
    private List<NftRule> _rules = [];

    internal NftChain(string name, NftBaseChain? baseChain, string? comment)
    {
        Name = name;
        Base = baseChain;
        Comment = comment;
    }

    public string Name { get; }

    /// <summary>Null for a regular chain (reached only by jump/goto).</summary>
    public NftBaseChain? Base { get; internal set; }

    public string? Comment { get; internal set; }

    public IReadOnlyList<NftRule> Rules => _rules;

    internal List<NftRule> RuleList => _rules;

    internal NftChain Clone()
    {
        var copy = (NftChain)MemberwiseClone();
        copy._rules = [.. _rules];
        return copy;
    }
}

public sealed class NftTable
{
    private SortedDictionary<string, NftChain> _chains = new(StringComparer.Ordinal);
    private SortedDictionary<string, NftSet> _sets = new(StringComparer.Ordinal);

    internal NftTable(NftFamily family, string name, string? comment)
    {
        Family = family;
        Name = name;
        Comment = comment;
    }

    public NftFamily Family { get; }

    public string Name { get; }

    public string? Comment { get; internal set; }

    /// <summary>"ip trellis-proxy": how nft names it in commands.</summary>
    public string QualifiedName => $"{FamilyName(Family)} {Name}";

    public IReadOnlyDictionary<string, NftChain> Chains => _chains;

    /// <summary>Sets and verdict maps (one namespace in nft).</summary>
    public IReadOnlyDictionary<string, NftSet> Sets => _sets;

    internal SortedDictionary<string, NftChain> ChainMap => _chains;

    internal SortedDictionary<string, NftSet> SetMap => _sets;

    internal long NextHandle { get; set; } = 1;

    /// <summary>
    /// The kernel's use counts: how many rules and map elements jump to a chain, how many rules look up a set.
    /// Kept incrementally so "delete chain" in a big partial sync is O(1), not a scan of every rule.
    /// </summary>
    internal Dictionary<string, int> ChainUses { get; private set; } = new(StringComparer.Ordinal);

    internal Dictionary<string, int> SetUses { get; private set; } = new(StringComparer.Ordinal);

    internal void CountRule(NftRule rule, int delta)
    {
        foreach (var v in rule.Verdicts())
        {
            if (v.Chain is not null)
            {
                Count(ChainUses, v.Chain, delta);
            }
        }
        foreach (var set in rule.SetReferences())
        {
            Count(SetUses, set, delta);
        }
    }

    internal void CountElement(NftElement e, int delta)
    {
        if (e.Verdict?.Chain is { } chain)
        {
            Count(ChainUses, chain, delta);
        }
    }

    private static void Count(Dictionary<string, int> uses, string name, int delta)
    {
        int n = uses.GetValueOrDefault(name) + delta;
        if (n == 0)
        {
            uses.Remove(name);
        }
        else
        {
            uses[name] = n;
        }
    }

    internal NftTable Clone()
    {
        var copy = (NftTable)MemberwiseClone();
        copy.ChainUses = new Dictionary<string, int>(ChainUses, StringComparer.Ordinal);
        copy.SetUses = new Dictionary<string, int>(SetUses, StringComparer.Ordinal);
        copy._chains = new SortedDictionary<string, NftChain>(_chains.ToDictionary(kv => kv.Key, kv => kv.Value.Clone(), StringComparer.Ordinal), StringComparer.Ordinal);
        copy._sets = new SortedDictionary<string, NftSet>(_sets.ToDictionary(kv => kv.Key, kv => kv.Value.Clone(), StringComparer.Ordinal), StringComparer.Ordinal);
        return copy;
    }

    public static string FamilyName(NftFamily f) => f == NftFamily.Ip ? "ip" : "inet";
}
