using System.Text;

namespace Trellis.Core.Nft;

/// <summary>
/// The statement lines of an <c>nft -f</c> transaction, as the proxy and policy compilers write them
/// (the subset in <c>Proxy/README.md</c>). <paramref name="table"/> is "FAMILY NAME", e.g. "ip trellis-proxy".
/// </summary>
public static class NftScript
{
    public static void AddChain(StringBuilder w, string table, string chain, string? baseHook)
    {
        w.Append("add chain ").Append(table).Append(' ').Append(chain);
        if (baseHook is not null)
        {
            w.Append(' ').Append(baseHook);
        }
        w.Append('\n');
    }

    /// <param name="keyword">"set" or "map".</param>
    public static void AddSet(StringBuilder w, string table, string keyword, string name, string declaration) =>
        w.Append("add ").Append(keyword).Append(' ').Append(table).Append(' ').Append(name).Append(' ').Append(declaration).Append('\n');

    public static void AddRules(StringBuilder w, string table, string chain, IEnumerable<string> rules)
    {
        foreach (var rule in rules)
        {
            w.Append("add rule ").Append(table).Append(' ').Append(chain).Append(' ').Append(rule).Append('\n');
        }
    }

    /// <summary><c>add|delete element TABLE SET { e, … }</c>; nothing for no elements ("{ }" is a syntax error).</summary>
    public static void Elements(StringBuilder w, string verb, string table, string set, IReadOnlyList<string>? elements)
    {
        if (elements is not { Count: > 0 })
        {
            return;
        }
        w.Append(verb).Append(" element ").Append(table).Append(' ').Append(set).Append(" { ").AppendJoin(", ", elements).Append(" }\n");
    }

    /// <summary><c>VERB TABLE NAME</c>, e.g. "flush chain", "delete map".</summary>
    public static void Line(StringBuilder w, string verb, string table, string name) =>
        w.Append(verb).Append(' ').Append(table).Append(' ').Append(name).Append('\n');
}
