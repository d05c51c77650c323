using System.Globalization;
using System.Text;

namespace Trellis.Core.Nft;

/// <summary>
/// An in-memory nf_tables: applies <c>nft -f</c> transactions the way the kernel would — atomically (a failing
/// statement discards the whole transaction), refusing what the kernel refuses (missing objects, objects in use,
/// NAT outside NAT chains, chain loops) — so compiled rulesets can be checked and traced without root.
/// Not thread-safe for concurrent <see cref="Apply"/>; readers see whole transactions only, because a transaction
/// works on a copy and swaps it in.
/// </summary>
public sealed class NftModel
{
    private SortedDictionary<(NftFamily, string), NftTable> _tables = new();

    public IReadOnlyCollection<NftTable> Tables => _tables.Values;

    public NftTable? FindTable(NftFamily family, string name) => _tables.GetValueOrDefault((family, name));

    public void Apply(string transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        var statements = NftLexer.Split(transaction);
        var work = new SortedDictionary<(NftFamily, string), NftTable>(_tables.ToDictionary(kv => kv.Key, kv => kv.Value.Clone()));
        foreach (var st in statements)
        {
            ApplyOne(work, st);
        }
        Validate(work);
        _tables = work;
    }

    /// <summary>
    /// The whole state as a transaction that recreates it (replayable: <c>Apply(Dump())</c> on an empty model gives
    /// the same Dump). Canonical: tables by family and name; per table chains, sets, elements (sorted), then rules
    /// in chain order — so two models with the same content dump the same text however they got there.
    /// </summary>
    public string Dump()
    {
        var sb = new StringBuilder();
        foreach (var t in _tables.Values)
        {
            string q = t.QualifiedName;
            sb.Append("add table ").Append(q);
            if (t.Comment is not null)
            {
                sb.Append(" { comment \"").Append(t.Comment).Append("\" ; }");
            }
            sb.Append('\n');
            foreach (var c in t.ChainMap.Values)
            {
                sb.Append("add chain ").Append(q).Append(' ').Append(c.Name);
                var decl = new List<string>();
                if (c.Base is { } b)
                {
                    decl.Add(b.Declaration);
                }
                if (c.Comment is not null)
                {
                    decl.Add("comment \"" + c.Comment + "\" ;");
                }
                if (decl.Count > 0)
                {
                    sb.Append(" { ").Append(string.Join(' ', decl)).Append(" }");
                }
                sb.Append('\n');
            }
            foreach (var s in t.SetMap.Values)
            {
                sb.Append(s.IsMap ? "add map " : "add set ").Append(q).Append(' ').Append(s.Name).Append(' ').Append(s.Declaration).Append('\n');
            }
            foreach (var s in t.SetMap.Values.Where(s => s.ElementMap.Count > 0))
            {
                sb.Append("add element ").Append(q).Append(' ').Append(s.Name).Append(" { ")
                  .Append(string.Join(", ", s.Elements.Select(s.FormatElement))).Append(" }\n");
            }
            foreach (var c in t.ChainMap.Values)
            {
                foreach (var r in c.Rules)
                {
                    sb.Append("add rule ").Append(q).Append(' ').Append(c.Name).Append(' ').Append(r.Text).Append('\n');
                }
            }
        }
        return sb.ToString();
    }

    private static NftApplyException Fail(NftErrorKind kind, NftStatement st, string reason) => new(kind, st.Line, st.Text, reason);

