using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Trellis.Core.Nft;

public enum TraceOrigin
{
    /// <summary>Arrives on an interface: from a pod, another node or outside (prerouting first).</summary>
    Forwarded,

    /// <summary>Sent by a process on this host (output first).</summary>
    Local,
}

public sealed record TracePacket(
    IPAddress Source,
    IPAddress Destination,
    string Protocol,
    int SourcePort,
    int DestinationPort,
    TraceOrigin Origin,
    string? InInterface = null,
    string? OutInterface = null,
    bool NewConnection = true);

public enum TraceVerdict
{
    Accept,
    Drop,
    Reject,
}

public enum TraceStepKind
{
    /// <summary>A chain was entered (a base chain at its hook, or a jump/goto target).</summary>
    Chain,

    /// <summary>A rule matched (all its matches held); its statements ran.</summary>
    Rule,

    /// <summary>A base chain ended without a verdict: its policy applied.</summary>
    Policy,

    /// <summary>The routing decision after prerouting.</summary>
    Route,

    /// <summary>A nat base chain not consulted (established connection, or NAT already bound at this hook).</summary>
    Skipped,
}

/// <summary>One step of a trace; <see cref="Table"/> is "ip trellis-proxy"; <see cref="Rule"/> is the rule text for Rule steps.</summary>
public sealed record TraceStep(TraceStepKind Kind, string Table, string Chain, string? Rule = null, string? Detail = null)
{
    public override string ToString() => Kind switch
    {
        TraceStepKind.Rule => $"  rule  {Table} {Chain}: {Rule}" + (Detail is null ? "" : $"  [{Detail}]"),
        TraceStepKind.Route => $"route {Detail}",
        _ => $"{Kind.ToString().ToLowerInvariant()} {Table} {Chain}" + (Detail is null ? "" : $" ({Detail})"),
    };
}

public sealed record TraceOutcome(
    TraceVerdict Verdict,
    IPAddress Destination,
    int DestinationPort,
    bool Masqueraded,
    IReadOnlyList<TraceStep> Steps,
    TraceStep? DecidingRule)
{
    /// <summary>The mark as the last chain left it (kube-proxy's 0x4000 masquerade bit and friends).</summary>
    public uint Mark { get; init; }

    public override string ToString() =>
        $"{Verdict.ToString().ToLowerInvariant()} -> {Destination}:{DestinationPort.ToString(CultureInfo.InvariantCulture)}" +
        (Masqueraded ? " masqueraded" : "") + (DecidingRule is { } d ? $" by {d.Chain}: {d.Rule}" : "");
}

/// <summary>Several outcomes where <c>numgen</c> forked the packet (one per distinct endpoint path).</summary>
public sealed record TraceResult(IReadOnlyList<TraceOutcome> Outcomes);

/// <summary>
/// Walks a virtual packet through an <see cref="NftModel"/> the way netfilter would: base chains of every table per
/// hook in priority order, prerouting → routing decision → input or forward → postrouting (or output → postrouting
/// for local traffic), jump/goto/return, verdict maps, NAT for new connections only. Pure: the model is not changed
/// (<c>update @set</c> is reported, not applied), so the same trace gives the same answer.
/// </summary>
public sealed class NftTracer
{
    private const int MaxDepth = 64;
    private readonly NftModel _model;
    private readonly HashSet<IPAddress> _local;

