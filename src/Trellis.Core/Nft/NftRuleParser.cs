using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Trellis.Core.Nft;

/// <summary>
/// Parses the RULE part of <c>add rule FAMILY TABLE CHAIN RULE</c> — the subset listed in
/// src/Trellis.Core/Proxy/README.md plus what NetworkPolicy needs (see src/Trellis.Core/Nft/README.md).
/// Anything else is an <see cref="NftParseException"/>: a rule the tracer half-understood would make its
/// answers wrong without anyone noticing.
/// </summary>
internal static class NftRuleParser
{
    private static readonly HashSet<string> s_ctStates = ["new", "established", "related", "invalid", "untracked"];

    public static (List<RuleItem> Items, string Text, string? Comment) Parse(TokenReader r)
    {
        int start = r.Position;
        var items = new List<RuleItem>();
        string? comment = null;
        bool terminal = false;
        bool l4Known = false;
        while (!r.AtEnd)
        {
            var t = r.Peek()!.Value;
            if (t.Is("comment"))
            {
                r.Next("comment");
                var s = r.Next("a quoted comment");
                if (s.Kind != TokenKind.String)
                {
                    throw r.Error("comment must be a quoted string");
                }
                comment = s.Text;
                if (!r.AtEnd)
                {
                    throw r.Error($"unexpected '{r.Peek()}' after the comment (a comment ends the rule)");
                }
                break;
            }
            if (terminal)
            {
                throw r.Error($"unexpected '{t}' after the rule's verdict");
            }
            if (t.Kind != TokenKind.Word)
            {
                throw r.Error($"unexpected '{t}'");
            }
            switch (t.Text)
            {
                case "counter":
                    r.Next("counter");
                    if (r.TryConsume("packets"))
                    {
                        r.NextWord("a packet count");
                        r.Expect("bytes");
                        r.NextWord("a byte count");
                    }
                    items.Add(new CounterItem());
                    break;
                case "log":
                    {
                        r.Next("log");
                        string? prefix = null;
                        while (true)
                        {
                            if (r.TryConsume("prefix"))
                            {
                                var p = r.Next("a quoted log prefix");
                                prefix = p.Kind == TokenKind.String ? p.Text : throw r.Error("log prefix must be a quoted string");
                            }
                            else if (r.TryConsume("level"))
                            {
                                r.NextWord("a log level");
                            }
                            else
                            {
                                break;
                            }
                        }
                        items.Add(new LogItem(prefix));
                        break;
                    }
                case "ct":
                    r.Next("ct");
                    r.Expect("state");
                    items.Add(ParseCtState(r));
                    break;
                case "fib":
                    {
                        r.Next("fib");
                        string which = r.NextWord("saddr or daddr");
                        if (which is not ("saddr" or "daddr"))
                        {
                            throw r.Error($"unsupported fib key '{which}' (saddr or daddr)");
                        }
                        r.Expect("type");
                        bool neg = ParseOp(r);
                        string type = r.NextWord("an address type");
                        if (type != "local")
                        {
                            throw r.Error($"unsupported fib address type '{type}' (only local)");
                        }
                        items.Add(new FibItem(which == "daddr", neg));
                        break;
                    }
                case "update":
                case "add" when r.Peek(1) is { Kind: TokenKind.Word } n && n.Text.StartsWith('@'):
                    {
                        r.Next("update");
                        string set = SetName(r, r.NextWord("@SET"));
                        r.Expect(TokenKind.LBrace, "'{'");
                        var keys = new List<Selector> { ParseSelector(r, items, ref l4Known) ?? throw r.Error("expected a packet field in the set update") };
                        while (r.TryConsume("."))
                        {
                            keys.Add(ParseSelector(r, items, ref l4Known) ?? throw r.Error("expected a packet field after '.'"));
                        }
                        r.Expect(TokenKind.RBrace, "'}'");
                        items.Add(new SetUpdateItem(set, keys));
                        break;
                    }
                case "dnat":
                    items.Add(ParseDnat(r, l4Known));
                    break;
                case "masquerade":
                    r.Next("masquerade");
                    while (r.TryConsume("fully-random") || r.TryConsume("random") || r.TryConsume("persistent"))
                    {
                    }
                    items.Add(new MasqueradeItem());
                    break;
                case "accept":
                case "drop":
                case "return":
                case "continue":
                    r.Next("verdict");
                    items.Add(new VerdictItem(new NftVerdict(Enum.Parse<NftVerdictKind>(t.Text, ignoreCase: true))));
                    terminal = true;
                    break;
                case "reject":
                    r.Next("reject");
                    if (r.TryConsume("with"))
                    {
                        ParseRejectWith(r);
                    }
                    items.Add(new VerdictItem(new NftVerdict(NftVerdictKind.Reject)));
                    terminal = true;
                    break;
                case "jump":
                case "goto":
                    r.Next("verdict");
                    items.Add(new VerdictItem(new NftVerdict(t.Text == "jump" ? NftVerdictKind.Jump : NftVerdictKind.Goto, ChainName(r, r.NextWord("a chain name")))));
                    terminal = true;
                    break;
                case "meta" when r.PeekIs("mark", 1) && r.PeekIs("set", 2):
                    r.Next("meta");
                    r.Next("mark");
                    items.Add(ParseMarkSet(r));
                    break;
                case "mark" when r.PeekIs("set", 1):
                    r.Next("mark");
                    items.Add(ParseMarkSet(r));
                    break;
                default:
                    {
                        var selector = ParseSelector(r, items, ref l4Known) ?? throw r.Error($"unknown or unsupported syntax '{t.Text}'");
                        var item = ParseAfterSelector(r, selector, items, ref l4Known);
                        items.Add(item);
                        if (item is VmapItem)
                        {
                            terminal = true;
                        }
                        break;
                    }
            }
        }
        int end = r.Position;
        if (items.Count == 0)
        {
            throw r.Error("empty rule");
        }
        return (items, NftLexer.Join(r.Range(start, end)), comment);
    }