    private static void ApplyOne(SortedDictionary<(NftFamily, string), NftTable> tables, NftStatement st)
    {
        var r = new TokenReader(st);
        string verb = r.NextWord("a command");
        if (verb is not ("add" or "create" or "insert" or "delete" or "flush"))
        {
            throw r.Error($"unknown command '{verb}' (add, create, insert, delete, flush)");
        }
        string obj = r.NextWord("table, chain, set, map, element or rule");
        if (obj == "ruleset" && verb == "flush")
        {
            EndOf(r);
            tables.Clear();
            return;
        }
        if (obj is not ("table" or "chain" or "set" or "map" or "element" or "rule"))
        {
            throw r.Error($"unknown object '{obj}' (table, chain, set, map, element, rule)");
        }
        if (verb == "insert" && obj != "rule")
        {
            throw r.Error("insert applies only to rules");
        }
        if (verb == "flush" && obj is "element" or "rule")
        {
            throw r.Error($"flush {obj} is not a command (flush chain or flush set)");
        }
        var family = NftFamily.Ip;
        if (r.Peek() is { Kind: TokenKind.Word } f)
        {
            switch (f.Text)
            {
                case "ip":
                    r.Next("family");
                    break;
                case "inet":
                    r.Next("family");
                    family = NftFamily.Inet;
                    break;
                case "ip6" or "arp" or "bridge" or "netdev":
                    throw r.Error($"family '{f.Text}' is not supported (ip, inet)");
            }
        }
        string tableName = NftRuleParser.CheckName(r, r.NextWord("a table name"), "table");
        var key = (family, tableName);
        if (obj == "table")
        {
            TableCommand(tables, st, r, verb, key);
            return;
        }
        if (!tables.TryGetValue(key, out var table))
        {
            throw Fail(NftErrorKind.NotFound, st, $"table {NftTable.FamilyName(family)} {tableName} does not exist");
        }
        switch (obj)
        {
            case "chain":
                ChainCommand(table, st, r, verb);
                break;
            case "set":
            case "map":
                SetCommand(table, st, r, verb, obj == "map");
                break;
            case "element":
                ElementCommand(table, st, r, verb);
                break;
            default:
                RuleCommand(table, st, r, verb);
                break;
        }
    }

    private static void EndOf(TokenReader r)
    {
        if (!r.AtEnd)
        {
            throw r.Error($"unexpected '{r.Peek()}'");
        }
    }

    private static void TableCommand(SortedDictionary<(NftFamily, string), NftTable> tables, NftStatement st, TokenReader r, string verb, (NftFamily Family, string Name) key)
    {
        string? comment = null;
        if (verb is "add" or "create" && r.TryConsume(TokenKind.LBrace))
        {
            ParseBlock(r, (word) =>
            {
                if (word == "comment")
                {
                    comment = ReadString(r, "comment");
                    return true;
                }
                return false;
            });
        }
        EndOf(r);
        bool exists = tables.TryGetValue(key, out var table);
        switch (verb)
        {
            case "add":
            case "create":
                if (exists)
                {
                    if (verb == "create")
                    {
                        throw Fail(NftErrorKind.Exists, st, $"table {table!.QualifiedName} already exists");
                    }
                    table!.Comment = comment ?? table.Comment;
                    return;
                }
                tables[key] = new NftTable(key.Family, key.Name, comment);
                return;
            case "delete":
                if (!exists)
                {
                    throw Fail(NftErrorKind.NotFound, st, $"table {NftTable.FamilyName(key.Family)} {key.Name} does not exist");
                }
                tables.Remove(key);
                return;
            default: // flush: rules go, sets keep their elements (as nft does)
                if (!exists)
                {
                    throw Fail(NftErrorKind.NotFound, st, $"table {NftTable.FamilyName(key.Family)} {key.Name} does not exist");
                }
                foreach (var c in table!.ChainMap.Values)
                {
                    ClearRules(table, c);
                }
                return;
        }
    }

    /// <summary>Parses <c>{ item ; item ; }</c> after the '{'; <paramref name="item"/> consumes one item given its first word.</summary>
    private static void ParseBlock(TokenReader r, Func<string, bool> item)
    {
        while (!r.TryConsume(TokenKind.RBrace))
        {
            if (r.TryConsume(TokenKind.Semicolon))
            {
                continue;
            }
            string word = r.NextWord("a declaration");
            if (!item(word))
            {
                throw r.Error($"unknown or unsupported declaration '{word}'");
            }
            if (!r.PeekKind(TokenKind.RBrace))
            {
                r.Expect(TokenKind.Semicolon, "';'");
            }
        }
    }

    private static string ReadString(TokenReader r, string what)
    {
        var t = r.Next($"a quoted {what}");
        return t.Kind == TokenKind.String ? t.Text : throw r.Error($"{what} must be a quoted string");
    }

    private static readonly Dictionary<string, int> s_priorities = new(StringComparer.Ordinal)
    {
        ["raw"] = -300, ["mangle"] = -150, ["dstnat"] = -100, ["filter"] = 0, ["security"] = 50, ["srcnat"] = 100,
    };

