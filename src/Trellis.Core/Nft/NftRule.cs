using System.Net;

namespace Trellis.Core.Nft;

public enum NftVerdictKind
{
    Accept,
    Drop,
    Reject,
    Jump,
    Goto,
    Return,
    Continue,
}

/// <summary>A verdict; <see cref="Chain"/> is set for jump and goto.</summary>
public sealed record NftVerdict(NftVerdictKind Kind, string? Chain = null)
{
    public override string ToString() => Chain is null ? Kind.ToString().ToLowerInvariant() : $"{Kind.ToString().ToLowerInvariant()} {Chain}";
}

internal enum SelectorKind
{
    IpSaddr,
    IpDaddr,
    Ip6Saddr,
    Ip6Daddr,
    L4Proto,
    NfProto,
    Sport,
    Dport,
    Mark,
    IifName,
    OifName,
    Numgen,
}

/// <summary>The left-hand side of a match or lookup: a packet field (or <c>numgen random mod N</c>).</summary>
internal sealed record Selector(SelectorKind Kind, NftDataType Type, int NumgenMod = 0)
{
    /// <summary>Address selectors imply an IP-version check (nft adds <c>meta nfproto</c> in inet tables).</summary>
    public int? IpVersion => Kind switch
    {
        SelectorKind.IpSaddr or SelectorKind.IpDaddr => 4,
        SelectorKind.Ip6Saddr or SelectorKind.Ip6Daddr => 6,
        _ => null,
    };
}

internal abstract record RuleItem;

/// <summary><c>KEYS [==|!=] VALUE|{ … }|@SET</c>, KEYS possibly a concatenation; with a mask for <c>meta mark &amp; M</c>.</summary>
internal sealed record MatchItem(IReadOnlyList<Selector> Keys, bool Negated, IReadOnlyList<IReadOnlyList<NftKeyPart>>? Values, string? SetName, uint? Mask = null) : RuleItem;

internal sealed record CtStateItem(bool Negated, IReadOnlySet<string> States) : RuleItem;

internal sealed record FibItem(bool Daddr, bool Negated) : RuleItem;

internal sealed record VmapEntry(IReadOnlyList<NftKeyPart> Key, NftVerdict Verdict);

/// <summary><c>KEYS vmap @MAP</c> or an anonymous <c>vmap { k : verdict, … }</c>; a miss makes the rule not match.</summary>
internal sealed record VmapItem(IReadOnlyList<Selector> Keys, string? MapName, IReadOnlyList<VmapEntry>? Entries) : RuleItem;

internal sealed record CounterItem : RuleItem;

internal sealed record LogItem(string? Prefix) : RuleItem;

/// <summary><c>meta mark set [meta mark OP] VALUE</c>; Op is '=' (plain set), '|', '^' or '&amp;'.</summary>
internal sealed record MarkSetItem(char Op, uint Value) : RuleItem;

internal sealed record SetUpdateItem(string SetName, IReadOnlyList<Selector> Keys) : RuleItem;

/// <summary><c>dnat [ip] to ADDR[:PORT]</c>; inet tables need the explicit <c>ip</c> (nft cannot tell the family otherwise).</summary>
internal sealed record DnatItem(IPAddress Address, int? Port, bool ExplicitFamily) : RuleItem;

internal sealed record MasqueradeItem : RuleItem;

internal sealed record VerdictItem(NftVerdict Verdict) : RuleItem;

/// <summary>A rule as stored in a chain: its canonical text (what <c>Dump</c> prints and traces show) and parsed form.</summary>
public sealed class NftRule
{
    internal NftRule(long handle, string text, string? comment, IReadOnlyList<RuleItem> items, int line)
    {
        Handle = handle;
        Text = text;
        Comment = comment;
        Items = items;
        Line = line;
    }

    /// <summary>As nft numbers rules: unique in the table, never reused; not part of <c>Dump</c>.</summary>
    public long Handle { get; }

    public string Text { get; }

    public string? Comment { get; }

    internal IReadOnlyList<RuleItem> Items { get; }

    internal int Line { get; }

    /// <summary>The chains this rule can continue in (jump/goto verdicts and anonymous vmap entries).</summary>
    internal IEnumerable<NftVerdict> Verdicts()
    {
        foreach (var item in Items)
        {
            switch (item)
            {
                case VerdictItem v:
                    yield return v.Verdict;
                    break;
                case VmapItem { Entries: { } entries }:
                    foreach (var e in entries)
                    {
                        yield return e.Verdict;
                    }
                    break;
            }
        }
    }

    internal IEnumerable<string> SetReferences() => Items.Select(i => i switch
    {
        MatchItem m => m.SetName,
        VmapItem v => v.MapName,
        SetUpdateItem u => u.SetName,
        _ => null,
    }).OfType<string>();

    public override string ToString() => Text;
}
