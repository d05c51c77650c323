using System.Text;
using Trellis.Core.Nft;

namespace Trellis.Core.Policies;

/// <summary>What the kernel's <c>inet trellis-policy</c> holds, from <c>nft -s list table</c>: chain and set/map names.</summary>
public sealed record PolicyObjectNames(IReadOnlySet<string> Chains, IReadOnlySet<string> Sets, IReadOnlySet<string> Maps)
{
    public static PolicyObjectNames Empty { get; } = new(new HashSet<string>(), new HashSet<string>(), new HashSet<string>());

    public static PolicyObjectNames FromListing(string listing)
    {
        var names = Proxy.ProxyTransaction.ParseListing(listing); // table-agnostic
        return new PolicyObjectNames(names.Chains, names.Sets, names.Maps);
    }
}

/// <summary>
/// Rulesets → <c>nft -f -</c> transactions on <c>inet trellis-policy</c>, each one atomic (one netlink batch): a
/// packet sees the old policy or the new one. The table is never flushed or deleted: a restarted agent's first
/// transaction replaces its contents in place. Order inside a transaction follows nft's reference checks:
/// definitions before the rules and elements naming them; chains deleted after the elements pointing at them.
/// <para>Counter chains (one <c>counter</c> rule, fixed by their name) that the kernel already has are neither
/// flushed nor rewritten by a full sync, so a periodic resync does not reset the exported counters.</para>
/// </summary>
public static class PolicyTransaction
{
    private const string Table = PolicyNames.Family + " " + PolicyNames.Table;

    /// <summary>A full sync: every definition added, every chain and map flushed and refilled, stale names deleted.</summary>
    public static string Full(PolicyRuleset desired, PolicyObjectNames? existing)
    {
        ArgumentNullException.ThrowIfNull(desired);
        existing ??= PolicyObjectNames.Empty;
        var w = new StringBuilder();
        w.Append("add table ").Append(Table).Append('\n');
        var rewrite = desired.OrderedChains.Where(c => !(PolicyNames.IsCounterChain(c.Name) && existing.Chains.Contains(c.Name))).ToList();
        foreach (var c in rewrite)
        {
            AddChain(w, c);
        }
        foreach (var s in desired.OrderedSets)
        {
            AddSet(w, s);
        }
        var staleChains = existing.Chains.Where(c => !desired.Chains.ContainsKey(c)).Order(StringComparer.Ordinal).ToList();
        var staleSets = existing.Sets.Where(s => !desired.Sets.ContainsKey(s)).Order(StringComparer.Ordinal).ToList();
        foreach (var c in rewrite.Select(c => c.Name).Concat(staleChains))
        {
            Line(w, "flush chain", c);
        }
        foreach (var s in desired.OrderedSets)
        {
            Line(w, "flush " + s.Keyword, s.Name);
        }
        foreach (var s in staleSets)
        {
            Line(w, "flush " + (existing.Maps.Contains(s) ? "map" : "set"), s);
        }
        foreach (var c in rewrite)
        {
            AddRules(w, c);
        }
        foreach (var s in desired.OrderedSets)
        {
            Elements(w, "add", s.Name, s.Elements);
        }
        foreach (var c in staleChains)
        {
            Line(w, "delete chain", c);
        }
        foreach (var s in staleSets)
        {
            Line(w, "delete " + (existing.Maps.Contains(s) ? "map" : "set"), s);
        }
        return w.ToString();
    }

    /// <summary>Only the differences from <paramref name="previous"/> (what was last applied); "" when nothing changed.</summary>
    public static string Partial(PolicyRuleset previous, PolicyRuleset desired)
    {
        ArgumentNullException.ThrowIfNull(previous);
        ArgumentNullException.ThrowIfNull(desired);
        var w = new StringBuilder();
        var newChains = desired.OrderedChains.Where(c => !previous.Chains.ContainsKey(c.Name)).ToList();
        var rewritten = desired.OrderedChains.Where(c => previous.Chains.TryGetValue(c.Name, out var old) && !old.Equals(c)).ToList();
        var staleChains = previous.OrderedChains.Where(c => !desired.Chains.ContainsKey(c.Name)).ToList();
        var staleSets = previous.OrderedSets.Where(s => !desired.Sets.ContainsKey(s.Name)).ToList();
        foreach (var c in newChains)
        {
            AddChain(w, c);
        }
        foreach (var s in desired.OrderedSets.Where(s => !previous.Sets.ContainsKey(s.Name)))
        {
            AddSet(w, s);
        }
        foreach (var c in rewritten.Concat(staleChains))
        {
            Line(w, "flush chain", c.Name);
        }
        foreach (var c in newChains.Concat(rewritten))
        {
            AddRules(w, c);
        }
        foreach (var s in desired.OrderedSets)
        {
            var before = previous.Sets.TryGetValue(s.Name, out var old) ? old.Elements : [];
            if (before.SequenceEqual(s.Elements, StringComparer.Ordinal))
            {
                continue;
            }
            var wanted = new HashSet<string>(s.Elements, StringComparer.Ordinal);
            var had = new HashSet<string>(before, StringComparer.Ordinal);
            // Deletes first: a changed element (another verdict, or a resized interval) would overlap its old self.
            Elements(w, "delete", s.Name, before.Where(e => !wanted.Contains(e)).Select(PolicySet.KeyOf).ToList());
            Elements(w, "add", s.Name, s.Elements.Where(e => !had.Contains(e)).ToList());
        }
        foreach (var s in staleSets)
        {
            Line(w, "flush " + s.Keyword, s.Name);
        }
        foreach (var c in staleChains)
        {
            Line(w, "delete chain", c.Name);
        }
        foreach (var s in staleSets)
        {
            Line(w, "delete " + s.Keyword, s.Name);
        }
        return w.ToString();
    }

    private static void AddChain(StringBuilder w, PolicyChain c) => NftScript.AddChain(w, Table, c.Name, c.BaseHook?.ToString());

    private static void AddSet(StringBuilder w, PolicySet s) => NftScript.AddSet(w, Table, s.Keyword, s.Name, s.Declaration);

    private static void AddRules(StringBuilder w, PolicyChain c) => NftScript.AddRules(w, Table, c.Name, c.Rules);

    private static void Elements(StringBuilder w, string verb, string set, IReadOnlyList<string> elements) =>
        NftScript.Elements(w, verb, Table, set, elements);

    private static void Line(StringBuilder w, string verb, string name) => NftScript.Line(w, verb, Table, name);
}