    private static CtStateItem ParseCtState(TokenReader r)
    {
        bool neg = ParseOp(r);
        var states = new HashSet<string>(StringComparer.Ordinal);
        bool braced = r.TryConsume(TokenKind.LBrace);
        do
        {
            string s = r.NextWord("a conntrack state");
            if (!s_ctStates.Contains(s))
            {
                throw r.Error($"unknown ct state '{s}' (new, established, related, invalid, untracked)");
            }
            states.Add(s);
        }
        while (r.TryConsume(TokenKind.Comma));
        if (braced)
        {
            r.Expect(TokenKind.RBrace, "'}'");
        }
        return new CtStateItem(neg, states);
    }

    private static void ParseRejectWith(TokenReader r)
    {
        string kind = r.NextWord("icmp, icmpx or tcp after 'reject with'");
        switch (kind)
        {
            case "tcp":
                r.Expect("reset");
                return;
            case "icmp":
            case "icmpx":
            case "icmpv6":
                r.TryConsume("type");
                string code = r.NextWord("an ICMP reject type");
                if (code is not ("port-unreachable" or "host-unreachable" or "net-unreachable" or "prot-unreachable" or "admin-prohibited" or "no-route" or "addr-unreachable" or "host-prohibited" or "net-prohibited"))
                {
                    throw r.Error($"unknown reject type '{code}'");
                }
                return;
            default:
                throw r.Error($"unsupported 'reject with {kind}'");
        }
    }

    private static MarkSetItem ParseMarkSet(TokenReader r)
    {
        r.Expect("set");
        if (r.PeekIs("meta") || r.PeekIs("mark"))
        {
            if (r.TryConsume("meta"))
            {
                r.Expect("mark");
            }
            else
            {
                r.Next("mark");
            }
            string op = r.NextWord("|, ^ or &");
            char c = op switch
            {
                "|" or "or" => '|',
                "^" or "xor" => '^',
                "&" or "and" => '&',
                _ => throw r.Error($"unsupported mark operator '{op}' (|, ^, &)"),
            };
            return new MarkSetItem(c, NftValues.ParseNumber(r.NextWord("a mark value"), r, "mark"));
        }
        return new MarkSetItem('=', NftValues.ParseNumber(r.NextWord("a mark value"), r, "mark"));
    }

