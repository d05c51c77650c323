using System.Text;
using Trellis.Core.Objects;

namespace Trellis.Core.Proxy;

/// <summary>One map/set element a Service asks for; the first claim of a key in Service order owns it.</summary>
internal sealed record ProxyClaim(string Set, string Key, string Element, string Display);

/// <summary>A per-port problem: fixed text, or the conflict (if any) of claim number <see cref="Claim"/>.</summary>
internal readonly record struct ProxyProblemItem(string? Text, int Claim);

/// <summary>
/// Keeps the <see cref="ProxyCompiler"/> output for a changing set of Services and EndpointSlices, compiling only
/// the Services that changed (kube-proxy's partial sync, done on the compiler side too). Each Service compiles
/// alone into a fragment — its chains, its affinity sets, the map and set elements it claims, its ports, its
/// problems — and fragments are merged by key: who owns a contested map key is decided among the claims on that
/// key only. So one changed Service costs the same with 10 Services or with 10,000, and <see cref="Compile"/>
/// returns the nft transaction for exactly what changed. <see cref="Ruleset"/> is the same ruleset
/// <see cref="ProxyCompiler.Compile"/> builds from the same objects (a property test holds it to that), built on
/// demand for full syncs. Services are identified by namespace (absent = "default") and name, as store keys do.
/// Not thread-safe.
/// </summary>
public sealed class IncrementalProxyCompiler
{
    private const string Table = ProxyNames.Family + " " + ProxyNames.Table;

