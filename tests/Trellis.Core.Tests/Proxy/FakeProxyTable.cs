using System.Text;

namespace Trellis.Core.Tests.Proxy;

/// <summary>
/// A small in-memory nf_tables for the proxy's nft subset: applies transactions line by line with the kernel
/// checks that matter for ordering (a reference must exist when a rule or element names it; a referenced chain or
/// set cannot be deleted; an existing key with another verdict cannot be added; a missing element cannot be
/// deleted) — each measured with the real nft 1.0.6 on Linux 6.18. A failing line throws and, as a batch, leaves
/// the table unchanged.
/// </summary>
internal sealed class FakeProxyTable
{
    private const string Table = "ip trellis-proxy";

    private State _state = new();

    public void Apply(string transaction)
    {
        var next = _state.Clone();
        int lineNo = 0;
        foreach (var raw in transaction.Split('\n'))
        {
            lineNo++;
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            try
            {
                next.Apply(line);
            }
            catch (InvalidOperationException e)
            {
                throw new InvalidOperationException($"line {lineNo}: {e.Message}\n  {line}", e);
            }
        }
        _state = next;
    }

    /// <summary>Canonical text of the whole table: chains and sets by name, elements sorted.</summary>
    public string Dump()
    {
        var w = new StringBuilder();
        if (!_state.TableExists)
        {
            return "";
        }
        foreach (var (name, chain) in _state.Chains.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            w.Append("chain ").Append(name).Append(' ').Append(chain.Hook ?? "").Append('\n');
            foreach (var r in chain.Rules)
            {
                w.Append("  ").Append(r).Append('\n');
            }
        }
        foreach (var (name, set) in _state.Sets.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            w.Append(set.IsMap ? "map " : "set ").Append(name).Append(' ').Append(set.Declaration).Append('\n');
            foreach (var e in set.Elements.Values.Order(StringComparer.Ordinal))
            {
                w.Append("  ").Append(e).Append('\n');
            }
        }
        return w.ToString();
    }

    public IReadOnlyCollection<string> ChainNames => _state.Chains.Keys;

    public IReadOnlyCollection<string> SetNames => _state.Sets.Keys;

    public IReadOnlyList<string> Rules(string chain) => _state.Chains[chain].Rules;

    /// <summary>Adds an element as the packet path's <c>update @set</c> would (affinity state).</summary>
    public void Learn(string set, string element) => _state.Sets[set].Elements[element] = element;

    public IReadOnlyCollection<string> Elements(string set) => _state.Sets[set].Elements.Values;

    private sealed class ChainState
    {
        public string? Hook { get; set; }

        public List<string> Rules { get; } = [];
    }

    private sealed class SetState
    {
        public bool IsMap { get; init; }

        public required string Declaration { get; set; }

        public Dictionary<string, string> Elements { get; } = new(StringComparer.Ordinal);
    }

    private sealed class State
    {
        public bool TableExists { get; set; }