    private static DnatItem ParseDnat(TokenReader r, bool l4Known)
    {
        r.Next("dnat");
        if (r.TryConsume("ip6"))
        {
            throw r.Error("dnat ip6 is not supported");
        }
        bool explicitFamily = r.TryConsume("ip");
        r.Expect("to");
        string target = r.NextWord("ADDR or ADDR:PORT");
        string addr = target;
        int? port = null;
        int colon = target.LastIndexOf(':');
        if (colon >= 0)
        {
            addr = target[..colon];
            if (!int.TryParse(target.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p is 0 or > 65535)
            {
                throw r.Error($"'{target}' has no valid port (1-65535)");
            }
            port = p;
        }
        if (!IPAddress.TryParse(addr, out var a) || a.AddressFamily != AddressFamily.InterNetwork || addr.Count(ch => ch == '.') != 3)
        {
            throw r.Error($"'{target}' is not an IPv4 dnat target");
        }
        if (port is not null && !l4Known)
        {
            // nft refuses this too: the port is a transport header field, so it needs a protocol first.
            throw r.Error("transport protocol mapping is only valid after transport protocol match (add 'meta l4proto tcp' before dnat)");
        }
        return new DnatItem(a, port, explicitFamily);
    }

    /// <summary>true for '!=', false for '==' or no operator.</summary>
    private static bool ParseOp(TokenReader r)
    {
        if (r.TryConsume("!="))
        {
            return true;
        }
        r.TryConsume("==");
        return false;
    }

    /// <summary>Parses a packet field; null (nothing consumed) if the next token does not start one.</summary>
    private static Selector? ParseSelector(TokenReader r, List<RuleItem> items, ref bool l4Known)
    {
        var t = r.Peek();
        if (t is not { Kind: TokenKind.Word } w)
        {
            return null;
        }
        switch (w.Text)
        {
            case "ip":
            case "ip6":
                {
                    r.Next("ip");
                    string f = r.NextWord("saddr or daddr");
                    bool v4 = w.Text == "ip";
                    return f switch
                    {
                        "saddr" => new Selector(v4 ? SelectorKind.IpSaddr : SelectorKind.Ip6Saddr, v4 ? NftDataType.Ipv4Addr : NftDataType.Ipv6Addr),
                        "daddr" => new Selector(v4 ? SelectorKind.IpDaddr : SelectorKind.Ip6Daddr, v4 ? NftDataType.Ipv4Addr : NftDataType.Ipv6Addr),
                        _ => throw r.Error($"unsupported '{w.Text} {f}' (saddr or daddr)"),
                    };
                }
            case "meta":
                {
                    r.Next("meta");
                    string f = r.NextWord("a meta key");
                    return f switch
                    {
                        "l4proto" => new Selector(SelectorKind.L4Proto, NftDataType.InetProto),
                        "nfproto" => new Selector(SelectorKind.NfProto, NftDataType.InetProto),
                        "mark" => new Selector(SelectorKind.Mark, NftDataType.Mark),
                        "iifname" => new Selector(SelectorKind.IifName, NftDataType.IfName),
                        "oifname" => new Selector(SelectorKind.OifName, NftDataType.IfName),
                        _ => throw r.Error($"unsupported 'meta {f}' (l4proto, nfproto, mark, iifname, oifname)"),
                    };
                }
            case "mark":
                r.Next("mark");
                return new Selector(SelectorKind.Mark, NftDataType.Mark);
            case "iifname":
                r.Next("iifname");
                return new Selector(SelectorKind.IifName, NftDataType.IfName);
            case "oifname":
                r.Next("oifname");
                return new Selector(SelectorKind.OifName, NftDataType.IfName);
            case "tcp":
            case "udp":
            case "sctp":
            case "th":
                {
                    if (!r.PeekIs("dport", 1) && !r.PeekIs("sport", 1))
                    {
                        return null;
                    }
                    r.Next("protocol");
                    string f = r.NextWord("dport or sport");
                    if (w.Text != "th")
                    {
                        // "tcp dport" is "meta l4proto tcp th dport" to nft.
                        items.Add(new MatchItem([new Selector(SelectorKind.L4Proto, NftDataType.InetProto)], false,
                            [[NftKeyPart.Point((UInt128)NftValues.ProtocolNumber(w.Text)!.Value)]], null));
                        l4Known = true;
                    }
                    return new Selector(f == "dport" ? SelectorKind.Dport : SelectorKind.Sport, NftDataType.InetService);
                }
            case "numgen":
                {
                    r.Next("numgen");
                    r.Expect("random");
                    r.Expect("mod");
                    string n = r.NextWord("a modulus");
                    if (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int mod) || mod is < 1 or > 65536)
                    {
                        throw r.Error($"numgen modulus '{n}' must be 1-65536");
                    }
                    return new Selector(SelectorKind.Numgen, NftDataType.Mark, mod);
                }
            default:
                return null;
        }
    }