    private static int ParsePriority(TokenReader r)
    {
        string p = r.NextWord("a priority");
        if (int.TryParse(p, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n))
        {
            return n;
        }
        if (!s_priorities.TryGetValue(p, out n))
        {
            throw r.Error($"'{p}' is not a priority (a number or raw, mangle, dstnat, filter, security, srcnat)");
        }
        if (r.PeekIs("+") || r.PeekIs("-"))
        {
            bool minus = r.NextWord("+ or -") == "-";
            string d = r.NextWord("a priority offset");
            if (!int.TryParse(d, NumberStyles.None, CultureInfo.InvariantCulture, out int off))
            {
                throw r.Error($"'{d}' is not a priority offset");
            }
            n += minus ? -off : off;
        }
        return n;
    }

    private static void ChainCommand(NftTable table, NftStatement st, TokenReader r, string verb)
    {
        string name = NftRuleParser.ChainName(r, r.NextWord("a chain name"));
        NftBaseChain? baseSpec = null;
        NftVerdictKind? policy = null;
        string? comment = null;
        if (verb is "add" or "create" && r.TryConsume(TokenKind.LBrace))
        {
            ParseBlock(r, word =>
            {
                switch (word)
                {
                    case "type":
                        {
                            string type = r.NextWord("filter or nat");
                            var ct = type switch
                            {
                                "filter" => NftChainType.Filter,
                                "nat" => NftChainType.Nat,
                                _ => throw r.Error($"unsupported chain type '{type}' (filter, nat)"),
                            };
                            r.Expect("hook");
                            string hook = r.NextWord("a hook");
                            var h = hook switch
                            {
                                "prerouting" => NftHook.Prerouting,
                                "input" => NftHook.Input,
                                "forward" => NftHook.Forward,
                                "output" => NftHook.Output,
                                "postrouting" => NftHook.Postrouting,
                                _ => throw r.Error($"unsupported hook '{hook}' (prerouting, input, forward, output, postrouting)"),
                            };
                            r.Expect("priority");
                            int prio = ParsePriority(r);
                            if (ct == NftChainType.Nat && h == NftHook.Forward)
                            {
                                throw Fail(NftErrorKind.Invalid, st, "a nat chain cannot hook forward");
                            }
                            baseSpec = new NftBaseChain(ct, h, prio, NftVerdictKind.Accept);
                            return true;
                        }
                    case "policy":
                        {
                            string p = r.NextWord("accept or drop");
                            policy = p switch
                            {
                                "accept" => NftVerdictKind.Accept,
                                "drop" => NftVerdictKind.Drop,
                                _ => throw r.Error($"'{p}' is not a chain policy (accept, drop)"),
                            };
                            return true;
                        }
                    case "comment":
                        comment = ReadString(r, "comment");
                        return true;
                    default:
                        return false;
                }
            });
            if (policy is not null)
            {
                if (baseSpec is null)
                {
                    throw r.Error("a policy needs a base chain (type … hook … priority …)");
                }
                baseSpec = baseSpec with { Policy = policy.Value };
            }
        }
        EndOf(r);
        bool exists = table.ChainMap.TryGetValue(name, out var chain);
        switch (verb)
        {
            case "add":
            case "create":
                if (!exists)
                {
                    table.ChainMap[name] = new NftChain(name, baseSpec, comment);
                    return;
                }
                if (verb == "create")
                {
                    throw Fail(NftErrorKind.Exists, st, $"chain {name} already exists");
                }
                if (baseSpec is not null)
                {
                    if (chain!.Base is null)
                    {
                        throw Fail(NftErrorKind.Exists, st, $"chain {name} exists as a regular chain; it cannot become a base chain");
                    }
                    if (chain.Base with { Policy = baseSpec.Policy } != baseSpec)
                    {
                        throw Fail(NftErrorKind.Invalid, st, $"chain {name} exists with a different type, hook or priority ({chain.Base.Declaration})");
                    }
                    // The kernel lets "add chain" update the policy of an existing base chain.
                    chain.Base = baseSpec;
                }
                chain!.Comment = comment ?? chain.Comment;
                return;
            case "delete":
                {
                    if (!exists)
                    {
                        throw Fail(NftErrorKind.NotFound, st, $"chain {name} does not exist in table {table.QualifiedName}");
                    }
                    // Its own rules' jumps to itself go with it; any other use keeps it.
                    int self = chain!.Rules.Sum(ru => ru.Verdicts().Count(v => v.Chain == name));
                    if (table.ChainUses.GetValueOrDefault(name) > self)
                    {
                        string by = ReferencesTo(table, name, ignoreChain: name).FirstOrDefault() ?? "referenced";
                        throw Fail(NftErrorKind.Busy, st, $"chain {name} is in use ({by})");
                    }
                    ClearRules(table, chain);
                    table.ChainMap.Remove(name);
                    return;
                }
            default:
                if (!exists)
                {
                    throw Fail(NftErrorKind.NotFound, st, $"chain {name} does not exist in table {table.QualifiedName}");
                }
                ClearRules(table, chain!);
                return;
        }
    }