        public Dictionary<string, ChainState> Chains { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, SetState> Sets { get; } = new(StringComparer.Ordinal);

        public State Clone()
        {
            var s = new State { TableExists = TableExists };
            foreach (var (k, c) in Chains)
            {
                var copy = new ChainState { Hook = c.Hook };
                copy.Rules.AddRange(c.Rules);
                s.Chains[k] = copy;
            }
            foreach (var (k, v) in Sets)
            {
                var copy = new SetState { IsMap = v.IsMap, Declaration = v.Declaration };
                foreach (var (ek, ev) in v.Elements)
                {
                    copy.Elements[ek] = ev;
                }
                s.Sets[k] = copy;
            }
            return s;
        }

        public void Apply(string line)
        {
            if (line == "add table " + Table)
            {
                TableExists = true;
                return;
            }
            if (!TableExists)
            {
                throw new InvalidOperationException("No such file or directory (table)");
            }
            string[] verbs = ["add chain", "add set", "add map", "add element", "delete element", "flush chain", "flush set", "flush map", "delete chain", "delete set", "delete map", "add rule"];
            string verb = verbs.FirstOrDefault(v => line.StartsWith(v + " " + Table + " ", StringComparison.Ordinal))
                ?? throw new InvalidOperationException("not in the subset");
            string rest = line[(verb.Length + Table.Length + 2)..];
            int sp = rest.IndexOf(' ', StringComparison.Ordinal);
            string name = sp < 0 ? rest : rest[..sp];
            string body = sp < 0 ? "" : rest[(sp + 1)..];
            switch (verb)
            {
                case "add chain":
                    string? hook = body.Length == 0 ? null : body;
                    if (Chains.TryGetValue(name, out var existing))
                    {
                        if (existing.Hook != hook)
                        {
                            throw new InvalidOperationException("File exists (chain with another hook)");
                        }
                        return;
                    }
                    Chains[name] = new ChainState { Hook = hook };
                    return;
                case "add set" or "add map":
                    bool isMap = verb == "add map";
                    if (Sets.TryGetValue(name, out var set))
                    {
                        if (set.IsMap != isMap)
                        {
                            throw new InvalidOperationException("File exists (set vs map)");
                        }
                        if (set.Declaration != body)
                        {
                            // The kernel updates a dynamic set's timeout in place; any other change is refused.
                            if (!(set.Declaration.Contains("dynamic", StringComparison.Ordinal) && WithoutTimeout(set.Declaration) == WithoutTimeout(body)))
                            {
                                throw new InvalidOperationException("File exists (another declaration)");
                            }
                            set.Declaration = body;
                        }
                        return;
                    }
                    Sets[name] = new SetState { IsMap = isMap, Declaration = body };
                    return;
                case "add element":
                {
                    var s = GetSet(name);
                    foreach (var e in ElementList(body))
                    {
                        string key = KeyOf(e);
                        if (s.Elements.TryGetValue(key, out var old))
                        {
                            if (old != e)
                            {
                                throw new InvalidOperationException($"File exists (element {key})");
                            }
                            continue;
                        }
                        if (s.IsMap != e.Contains(" : ", StringComparison.Ordinal))
                        {
                            throw new InvalidOperationException("element kind does not match the set");
                        }
                        foreach (var target in VerdictTargets(e))
                        {
                            RequireChain(target);
                        }
                        s.Elements[key] = e;
                    }
                    return;
                }
                case "delete element":
                {
                    var s = GetSet(name);
                    foreach (var e in ElementList(body))
                    {
                        if (e.Contains(" : ", StringComparison.Ordinal))
                        {
                            throw new InvalidOperationException("delete element takes keys only");
                        }
                        if (!s.Elements.Remove(e))
                        {
                            throw new InvalidOperationException($"No such file or directory (element {e})");
                        }
                    }
                    return;
                }
                case "flush chain":
                    GetChain(name).Rules.Clear();
                    return;
                case "flush set" or "flush map":
                {
                    var s = GetSet(name);
                    if (s.IsMap != (verb == "flush map"))
                    {
                        throw new InvalidOperationException("No such file or directory (flush set on a map)");
                    }
                    s.Elements.Clear();
                    return;
                }
                case "delete chain":
                    GetChain(name);
                    if (ChainReferenced(name))
                    {
                        throw new InvalidOperationException("Device or resource busy (chain referenced)");
                    }
                    Chains.Remove(name);
                    return;
                case "delete set" or "delete map":
                    GetSet(name);
                    if (Chains.Values.Any(c => c.Rules.Any(r => SetRefs(r).Contains(name))))
                    {
                        throw new InvalidOperationException("Device or resource busy (set referenced)");
                    }
                    Sets.Remove(name);
                    return;
                case "add rule":
                {
                    var c = GetChain(name);
                    foreach (var target in VerdictTargets(body))
                    {
                        RequireChain(target);
                    }
                    foreach (var s in SetRefs(body))
                    {
                        GetSet(s);
                    }
                    c.Rules.Add(body);
                    return;
                }
                default:
                    throw new InvalidOperationException("unreachable");
            }
        }

        private bool ChainReferenced(string name) =>
            Chains.Values.Any(c => c.Rules.Any(r => VerdictTargets(r).Contains(name)))
            || Sets.Values.Any(s => s.Elements.Values.Any(e => VerdictTargets(e).Contains(name)));

        private ChainState GetChain(string name) =>
            Chains.TryGetValue(name, out var c) ? c : throw new InvalidOperationException($"No such file or directory (chain {name})");

        private SetState GetSet(string name) =>
            Sets.TryGetValue(name, out var s) ? s : throw new InvalidOperationException($"No such file or directory (set {name})");

        private void RequireChain(string name) => GetChain(name);
    }

    private static string WithoutTimeout(string declaration) =>
        System.Text.RegularExpressions.Regex.Replace(declaration, @"timeout \d+s ;", "");

    internal static string KeyOf(string element)
    {
        int i = element.IndexOf(" : ", StringComparison.Ordinal);
        return i < 0 ? element : element[..i];
    }

    private static List<string> ElementList(string body)
    {
        if (!body.StartsWith("{ ", StringComparison.Ordinal) || !body.EndsWith(" }", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("elements must be \"{ E, … }\"");
        }
        return [.. body[2..^2].Split(", ")];
    }

    /// <summary>Chains named by jump/goto anywhere in a rule or element (numgen vmaps included).</summary>
    internal static HashSet<string> VerdictTargets(string text)
    {
        var tokens = text.Replace(",", " ", StringComparison.Ordinal).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var result = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < tokens.Length; i++)
        {
            if (tokens[i] is "jump" or "goto")
            {
                result.Add(tokens[i + 1]);
            }
        }
        return result;
    }

    internal static HashSet<string> SetRefs(string text) =>
        [.. text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(t => t.Length > 1 && t[0] == '@').Select(t => t[1..])];
}