    private static RuleItem ParseAfterSelector(TokenReader r, Selector first, List<RuleItem> items, ref bool l4Known)
    {
        var keys = new List<Selector> { first };
        while (r.TryConsume("."))
        {
            keys.Add(ParseSelector(r, items, ref l4Known) ?? throw r.Error("expected a packet field after '.'"));
        }
        if (r.TryConsume("vmap"))
        {
            if (r.PeekKind(TokenKind.LBrace))
            {
                r.Next("{");
                var entries = new List<VmapEntry>();
                do
                {
                    var key = ParseKey(r, keys);
                    r.Expect(TokenKind.Colon, "':' and a verdict");
                    entries.Add(new VmapEntry(key, ParseVerdict(r)));
                }
                while (r.TryConsume(TokenKind.Comma));
                r.Expect(TokenKind.RBrace, "'}'");
                return new VmapItem(keys, null, entries);
            }
            return new VmapItem(keys, SetName(r, r.NextWord("@MAP or { … }")), null);
        }
        uint? mask = null;
        if (keys is [{ Kind: SelectorKind.Mark }] && (r.PeekIs("&") || r.PeekIs("and")))
        {
            r.Next("&");
            mask = NftValues.ParseNumber(r.NextWord("a mask"), r, "mask");
        }
        bool neg = ParseOp(r);
        if (r.AtEnd)
        {
            throw r.Error("expected a value to compare with");
        }
        if (r.Peek() is { Kind: TokenKind.Word } at && at.Text.StartsWith('@'))
        {
            r.Next("@SET");
            return new MatchItem(keys, neg, null, SetName(r, at.Text), mask);
        }
        var values = new List<IReadOnlyList<NftKeyPart>>();
        if (r.TryConsume(TokenKind.LBrace))
        {
            do
            {
                values.Add(ParseKey(r, keys));
            }
            while (r.TryConsume(TokenKind.Comma));
            r.Expect(TokenKind.RBrace, "'}'");
        }
        else
        {
            values.Add(ParseKey(r, keys));
        }
        var item = new MatchItem(keys, neg, values, null, mask);
        if (keys is [{ Kind: SelectorKind.L4Proto }] && !neg && values.Count == 1)
        {
            l4Known = true;
        }
        return item;
    }

    /// <summary>One literal key: <c>v</c> or <c>v . v . v</c>, typed by the selectors.</summary>
    private static List<NftKeyPart> ParseKey(TokenReader r, List<Selector> keys)
    {
        var parts = new List<NftKeyPart>();
        for (int i = 0; i < keys.Count; i++)
        {
            if (i > 0)
            {
                r.Expect(".");
            }
            parts.Add(ParseValue(r, keys[i]));
        }
        return parts;
    }

    private static NftKeyPart ParseValue(TokenReader r, Selector s)
    {
        var t = r.Next("a value");
        if (s.Kind == SelectorKind.NfProto)
        {
            return t.Text switch
            {
                "ipv4" => NftKeyPart.Point(2),
                "ipv6" => NftKeyPart.Point(10),
                _ => throw r.Error($"'{t}' is not an nfproto (ipv4 or ipv6)"),
            };
        }
        if (s.Kind == SelectorKind.Numgen)
        {
            if (t.Kind == TokenKind.Word && t.Text.Contains('-', StringComparison.Ordinal))
            {
                var parts = t.Text.Split('-');
                return new NftKeyPart(NftValues.ParseNumber(parts[0], r, "number"), NftValues.ParseNumber(parts[^1], r, "number"));
            }
            return NftKeyPart.Point(NftValues.ParseNumber(t.Text, r, "number"));
        }
        return NftValues.Parse(t, s.Type, r);
    }

    internal static NftVerdict ParseVerdict(TokenReader r)
    {
        string v = r.NextWord("a verdict");
        return v switch
        {
            "accept" => new NftVerdict(NftVerdictKind.Accept),
            "drop" => new NftVerdict(NftVerdictKind.Drop),
            "return" => new NftVerdict(NftVerdictKind.Return),
            "continue" => new NftVerdict(NftVerdictKind.Continue),
            "jump" => new NftVerdict(NftVerdictKind.Jump, ChainName(r, r.NextWord("a chain name"))),
            "goto" => new NftVerdict(NftVerdictKind.Goto, ChainName(r, r.NextWord("a chain name"))),
            _ => throw r.Error($"'{v}' is not a verdict (accept, drop, return, continue, jump C, goto C)"),
        };
    }

    private static string SetName(TokenReader r, string at)
    {
        if (at.Length < 2 || at[0] != '@')
        {
            throw r.Error($"expected @SET, found '{at}'");
        }
        return CheckName(r, at[1..], "set");
    }

    internal static string ChainName(TokenReader r, string name) => CheckName(r, name, "chain");

    internal static string CheckName(TokenReader r, string name, string what)
    {
        // README: [A-Za-z_.][A-Za-z0-9_./-]*; nft itself allows a little more, but the compilers emit only this.
        bool ok = name.Length is > 0 and <= 256 && (char.IsAsciiLetter(name[0]) || name[0] is '_' or '.') &&
            name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '/' or '-');
        return ok ? name : throw r.Error($"'{name}' is not a valid {what} name");
    }
}