    private static void ClearRules(NftTable table, NftChain chain)
    {
        foreach (var rule in chain.Rules)
        {
            table.CountRule(rule, -1);
        }
        chain.RuleList.Clear();
    }

    /// <summary>Where a chain is jumped to (rules and map elements), as nft's use count sees it.</summary>
    private static IEnumerable<string> ReferencesTo(NftTable table, string chain, string? ignoreChain)
    {
        foreach (var c in table.ChainMap.Values.Where(c => c.Name != ignoreChain))
        {
            foreach (var rule in c.Rules)
            {
                if (rule.Verdicts().Any(v => v.Chain == chain))
                {
                    yield return $"referenced by a rule in chain {c.Name}: {rule.Text}";
                }
            }
        }
        foreach (var s in table.SetMap.Values.Where(s => s.IsMap))
        {
            if (s.Elements.FirstOrDefault(e => e.Verdict?.Chain == chain) is { } e)
            {
                yield return $"referenced by an element of map {s.Name}: {s.FormatElement(e)}";
            }
        }
    }

    private static void SetCommand(NftTable table, NftStatement st, TokenReader r, string verb, bool isMap)
    {
        string kind = isMap ? "map" : "set";
        string name = NftRuleParser.CheckName(r, r.NextWord($"a {kind} name"), kind);
        bool exists = table.SetMap.TryGetValue(name, out var set);
        if (exists && set!.IsMap != isMap)
        {
            throw Fail(NftErrorKind.Exists, st, $"{name} exists as a {(set.IsMap ? "map" : "set")}");
        }
        if (verb is "delete" or "flush")
        {
            EndOf(r);
            if (!exists)
            {
                throw Fail(NftErrorKind.NotFound, st, $"{kind} {name} does not exist in table {table.QualifiedName}");
            }
            if (table.SetUses.GetValueOrDefault(name) > 0 && verb == "delete")
            {
                foreach (var c in table.ChainMap.Values)
                {
                    if (c.Rules.FirstOrDefault(ru => ru.SetReferences().Contains(name)) is { } user)
                    {
                        throw Fail(NftErrorKind.Busy, st, $"{kind} {name} is in use by a rule in chain {c.Name}: {user.Text}");
                    }
                }
            }
            foreach (var e in set!.Elements)
            {
                table.CountElement(e, -1);
            }
            set.ElementMap.Clear();
            if (verb == "delete")
            {
                table.SetMap.Remove(name);
            }
            return;
        }
        if (!r.TryConsume(TokenKind.LBrace))
        {
            throw r.Error($"a {kind} declaration needs {{ type … ; }}");
        }
        List<NftDataType>? types = null;
        bool interval = false, dynamic = false, timeoutFlag = false;
        string? timeout = null, comment = null;
        ParseBlock(r, word =>
        {
            switch (word)
            {
                case "type":
                    types = [];
                    do
                    {
                        string t = r.NextWord("a data type");
                        if (!NftValues.TryParseType(t, out var dt))
                        {
                            throw r.Error($"unsupported data type '{t}' (ipv4_addr, ipv6_addr, inet_proto, inet_service, ifname, mark)");
                        }
                        types.Add(dt);
                    }
                    while (r.TryConsume("."));
                    if (isMap)
                    {
                        r.Expect(TokenKind.Colon, "': verdict'");
                        string data = r.NextWord("verdict");
                        if (data != "verdict")
                        {
                            throw r.Error($"unsupported map data type '{data}' (only verdict maps)");
                        }
                    }
                    else if (r.PeekKind(TokenKind.Colon))
                    {
                        throw r.Error("a set has no data type; use 'add map' for a verdict map");
                    }
                    return true;
                case "flags":
                    do
                    {
                        string fl = r.NextWord("a set flag");
                        switch (fl)
                        {
                            case "interval": interval = true; break;
                            case "dynamic": dynamic = true; break;
                            case "timeout": timeoutFlag = true; break;
                            case "constant": break;
                            default: throw r.Error($"unsupported set flag '{fl}' (interval, dynamic, timeout, constant)");
                        }
                    }
                    while (r.TryConsume(TokenKind.Comma));
                    return true;
                case "timeout":
                    timeout = r.NextWord("a timeout");
                    if (!IsDuration(timeout))
                    {
                        throw r.Error($"'{timeout}' is not a timeout (e.g. 10800s, 3h)");
                    }
                    return true;
                case "comment":
                    comment = ReadString(r, "comment");
                    return true;
                case "size":
                    if (!uint.TryParse(r.NextWord("a size"), NumberStyles.None, CultureInfo.InvariantCulture, out _))
                    {
                        throw r.Error("size must be a number");
                    }
                    return true;
                case "policy":
                    string pol = r.NextWord("performance or memory");
                    return pol is "performance" or "memory" ? true : throw r.Error($"unknown set policy '{pol}'");
                default:
                    return false;
            }
        });
        EndOf(r);
        if (types is null)
        {
            throw r.Error($"{kind} {name} needs a 'type'");
        }
        if (interval && types.Contains(NftDataType.IfName))
        {
            throw r.Error("an interval set cannot hold interface names");
        }
        var fresh = new NftSet(name, isMap, types, interval, dynamic, timeoutFlag, timeout, comment);
        if (exists)
        {
            if (verb == "create" || !set!.SameDefinition(fresh))
            {
                throw Fail(NftErrorKind.Exists, st, verb == "create" ? $"{kind} {name} already exists" : $"{kind} {name} exists with a different definition ({set!.Declaration})");
            }
            return;
        }
        table.SetMap[name] = fresh;
    }