    public NftTracer(NftModel model, IReadOnlyCollection<IPAddress> localAddresses)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(localAddresses);
        _model = model;
        _local = [.. localAddresses];
    }

    private sealed record State(
        IPAddress Destination,
        int DestinationPort,
        uint Mark,
        bool Masqueraded,
        ImmutableHashSet<NftHook> NatBound,
        ImmutableList<TraceStep> Steps,
        TraceStep? Deciding);

    private sealed record Context(TracePacket Packet, NftTable Table, NftHook Hook, int NfProto, int L4Proto, int Depth);

    private enum Kind
    {
        NoMatch,
        Matched,
        Accept,
        Drop,
        Reject,
        Return,
        Jump,
        Goto,
    }

    private sealed record Branch(State State, Kind Kind, TraceStep? Rule);

    public TraceResult Trace(TracePacket packet)
    {
        ArgumentNullException.ThrowIfNull(packet);
        int l4 = Validate(packet);
        int nfproto = packet.Source.AddressFamily == AddressFamily.InterNetwork ? 2 : 10;
        var tables = _model.Tables.Where(t => t.Family == NftFamily.Inet || nfproto == 2).ToList();
        var outcomes = new List<TraceOutcome>();
        var start = new State(packet.Destination, packet.DestinationPort, 0, false, [], [], null);
        var states = new List<State> { start };

        var first = packet.Origin == TraceOrigin.Forwarded ? NftHook.Prerouting : NftHook.Output;
        states = RunHook(first, states, packet, tables, nfproto, l4, outcomes);
        var next = new List<State>();
        foreach (var s in states)
        {
            if (packet.Origin == TraceOrigin.Local)
            {
                next.AddRange(RunHook(NftHook.Postrouting, [s], packet, tables, nfproto, l4, outcomes));
                continue;
            }
            bool local = IsLocal(s.Destination);
            var routed = s with
            {
                Steps = s.Steps.Add(new TraceStep(TraceStepKind.Route, "", "", Detail: local
                    ? $"{s.Destination} is a local address: input"
                    : $"{s.Destination} is not local: forward"))
            };
            if (local)
            {
                next.AddRange(RunHook(NftHook.Input, [routed], packet, tables, nfproto, l4, outcomes));
            }
            else
            {
                foreach (var f in RunHook(NftHook.Forward, [routed], packet, tables, nfproto, l4, outcomes))
                {
                    next.AddRange(RunHook(NftHook.Postrouting, [f], packet, tables, nfproto, l4, outcomes));
                }
            }
        }
        foreach (var s in next)
        {
            outcomes.Add(new TraceOutcome(TraceVerdict.Accept, s.Destination, s.DestinationPort, s.Masqueraded, s.Steps, s.Deciding) { Mark = s.Mark });
        }
        // numgen branches that took the same path (e.g. two entries to one endpoint) are one outcome.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var unique = outcomes.Where(o => seen.Add(OutcomeKey(o))).ToList();
        return new TraceResult(unique);
    }

    private static string OutcomeKey(TraceOutcome o) =>
        $"{o.Verdict}|{o.Destination}|{o.DestinationPort}|{o.Masqueraded}|{o.Mark}|{o.DecidingRule}|{string.Join('\n', o.Steps)}";

    private static int Validate(TracePacket p)
    {
        if (p.Source is null || p.Destination is null)
        {
            throw new ArgumentException("packet Source and Destination are required", nameof(p));
        }
        if (p.Source.AddressFamily != p.Destination.AddressFamily)
        {
            throw new ArgumentException($"packet Source {p.Source} and Destination {p.Destination} are of different IP versions", nameof(p));
        }
        if (p.SourcePort is < 0 or > 65535)
        {
            throw new ArgumentException($"packet SourcePort {p.SourcePort} is not 0-65535", nameof(p));
        }
        if (p.DestinationPort is < 0 or > 65535)
        {
            throw new ArgumentException($"packet DestinationPort {p.DestinationPort} is not 0-65535", nameof(p));
        }
        bool v6 = p.Source.AddressFamily == AddressFamily.InterNetworkV6;
        return p.Protocol switch
        {
            "tcp" => 6,
            "udp" => 17,
            "sctp" => 132,
            "icmp" => v6 ? 58 : 1,
            _ => throw new ArgumentException($"packet Protocol '{p.Protocol}' is not tcp, udp, sctp or icmp", nameof(p)),
        };
    }

    private bool IsLocal(IPAddress a) => _local.Contains(a) || IPAddress.IsLoopback(a);

    /// <summary>Runs every base chain at <paramref name="hook"/>; returns the states that got through, adds the rest to outcomes.</summary>
    private List<State> RunHook(NftHook hook, List<State> states, TracePacket packet, List<NftTable> tables, int nfproto, int l4, List<TraceOutcome> outcomes)
    {
        var chains = tables
            .SelectMany(t => t.Chains.Values.Where(c => c.Base?.Hook == hook).Select(c => (Table: t, Chain: c)))
            .OrderBy(x => x.Chain.Base!.Priority)
            .ThenBy(x => x.Table.Family)
            .ThenBy(x => x.Table.Name, StringComparer.Ordinal)
            .ThenBy(x => x.Chain.Name, StringComparer.Ordinal)
            .ToList();
        foreach (var (table, chain) in chains)
        {
            var next = new List<State>();
            var b = chain.Base!;
            foreach (var state in states)
            {
                if (b.Type == NftChainType.Nat && (!packet.NewConnection || state.NatBound.Contains(hook)))
                {
                    // NAT chains see only a connection's first packet (conntrack replays the binding after), and
                    // once one nat chain at a hook bound an address the kernel skips the others at that hook.
                    string why = !packet.NewConnection ? "established connection: conntrack applies the existing NAT binding" : "NAT already bound at this hook";
                    next.Add(state with { Steps = state.Steps.Add(new TraceStep(TraceStepKind.Skipped, table.QualifiedName, chain.Name, Detail: why)) });
                    continue;
                }
                var ctx = new Context(packet, table, hook, nfproto, l4, 0);
                var entered = state with
                {
                    Steps = state.Steps.Add(new TraceStep(TraceStepKind.Chain, table.QualifiedName, chain.Name,
                        Detail: $"{b.Type.ToString().ToLowerInvariant()} {hook.ToString().ToLowerInvariant()} priority {b.Priority.ToString(CultureInfo.InvariantCulture)}")),
                };
                var before = entered.Destination;
                foreach (var br in RunRules(ctx, chain, 0, entered))
                {
                    var s = br.State;
                    if (b.Type == NftChainType.Nat && (!Equals(s.Destination, before) || s.Masqueraded != state.Masqueraded))
                    {
                        s = s with { NatBound = s.NatBound.Add(hook) };
                    }
                    switch (br.Kind)
                    {
                        case Kind.Drop:
                        case Kind.Reject:
                            outcomes.Add(new TraceOutcome(br.Kind == Kind.Drop ? TraceVerdict.Drop : TraceVerdict.Reject,
                                s.Destination, s.DestinationPort, s.Masqueraded, s.Steps, br.Rule) { Mark = s.Mark });
                            break;
                        case Kind.Accept:
                            next.Add(s with { Deciding = br.Rule });
                            break;
                        default: // fell off the end or returned: the chain's policy
                            var policy = s.Steps.Add(new TraceStep(TraceStepKind.Policy, table.QualifiedName, chain.Name, Detail: "policy " + b.Policy.ToString().ToLowerInvariant()));
                            if (b.Policy == NftVerdictKind.Drop)
                            {
                                outcomes.Add(new TraceOutcome(TraceVerdict.Drop, s.Destination, s.DestinationPort, s.Masqueraded, policy, null) { Mark = s.Mark });
                            }
                            else
                            {
                                next.Add(s with { Steps = policy, Deciding = null });
                            }
                            break;
                    }
                }
            }
            states = next;
        }
        return states;
    }

    private List<Branch> RunChain(Context ctx, string name, State state)
    {
        if (ctx.Depth >= MaxDepth)
        {
            throw new InvalidOperationException($"trace exceeded {MaxDepth} nested chains at {name} (a chain loop the model should have refused)");
        }
        var chain = ctx.Table.Chains[name];
        var entered = state with { Steps = state.Steps.Add(new TraceStep(TraceStepKind.Chain, ctx.Table.QualifiedName, name)) };
        return RunRules(ctx with { Depth = ctx.Depth + 1 }, chain, 0, entered);
    }

    private List<Branch> RunRules(Context ctx, NftChain chain, int start, State state)
    {
        for (int i = start; i < chain.Rules.Count; i++)
        {
            var rule = chain.Rules[i];
            var results = EvalRule(ctx, chain, rule, state);
            if (results is [{ Kind: Kind.NoMatch } only])
            {
                state = only.State;
                continue;
            }
            var list = new List<Branch>();
            foreach (var (s, kind, target, step) in results)
            {
                switch (kind)
                {
                    case Kind.NoMatch:
                    case Kind.Matched:
                        list.AddRange(RunRules(ctx, chain, i + 1, s));
                        break;
                    case Kind.Accept:
                    case Kind.Drop:
                    case Kind.Reject:
                    case Kind.Return:
                        list.Add(new Branch(s, kind, step));
                        break;
                    case Kind.Jump:
                        foreach (var b in RunChain(ctx, target!, s))
                        {
                            if (b.Kind == Kind.Return)
                            {
                                list.AddRange(RunRules(ctx, chain, i + 1, b.State));
                            }
                            else
                            {
                                list.Add(b);
                            }
                        }
                        break;
                    case Kind.Goto:
                        list.AddRange(RunChain(ctx, target!, s));
                        break;
                }
            }
            return list;
        }
        return [new Branch(state, Kind.Return, null)];
    }

    private sealed record RuleResult(State State, Kind Kind, string? Target, TraceStep? Step);

    private List<RuleResult> EvalRule(Context ctx, NftChain chain, NftRule rule, State state)
    {
        int mod = rule.Items.Select(i => i switch
        {
            MatchItem m => m.Keys,
            VmapItem v => v.Keys,
            _ => [],
        }).SelectMany(k => k).FirstOrDefault(k => k.Kind == SelectorKind.Numgen)?.NumgenMod ?? 0;
        var results = new List<RuleResult>();
        for (int ng = 0; ng < Math.Max(mod, 1); ng++)
        {
            results.Add(EvalOnce(ctx, chain, rule, state, ng));
        }
        return results;
    }

    private RuleResult EvalOnce(Context ctx, NftChain chain, NftRule rule, State s, int numgen)
    {
        var details = new List<string>();
        NftVerdict? verdict = null;
        foreach (var item in rule.Items)
        {
            bool pass = true;
            switch (item)
            {
                case MatchItem m:
                    {
                        var key = Key(ctx, m.Keys, s, numgen);
                        if (key is null)
                        {
                            pass = false;
                            break;
                        }
                        if (m.Mask is uint mask)
                        {
                            key[0] = NftKeyPart.Point((uint)key[0].Low & mask);
                        }
                        bool found = m.SetName is not null
                            ? Lookup(ctx.Table.Sets[m.SetName], key) is not null
                            : m.Values!.Any(v => Contains(v, key));
                        pass = found != m.Negated;
                        break;
                    }
                case CtStateItem ct:
                    pass = ct.States.Contains(ctx.Packet.NewConnection ? "new" : "established") != ct.Negated;
                    break;
                case FibItem fib:
                    pass = IsLocal(fib.Daddr ? s.Destination : ctx.Packet.Source) != fib.Negated;
                    break;
                case VmapItem v:
                    {
                        var key = Key(ctx, v.Keys, s, numgen);
                        NftVerdict? hit = null;
                        if (key is not null)
                        {
                            hit = v.MapName is not null
                                ? Lookup(ctx.Table.Sets[v.MapName], key)?.Verdict
                                : v.Entries!.FirstOrDefault(e => Contains(e.Key, key))?.Verdict;
                        }
                        if (hit is null)
                        {
                            pass = false;
                        }
                        else
                        {
                            verdict = hit;
                            details.Add("vmap: " + hit);
                        }
                        break;
                    }
                case MarkSetItem ms:
                    {
                        uint mark = ms.Op switch
                        {
                            '|' => s.Mark | ms.Value,
                            '^' => s.Mark ^ ms.Value,
                            '&' => s.Mark & ms.Value,
                            _ => ms.Value,
                        };
                        s = s with { Mark = mark };
                        details.Add("mark 0x" + mark.ToString("x", CultureInfo.InvariantCulture));
                        break;
                    }
                case SetUpdateItem u:
                    details.Add($"would add to @{u.SetName} (not applied: traces do not change the model)");
                    break;
                case LogItem log:
                    details.Add("log" + (log.Prefix is null ? "" : $" \"{log.Prefix}\""));
                    break;
                case DnatItem d:
                    s = s with { Destination = d.Address, DestinationPort = d.Port ?? s.DestinationPort };
                    details.Add($"dnat to {d.Address}:{s.DestinationPort.ToString(CultureInfo.InvariantCulture)}");
                    break;
                case MasqueradeItem:
                    s = s with { Masqueraded = true };
                    details.Add("masquerade");
                    break;
                case VerdictItem vi:
                    verdict = vi.Verdict;
                    break;
            }
            if (!pass)
            {
                return new RuleResult(s, Kind.NoMatch, null, null);
            }
        }
        var step = new TraceStep(TraceStepKind.Rule, ctx.Table.QualifiedName, chain.Name, rule.Text, details.Count == 0 ? null : string.Join("; ", details));
        s = s with { Steps = s.Steps.Add(step) };
        return verdict?.Kind switch
        {
            null or NftVerdictKind.Continue => new RuleResult(s, Kind.Matched, null, step),
            NftVerdictKind.Accept => new RuleResult(s, Kind.Accept, null, step),
            NftVerdictKind.Drop => new RuleResult(s, Kind.Drop, null, step),
            NftVerdictKind.Reject => new RuleResult(s, Kind.Reject, null, step),
            NftVerdictKind.Return => new RuleResult(s, Kind.Return, null, step),
            NftVerdictKind.Jump => new RuleResult(s, Kind.Jump, verdict.Chain, step),
            _ => new RuleResult(s, Kind.Goto, verdict.Chain, step),
        };
    }

    private static NftElement? Lookup(NftSet set, NftKeyPart[] key)
    {
        // Elements of a set without intervals or name wildcards are single values: an exact key lookup.
        if (!set.IsInterval && !set.KeyTypes.Contains(NftDataType.IfName))
        {
            return set.ElementMap.GetValueOrDefault(key);
        }
        return set.Elements.FirstOrDefault(e => Contains(e.Key, key));
    }

    private static bool Contains(IReadOnlyList<NftKeyPart> element, NftKeyPart[] key)
    {
        for (int i = 0; i < key.Length; i++)
        {
            if (!element[i].Contains(key[i]))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The packet's value for each selector; null when a field is absent (an ip6 field of an IPv4 packet, a port of ICMP).</summary>
    private static NftKeyPart[]? Key(Context ctx, IReadOnlyList<Selector> selectors, State s, int numgen)
    {
        var p = ctx.Packet;
        var key = new NftKeyPart[selectors.Count];
        bool hasPorts = ctx.L4Proto is 6 or 17 or 132;
        for (int i = 0; i < selectors.Count; i++)
        {
            var sel = selectors[i];
            if (sel.IpVersion is int v && v != (ctx.NfProto == 2 ? 4 : 6))
            {
                return null;
            }
            NftKeyPart? part = sel.Kind switch
            {
                SelectorKind.IpSaddr or SelectorKind.Ip6Saddr => NftKeyPart.Point(NftValues.FromAddress(p.Source)),
                SelectorKind.IpDaddr or SelectorKind.Ip6Daddr => NftKeyPart.Point(NftValues.FromAddress(s.Destination)),
                SelectorKind.L4Proto => NftKeyPart.Point((UInt128)ctx.L4Proto),
                SelectorKind.NfProto => NftKeyPart.Point((UInt128)ctx.NfProto),
                SelectorKind.Sport => hasPorts ? NftKeyPart.Point((UInt128)p.SourcePort) : null,
                SelectorKind.Dport => hasPorts ? NftKeyPart.Point((UInt128)s.DestinationPort) : null,
                SelectorKind.Mark => NftKeyPart.Point(s.Mark),
                // No input interface for locally generated packets; no output interface before routing.
                SelectorKind.IifName => new NftKeyPart(0, 0, p.Origin == TraceOrigin.Local ? "" : p.InInterface ?? ""),
                SelectorKind.OifName => new NftKeyPart(0, 0, ctx.Hook is NftHook.Prerouting or NftHook.Input ? "" : p.OutInterface ?? ""),
                SelectorKind.Numgen => NftKeyPart.Point((UInt128)numgen),
                _ => null,
            };
            if (part is null)
            {
                return null;
            }
            key[i] = part.Value;
        }
        return key;
    }
}
