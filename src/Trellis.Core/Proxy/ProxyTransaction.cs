using System.Text;
using Trellis.Core.Nft;

namespace Trellis.Core.Proxy;

/// <summary>
/// Turns rulesets into <c>nft -f -</c> transactions on <c>ip trellis-proxy</c> (the subset in README.md). Both kinds
/// are one netlink batch, committed as one ruleset generation: a packet sees the old table or the new one.
/// <para>Ordering inside a transaction follows nft's reference checks, which run line by line: definitions before
/// the rules and elements that name them; a chain or set is deleted last, after every flush that removed a
/// reference to it (the kernel refuses to delete a referenced chain with EBUSY). Since Linux 6.2 a chain is
/// unreferenced as soon as the map element pointing to it is gone, so stale chains are deleted in the same
/// transaction (kube-proxy, written for older kernels, defers that by a second).</para>
/// </summary>
public static class ProxyTransaction
{
    private const string Table = ProxyNames.Family + " " + ProxyNames.Table;

    /// <summary>
    /// A full sync. Every desired definition is added (<c>add</c> is idempotent), every chain and every set/map
    /// flushed and refilled — except affinity sets, which hold live client→endpoint state — and every name of
    /// <paramref name="existing"/> that is not desired is flushed, then deleted.
    /// </summary>
    public static string Full(ProxyRuleset desired, ProxyObjectNames? existing)
    {
        ArgumentNullException.ThrowIfNull(desired);
        existing ??= ProxyObjectNames.Empty;
        var w = new StringBuilder();
        w.Append("add table ").Append(Table).Append('\n');
        foreach (var c in desired.OrderedChains)
        {
            AddChain(w, c);
        }
        foreach (var s in desired.OrderedSets)
        {
            AddSet(w, s);
        }
        foreach (var c in desired.OrderedChains)
        {
            Line(w, "flush chain", c.Name);
        }
        foreach (var s in desired.OrderedSets.Where(s => !s.IsDynamic))
        {
            Line(w, "flush " + s.Keyword, s.Name);
        }
        var staleChains = existing.Chains.Where(c => !desired.Chains.ContainsKey(c)).Order(StringComparer.Ordinal).ToList();
        var staleSets = existing.Sets.Where(s => !desired.Sets.ContainsKey(s)).Order(StringComparer.Ordinal).ToList();
        foreach (var c in staleChains)
        {
            Line(w, "flush chain", c);
        }
        foreach (var s in staleSets)
        {
            Line(w, "flush " + (existing.Maps.Contains(s) ? "map" : "set"), s);
        }
        foreach (var c in desired.OrderedChains)
        {
            AddRules(w, c);
        }
        foreach (var s in desired.OrderedSets.Where(s => !s.IsDynamic))
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

    /// <summary>
    /// The changes from <paramref name="previous"/> (what was last applied) to <paramref name="desired"/>: new
    /// definitions, rewritten chains (flush + rules) where the rules changed, element deletes and adds where the
    /// elements changed, and deletes of what is no longer desired. "" when nothing changed. Its size depends on
    /// what changed, not on the size of the table.
    /// </summary>
    public static string Partial(ProxyRuleset previous, ProxyRuleset desired)
    {
        ArgumentNullException.ThrowIfNull(previous);
        ArgumentNullException.ThrowIfNull(desired);
        var w = new StringBuilder();
        var newChains = new List<ProxyChain>();
        var rewritten = new List<ProxyChain>();
        foreach (var c in desired.OrderedChains)
        {
            if (!previous.Chains.TryGetValue(c.Name, out var old))
            {
                newChains.Add(c);
            }
            else if (!old.Rules.SequenceEqual(c.Rules, StringComparer.Ordinal))
            {
                rewritten.Add(c);
            }
        }
        var staleChains = previous.OrderedChains.Where(c => !desired.Chains.ContainsKey(c.Name)).ToList();
        var staleSets = previous.OrderedSets.Where(s => !desired.Sets.ContainsKey(s.Name)).ToList();

        foreach (var c in newChains)
        {
            AddChain(w, c);
        }
        foreach (var s in desired.OrderedSets)
        {
            // A changed declaration is an affinity timeout: "add" of an existing dynamic set updates its
            // timeout in place (measured, Linux 6.18) and keeps its entries.
            if (!previous.Sets.TryGetValue(s.Name, out var old) || old.Declaration != s.Declaration)
            {
                AddSet(w, s);
            }
        }
        foreach (var c in rewritten.Concat(staleChains))
        {
            Line(w, "flush chain", c.Name);
        }
        foreach (var c in newChains.Concat(rewritten))
        {
            AddRules(w, c);
        }
        foreach (var s in desired.OrderedSets.Where(s => !s.IsDynamic))
        {
            var before = previous.Sets.TryGetValue(s.Name, out var old) ? old.Elements : [];
            if (ReferenceEquals(before, s.Elements) || before.SequenceEqual(s.Elements, StringComparer.Ordinal))
            {
                continue;
            }
            var wanted = new HashSet<string>(s.Elements, StringComparer.Ordinal);
            var had = new HashSet<string>(before, StringComparer.Ordinal);
            // An element whose verdict changed is deleted and added again: "add" of an existing key with another
            // verdict fails with EEXIST.
            Elements(w, "delete", s.Name, before.Where(e => !wanted.Contains(e)).Select(ProxySet.KeyOf).ToList());
            Elements(w, "add", s.Name, s.Elements.Where(e => !had.Contains(e)).ToList());
        }
        foreach (var s in staleSets.Where(s => !s.IsDynamic))
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

    /// <summary>
    /// The chain, set and map names in <c>nft list table ip trellis-proxy</c> output (what an agent finds after a
    /// restart). Names nft printed quoted are unquoted.
    /// </summary>
    public static ProxyObjectNames ParseListing(string listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        var chains = new HashSet<string>(StringComparer.Ordinal);
        var sets = new HashSet<string>(StringComparer.Ordinal);
        var maps = new HashSet<string>(StringComparer.Ordinal);
        int depth = 0;
        foreach (var raw in listing.Split('\n'))
        {
            string line = raw.Trim();
            if (depth == 1)
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 3 && parts[^1] == "{" && parts[0] is "chain" or "set" or "map")
                {
                    string name = string.Join(' ', parts[1..^1]).Trim('"');
                    (parts[0] == "chain" ? chains : sets).Add(name);
                    if (parts[0] == "map")
                    {
                        maps.Add(name);
                    }
                }
            }
            bool quoted = false;
            foreach (char ch in line)
            {
                if (ch == '"')
                {
                    quoted = !quoted;
                }
                else if (!quoted && ch == '{')
                {
                    depth++;
                }
                else if (!quoted && ch == '}')
                {
                    depth--;
                }
            }
        }
        return new ProxyObjectNames(chains, sets) { Maps = maps };
    }

    private static void AddChain(StringBuilder w, ProxyChain c) => NftScript.AddChain(w, Table, c.Name, c.BaseHook?.ToString());

    private static void AddSet(StringBuilder w, ProxySet s) => NftScript.AddSet(w, Table, s.Keyword, s.Name, s.Declaration);

    private static void AddRules(StringBuilder w, ProxyChain c) => NftScript.AddRules(w, Table, c.Name, c.Rules);

    private static void Elements(StringBuilder w, string verb, string set, IReadOnlyList<string> elements) =>
        NftScript.Elements(w, verb, Table, set, elements);

    private static void Line(StringBuilder w, string verb, string name) => NftScript.Line(w, verb, Table, name);
}