    private static bool IsDuration(string s)
    {
        // nft durations: 10800s, 3h, 1d2h, 500ms.
        int i = 0;
        bool any = false;
        while (i < s.Length)
        {
            int d = i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }
            int u = i;
            while (i < s.Length && char.IsAsciiLetter(s[i]))
            {
                i++;
            }
            if (d == u || !(s[u..i] is "ms" or "s" or "m" or "h" or "d"))
            {
                return false;
            }
            any = true;
        }
        return any;
    }

    private static void ElementCommand(NftTable table, NftStatement st, TokenReader r, string verb)
    {
        string name = NftRuleParser.CheckName(r, r.NextWord("a set or map name"), "set");
        if (!table.SetMap.TryGetValue(name, out var set))
        {
            throw Fail(NftErrorKind.NotFound, st, $"set or map {name} does not exist in table {table.QualifiedName}");
        }
        r.Expect(TokenKind.LBrace, "'{'");
        var elements = new List<NftElement>();
        if (!r.PeekKind(TokenKind.RBrace))
        {
            do
            {
                var key = new List<NftKeyPart>();
                for (int i = 0; i < set.KeyTypes.Count; i++)
                {
                    if (i > 0)
                    {
                        r.Expect(".");
                    }
                    var part = NftValues.Parse(r.Next("an element"), set.KeyTypes[i], r);
                    if (!set.IsInterval && !part.IsSingle)
                    {
                        throw r.Error($"{set.Name} is not an interval set: add 'flags interval' to its declaration to hold prefixes or ranges");
                    }
                    key.Add(part);
                }
                NftVerdict? verdict = null;
                if (r.TryConsume(TokenKind.Colon))
                {
                    if (!set.IsMap)
                    {
                        throw r.Error($"{set.Name} is a set: its elements have no ': verdict'");
                    }
                    verdict = NftRuleParser.ParseVerdict(r);
                }
                else if (set.IsMap && verb != "delete")
                {
                    throw r.Error($"{set.Name} is a verdict map: each element needs ': verdict'");
                }
                elements.Add(new NftElement(key, verdict));
            }
            while (r.TryConsume(TokenKind.Comma));
        }
        r.Expect(TokenKind.RBrace, "'}'");
        EndOf(r);
        foreach (var e in elements)
        {
            bool exists = set.ElementMap.TryGetValue(e.Key, out var old);
            string text = set.FormatElement(e);
            if (verb == "delete")
            {
                if (!exists)
                {
                    throw Fail(NftErrorKind.NotFound, st, $"element {text} does not exist in {set.Name}");
                }
                table.CountElement(old!, -1);
                set.ElementMap.Remove(e.Key);
                continue;
            }
            if (exists)
            {
                if (verb == "create" || old!.Verdict != e.Verdict)
                {
                    throw Fail(NftErrorKind.Exists, st, $"element {set.FormatElement(old!)} already exists in {set.Name}");
                }
                continue;
            }
            if (set.IsInterval && set.Elements.FirstOrDefault(o => o.Key.Select((p, i) => p.Overlaps(e.Key[i])).All(x => x)) is { } clash)
            {
                throw Fail(NftErrorKind.Exists, st, $"element {text} overlaps {set.FormatElement(clash)} in {set.Name}");
            }
            if (e.Verdict is { Chain: { } target })
            {
                CheckJumpTarget(table, st, target);
            }
            set.ElementMap[e.Key] = e;
            table.CountElement(e, +1);
        }
    }

    private static void CheckJumpTarget(NftTable table, NftStatement st, string target)
    {
        if (!table.ChainMap.TryGetValue(target, out var chain))
        {
            throw Fail(NftErrorKind.NotFound, st, $"chain {target} does not exist in table {table.QualifiedName}");
        }
        if (chain.Base is not null)
        {
            throw Fail(NftErrorKind.Invalid, st, $"cannot jump or goto base chain {target}");
        }
    }

    private static void RuleCommand(NftTable table, NftStatement st, TokenReader r, string verb)
    {
        string chainName = NftRuleParser.ChainName(r, r.NextWord("a chain name"));
        if (!table.ChainMap.TryGetValue(chainName, out var chain))
        {
            throw Fail(NftErrorKind.NotFound, st, $"chain {chainName} does not exist in table {table.QualifiedName}");
        }
        if (verb == "delete")
        {
            r.Expect("handle");
            string h = r.NextWord("a rule handle");
            EndOf(r);
            if (!long.TryParse(h, NumberStyles.None, CultureInfo.InvariantCulture, out long handle))
            {
                throw r.Error($"'{h}' is not a rule handle");
            }
            int idx = chain.RuleList.FindIndex(x => x.Handle == handle);
            if (idx < 0)
            {
                throw Fail(NftErrorKind.NotFound, st, $"rule handle {handle} does not exist in chain {chainName}");
            }
            table.CountRule(chain.RuleList[idx], -1);
            chain.RuleList.RemoveAt(idx);
            return;
        }
        var (items, text, comment) = NftRuleParser.Parse(r);
        foreach (var item in items)
        {
            CheckItem(table, st, item);
        }
        var rule = new NftRule(table.NextHandle++, text, comment, items, st.Line);
        table.CountRule(rule, +1);
        if (verb == "insert")
        {
            chain.RuleList.Insert(0, rule);
        }
        else
        {
            chain.RuleList.Add(rule);
        }
    }

    private static void CheckItem(NftTable table, NftStatement st, RuleItem item)
    {
        IReadOnlyList<Selector> keys = item switch
        {
            MatchItem m => m.Keys,
            VmapItem v => v.Keys,
            SetUpdateItem u => u.Keys,
            _ => [],
        };
        if (table.Family == NftFamily.Ip && keys.Any(k => k.IpVersion == 6))
        {
            throw Fail(NftErrorKind.Invalid, st, "ip6 matches are not possible in an ip table");
        }
        if (table.Family == NftFamily.Ip && keys.Any(k => k.Kind == SelectorKind.NfProto))
        {
            throw Fail(NftErrorKind.Invalid, st, "meta nfproto is only useful in the inet family");
        }
        switch (item)
        {
            case DnatItem { ExplicitFamily: false } when table.Family == NftFamily.Inet:
                throw Fail(NftErrorKind.Invalid, st, "dnat in an inet table must name the family: dnat ip to ADDR");
            case VerdictItem { Verdict.Chain: { } target }:
                CheckJumpTarget(table, st, target);
                break;
            case VmapItem { Entries: { } entries }:
                foreach (var e in entries.Where(e => e.Verdict.Chain is not null))
                {
                    CheckJumpTarget(table, st, e.Verdict.Chain!);
                }
                break;
        }
        string? setName = item switch
        {
            MatchItem m => m.SetName,
            VmapItem v => v.MapName,
            SetUpdateItem u => u.SetName,
            _ => null,
        };
        if (setName is null)
        {
            return;
        }
        if (!table.SetMap.TryGetValue(setName, out var set))
        {
            throw Fail(NftErrorKind.NotFound, st, $"set or map {setName} does not exist in table {table.QualifiedName}");
        }
        // A map's keys can be tested for membership like a set's (nft allows "ip daddr @map"), not the reverse.
        if (item is VmapItem && !set.IsMap)
        {
            throw Fail(NftErrorKind.Invalid, st, $"{setName} is a set, not a verdict map");
        }
        var wanted = keys.Select(k => k.Type).ToList();
        if (keys.Any(k => k.Kind is SelectorKind.NfProto or SelectorKind.Numgen) || !wanted.SequenceEqual(set.KeyTypes))
        {
            throw Fail(NftErrorKind.Invalid, st,
                $"datatype mismatch: {setName} holds {string.Join(" . ", set.KeyTypes.Select(NftValues.TypeName))}, the rule looks up {string.Join(" . ", wanted.Select(NftValues.TypeName))}");
        }
    }

    /// <summary>
    /// The checks the kernel makes when a transaction commits: every chain reachable from a base chain must not
    /// loop back (ELOOP) and may use only statements valid at that hook (NAT in nat chains at the right hooks,
    /// reject only where a reply can be routed).
    /// </summary>
    private static void Validate(SortedDictionary<(NftFamily, string), NftTable> tables)
    {
        foreach (var table in tables.Values)
        {
            foreach (var b in table.ChainMap.Values.Where(c => c.Base is not null))
            {
                Walk(table, b.Base!, b, [b.Name], new HashSet<string>(StringComparer.Ordinal));
            }
        }
    }

    private static void Walk(NftTable table, NftBaseChain hook, NftChain chain, List<string> path, HashSet<string> done)
    {
        foreach (var rule in chain.Rules)
        {
            NftApplyException Bad(string why) => new(NftErrorKind.Invalid, rule.Line, $"add rule {table.QualifiedName} {chain.Name} {rule.Text}", why);
            foreach (var item in rule.Items)
            {
                switch (item)
                {
                    case DnatItem when hook.Type != NftChainType.Nat || hook.Hook is not (NftHook.Prerouting or NftHook.Output):
                        throw Bad($"dnat is only valid in nat chains at prerouting or output (reached from {path[0]}, {Describe(hook)})");
                    case MasqueradeItem when hook.Type != NftChainType.Nat || hook.Hook != NftHook.Postrouting:
                        throw Bad($"masquerade is only valid in nat chains at postrouting (reached from {path[0]}, {Describe(hook)})");
                    case VerdictItem { Verdict.Kind: NftVerdictKind.Reject } when hook.Hook == NftHook.Postrouting:
                        throw Bad($"reject is not valid at postrouting (reached from {path[0]})");
                }
            }
            var targets = rule.Verdicts().Select(v => v.Chain).OfType<string>().ToList();
            foreach (var item in rule.Items.OfType<VmapItem>().Where(v => v.MapName is not null))
            {
                targets.AddRange(table.SetMap[item.MapName!].Elements.Select(e => e.Verdict?.Chain).OfType<string>());
            }
            foreach (var t in targets.Distinct())
            {
                if (path.Contains(t))
                {
                    throw Bad($"chain loop: {string.Join(" -> ", path)} -> {t}");
                }
                // A chain already walked from this base chain was found loop-free and valid for this hook.
                if (done.Contains(t))
                {
                    continue;
                }
                path.Add(t);
                Walk(table, hook, table.ChainMap[t], path, done);
                path.RemoveAt(path.Count - 1);
                done.Add(t);
            }
        }
    }

    private static string Describe(NftBaseChain b) => $"type {b.Type.ToString().ToLowerInvariant()} hook {b.Hook.ToString().ToLowerInvariant()}";
}