    private readonly Dictionary<(string Ns, string Name), ServiceView> _services = [];
    private readonly Dictionary<string, (EndpointSliceView View, (string Ns, string Svc) Owner)> _slices = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Ns, string Svc), SortedDictionary<string, EndpointSliceView>> _slicesByService = [];
    private readonly SortedDictionary<(string Ns, string Name), Fragment> _fragments = new(ServiceOrder.Instance);
    private readonly Dictionary<(string Set, string Key), List<(Fragment Owner, int Index)>> _claims = [];
    private readonly HashSet<(string Ns, string Name)> _dirty = [];
    private ProxyInput? _globals;
    private bool _globalsChanged = true;
    private ProxyRuleset? _globalPart;
    private ProxyRuleset? _ruleset;

    /// <summary>The node-wide inputs (everything but Services and EndpointSlices, which are ignored here). A change recompiles every Service.</summary>
    public void SetGlobals(ProxyInput globals)
    {
        ArgumentNullException.ThrowIfNull(globals);
        var g = globals with { Services = [], EndpointSlices = [] };
        if (_globals is null || !SameGlobals(_globals, g))
        {
            _globals = g;
            _globalsChanged = true;
        }
    }

    public void PutService(ServiceView service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var id = Id(service.Namespace, service.Name);
        _services[id] = service;
        _dirty.Add(id);
    }

    public void RemoveService(string? ns, string name)
    {
        var id = Id(ns, name);
        if (_services.Remove(id))
        {
            _dirty.Add(id);
        }
    }

    /// <summary>An EndpointSlice by its store key (a slice may be relabelled to another Service).</summary>
    public void PutSlice(string key, EndpointSliceView slice)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(slice);
        RemoveSlice(key);
        var owner = (slice.Namespace ?? "default", slice.ServiceName ?? "");
        _slices[key] = (slice, owner);
        if (!_slicesByService.TryGetValue(owner, out var list))
        {
            _slicesByService[owner] = list = new SortedDictionary<string, EndpointSliceView>(StringComparer.Ordinal);
        }
        list[key] = slice;
        _dirty.Add(owner);
    }

    public void RemoveSlice(string key)
    {
        if (_slices.Remove(key, out var old))
        {
            if (_slicesByService.TryGetValue(old.Owner, out var list))
            {
                list.Remove(key);
                if (list.Count == 0)
                {
                    _slicesByService.Remove(old.Owner);
                }
            }
            _dirty.Add(old.Owner);
        }
    }

    public int ServiceCount => _services.Count;

    /// <summary>
    /// Compiles what changed since the last call. The result's <see cref="ProxyUpdate.Transaction"/> takes a table
    /// holding the previous <see cref="Ruleset"/> to the new one.
    /// </summary>
    public ProxyUpdate Compile()
    {
        if (_globals is null)
        {
            throw new InvalidOperationException("SetGlobals first: the node's name and addresses are needed to compile");
        }
        if (_globalsChanged)
        {
            // Rare (a node address changed): recompile everything and compare whole rulesets.
            var before = _globalPart is null ? null : Ruleset;
            var oldPorts = _fragments.Values.SelectMany(f => f.Ports).ToList();
            _globalPart = new TableBuilder(_globals).Build([], []);
            _globalsChanged = false;
            _fragments.Clear();
            _claims.Clear();
            _dirty.Clear();
            foreach (var id in _services.Keys)
            {
                Insert(Build(id));
            }
            _ruleset = null;
            var after = Ruleset;
            string text = before is null ? ProxyTransaction.Full(after, null) : ProxyTransaction.Partial(before, after);
            return new ProxyUpdate(text, oldPorts, after.ServicePorts, after.Problems, true);
        }
        if (_dirty.Count == 0)
        {
            return new ProxyUpdate("", [], [], [], false);
        }
        _ruleset = null;
        var newChains = new SortedDictionary<string, ProxyChain>(StringComparer.Ordinal);
        var rewritten = new SortedDictionary<string, ProxyChain>(StringComparer.Ordinal);
        var staleChains = new SortedSet<string>(StringComparer.Ordinal);
        var addSets = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var staleSets = new SortedSet<string>(StringComparer.Ordinal);
        var touched = new Dictionary<(string Set, string Key), string?>(); // key → winning element before
        var removedPorts = new List<ProxyServicePort>();
        var addedPorts = new List<ProxyServicePort>();
        var changed = new List<Fragment>();
        foreach (var id in _dirty)
        {
            _fragments.TryGetValue(id, out var old);
            var now = _services.ContainsKey(id) ? Build(id) : null;
            foreach (var c in old?.Claims ?? [])
            {
                touched.TryAdd((c.Set, c.Key), Winner(c.Set, c.Key));
            }
            foreach (var c in now?.Claims ?? [])
            {
                touched.TryAdd((c.Set, c.Key), Winner(c.Set, c.Key));
            }
            if (old is not null)
            {
                Delete(old);
                removedPorts.AddRange(old.Ports);
            }
            if (now is not null)
            {
                Insert(now);
                addedPorts.AddRange(now.Ports);
                changed.Add(now);
            }
            var oldChains = old?.Chains ?? [];
            var nowChains = now?.Chains ?? [];
            foreach (var (name, rules) in nowChains)
            {
                if (!oldChains.TryGetValue(name, out var before))
                {
                    newChains[name] = new ProxyChain(name, null, rules);
                }
                else if (!before.SequenceEqual(rules, StringComparer.Ordinal))
                {
                    rewritten[name] = new ProxyChain(name, null, rules);
                }
            }
            foreach (var name in oldChains.Keys.Where(n => !nowChains.ContainsKey(n)))
            {
                staleChains.Add(name);
            }
            var oldSets = old?.Sets ?? [];
            var nowSets = now?.Sets ?? [];
            foreach (var (name, decl) in nowSets)
            {
                if (!oldSets.TryGetValue(name, out var before) || before != decl)
                {
                    addSets[name] = decl;
                }
            }
            foreach (var name in oldSets.Keys.Where(n => !nowSets.ContainsKey(n)))
            {
                staleSets.Add(name);
            }
        }
        _dirty.Clear();

        var deletes = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        var adds = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var ((set, key), before) in touched)
        {
            string? after = Winner(set, key);
            if (before == after)
            {
                continue;
            }
            if (before is not null)
            {
                Bucket(deletes, set).Add(key);
            }
            if (after is not null)
            {
                Bucket(adds, set).Add(after);
            }
        }

        // The same order as ProxyTransaction.Partial: definitions, flushes, rules, elements, then deletes.
        var w = new StringBuilder();
        foreach (var name in newChains.Keys)
        {
            w.Append("add chain ").Append(Table).Append(' ').Append(name).Append('\n');
        }
        foreach (var (name, decl) in addSets)
        {
            w.Append("add set ").Append(Table).Append(' ').Append(name).Append(' ').Append(decl).Append('\n');
        }
        foreach (var name in rewritten.Keys.Concat(staleChains))
        {
            w.Append("flush chain ").Append(Table).Append(' ').Append(name).Append('\n');
        }
        foreach (var c in newChains.Values.Concat(rewritten.Values))
        {
            foreach (var rule in c.Rules)
            {
                w.Append("add rule ").Append(Table).Append(' ').Append(c.Name).Append(' ').Append(rule).Append('\n');
            }
        }
        foreach (var set in deletes.Keys.Union(adds.Keys).Order(StringComparer.Ordinal))
        {
            Elements(w, "delete", set, deletes.GetValueOrDefault(set));
            Elements(w, "add", set, adds.GetValueOrDefault(set));
        }
        // Affinity sets (the only per-Service sets) are dynamic: never flushed, deleted with their entries.
        foreach (var name in staleChains)
        {
            w.Append("delete chain ").Append(Table).Append(' ').Append(name).Append('\n');
        }
        foreach (var name in staleSets)
        {
            w.Append("delete set ").Append(Table).Append(' ').Append(name).Append('\n');
        }
        return new ProxyUpdate(w.ToString(), removedPorts, addedPorts, changed.SelectMany(f => f.Problems(this)).ToList(), false);
    }

    /// <summary>The whole current ruleset (as <see cref="ProxyCompiler.Compile"/> would build it); built on first use after a change.</summary>
    public ProxyRuleset Ruleset => _ruleset ??= BuildRuleset();

    /// <summary>Every programmed service port, in Service order, without building the ruleset.</summary>
    public IEnumerable<ProxyServicePort> ServicePorts => _fragments.Values.SelectMany(f => f.Ports);

    private ProxyRuleset BuildRuleset()
    {
        if (_globalPart is null)
        {
            throw new InvalidOperationException("Compile first");
        }
        var chains = new List<ProxyChain>(TableBuilder.BaseChains);
        var named = _globalPart.OrderedChains.Where(c => c.BaseHook is null)
            .Concat(_fragments.Values.SelectMany(f => f.Chains.Select(kv => new ProxyChain(kv.Key, null, kv.Value))))
            .OrderBy(c => c.Name, StringComparer.Ordinal);
        chains.AddRange(named);
        var winners = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var ((set, _), claims) in _claims)
        {
            Bucket(winners, set).Add(Element(claims[0]));
        }
        var sets = _globalPart.OrderedSets
            .Select(s =>
            {
                var elements = s.Elements.Concat(winners.GetValueOrDefault(s.Name) ?? []).ToList();
                elements.Sort(StringComparer.Ordinal);
                return new ProxySet(s.Name, s.IsMap, s.Declaration, elements);
            })
            .Concat(_fragments.Values.SelectMany(f => f.Sets.Select(kv => new ProxySet(kv.Key, false, kv.Value, []))))
            .OrderBy(s => s.Name, StringComparer.Ordinal)
            .ToList();
        var fragments = _fragments.Values.ToList();
        var problems = fragments.SelectMany(f => f.ReaderProblems).Concat(fragments.SelectMany(f => f.PortProblems(this))).ToList();
        return new ProxyRuleset(chains, sets, fragments.SelectMany(f => f.Ports).ToList(), problems);
    }

    private Fragment Build((string Ns, string Name) id)
    {
        var svc = _services[id];
        var readerProblems = new List<string>();
        var fragment = new Fragment(id);
        if (string.IsNullOrEmpty(svc.Name))
        {
            readerProblems.Add("Service (unnamed): metadata.name: Required value");
            fragment.ReaderProblems = readerProblems;
            return fragment;
        }
        var specs = new List<ServicePortSpec>();
        ServicePortReader.ReadOne(svc, specs, readerProblems);
        fragment.ReaderProblems = readerProblems;
        if (specs.Count == 0)
        {
            return fragment;
        }
        var endpointProblems = new List<string>();
        var slices = _slicesByService.TryGetValue((svc.Namespace ?? "default", svc.Name), out var s) ? s.Values.ToList() : [];
        var endpoints = new EndpointIndex(_globals!.NodeName, slices, endpointProblems);
        var table = new TableBuilder(_globals) { Claims = fragment.ClaimList, Items = fragment.Items };
        var globalChains = _globalPart!.Chains;
        foreach (var sp in specs)
        {
            int reported = endpointProblems.Count;
            var eps = endpoints.For(sp);
            foreach (var p in endpointProblems.Skip(reported))
            {
                fragment.Items.Add(new ProxyProblemItem(p, -1));
            }
            fragment.Ports.Add(table.AddServicePort(sp, eps, []));
        }
        foreach (var (name, rules) in table.ChainRules)
        {
            if (!globalChains.ContainsKey(name))
            {
                fragment.Chains[name] = rules;
            }
        }
        foreach (var (name, _, decl) in table.SetDeclarations)
        {
            if (!_globalPart.Sets.ContainsKey(name))
            {
                fragment.Sets[name] = decl;
            }
        }
        return fragment;
    }

    private void Insert(Fragment f)
    {
        _fragments[f.Id] = f;
        for (int i = 0; i < f.ClaimList.Count; i++)
        {
            var c = f.ClaimList[i];
            if (!_claims.TryGetValue((c.Set, c.Key), out var list))
            {
                _claims[(c.Set, c.Key)] = list = new List<(Fragment, int)>(1);
            }
            // Claim order: Service order, then the order within the Service (what the full compile's loop does).
            int at = list.FindIndex(x => Compare(x, (f, i)) > 0);
            list.Insert(at < 0 ? list.Count : at, (f, i));
        }
    }

    private void Delete(Fragment f)
    {
        _fragments.Remove(f.Id);
        foreach (var c in f.ClaimList)
        {
            if (_claims.TryGetValue((c.Set, c.Key), out var list))
            {
                list.RemoveAll(x => ReferenceEquals(x.Owner, f));
                if (list.Count == 0)
                {
                    _claims.Remove((c.Set, c.Key));
                }
            }
        }
    }

    private string? Winner(string set, string key) =>
        _claims.TryGetValue((set, key), out var list) ? Element(list[0]) : null;

    private static string Element((Fragment Owner, int Index) claim) => claim.Owner.ClaimList[claim.Index].Element;

    private static int Compare((Fragment Owner, int Index) a, (Fragment Owner, int Index) b)
    {
        int c = ServiceOrder.Instance.Compare(a.Owner.Id, b.Owner.Id);
        return c != 0 ? c : a.Index.CompareTo(b.Index);
    }

    /// <summary>The conflict text for a claim that lost its key to another Service's different element, else null.</summary>
    private string? Conflict(Fragment f, int index)
    {
        var c = f.ClaimList[index];
        var list = _claims[(c.Set, c.Key)];
        var winner = list[0];
        if (ReferenceEquals(winner.Owner, f) && winner.Index == index)
        {
            return null;
        }
        var w = winner.Owner.ClaimList[winner.Index];
        // The full compile checks a claim against the key's owner at that moment: same element, no conflict.
        return w.Element == c.Element ? null
            : $"Service {f.Id.Ns}/{f.Id.Name}: {c.Set} {c.Key} is already taken by {w.Display}; this destination of {c.Display} is not programmed";
    }

    private static List<string> Bucket(IDictionary<string, List<string>> d, string key)
    {
        if (!d.TryGetValue(key, out var list))
        {
            d[key] = list = [];
        }
        return list;
    }

    private static void Elements(StringBuilder w, string verb, string set, List<string>? elements)
    {
        if (elements is not { Count: > 0 })
        {
            return;
        }
        elements.Sort(StringComparer.Ordinal);
        Nft.NftScript.Elements(w, verb, Table, set, elements);
    }

    private static (string, string) Id(string? ns, string? name) => (ns ?? "default", name ?? "");

    private static bool SameGlobals(ProxyInput a, ProxyInput b) =>
        a.NodeName == b.NodeName && a.MasqueradeAll == b.MasqueradeAll
        && a.NodeIPs.SequenceEqual(b.NodeIPs) && a.ClusterCidrs.SequenceEqual(b.ClusterCidrs)
        && a.ServiceCidrs.SequenceEqual(b.ServiceCidrs) && a.NodePortAddresses.SequenceEqual(b.NodePortAddresses);

    private sealed class Fragment((string Ns, string Name) id)
    {
        public (string Ns, string Name) Id { get; } = id;

        public List<string> ReaderProblems { get; set; } = [];

        public List<ProxyProblemItem> Items { get; } = [];

        public List<ProxyClaim> ClaimList { get; } = [];

        public IEnumerable<ProxyClaim> Claims => ClaimList;

        public Dictionary<string, List<string>> Chains { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, string> Sets { get; } = new(StringComparer.Ordinal);

        public List<ProxyServicePort> Ports { get; } = [];

        public IEnumerable<string> PortProblems(IncrementalProxyCompiler c) =>
            Items.Select(i => i.Text ?? c.Conflict(this, i.Claim)).OfType<string>();

        public IEnumerable<string> Problems(IncrementalProxyCompiler c) => ReaderProblems.Concat(PortProblems(c));
    }

    private sealed class ServiceOrder : IComparer<(string Ns, string Name)>
    {
        public static ServiceOrder Instance { get; } = new();

        public int Compare((string Ns, string Name) x, (string Ns, string Name) y)
        {
            int c = string.CompareOrdinal(x.Ns, y.Ns);
            return c != 0 ? c : string.CompareOrdinal(x.Name, y.Name);
        }
    }
}

/// <summary>What one <see cref="IncrementalProxyCompiler.Compile"/> changed.</summary>
/// <param name="Transaction">nft text from the previous ruleset to the new one ("" = nothing changed).</param>
/// <param name="RemovedPorts">The changed Services' ports before (for conntrack cleanup: compare with <paramref name="AddedPorts"/>).</param>
/// <param name="AddedPorts">The changed Services' ports now.</param>
/// <param name="Problems">The changed Services' problems.</param>
/// <param name="Everything">Node-wide inputs changed: every Service was recompiled.</param>
public sealed record ProxyUpdate(
    string Transaction,
    IReadOnlyList<ProxyServicePort> RemovedPorts,
    IReadOnlyList<ProxyServicePort> AddedPorts,
    IReadOnlyList<string> Problems,
    bool Everything);
