using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Trellis.Core.Objects;
using Trellis.Core.Policies;
using Trellis.Nftables;
using Trellis.Store;

namespace Trellis.Agent.Policy;

/// <summary>The policy engine's settings.</summary>
public sealed record PolicyOptions
{
    /// <summary>A full resync (rewrite everything, delete strays) this often; partial syncs in between.</summary>
    public TimeSpan FullSyncPeriod { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>A sync (and drift check of what was applied) at least this often even when nothing changed.</summary>
    public TimeSpan Resync { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// The NetworkPolicy engine of trellisd, built like the service proxy: list + watch Pods, Namespaces,
/// NetworkPolicies and Nodes into a local cache, compile <c>inet trellis-policy</c> for this node
/// (<see cref="PolicyCompiler"/>, pure) after every change, and reconcile it with one nft transaction — full
/// first, then partial. A pod's IP becomes programmed (leaves the "unprogrammed pod address" drop) only in the
/// same transaction that installs its isolation, so a new pod selected by a deny policy never sees an allowed
/// packet. On a store outage the kernel keeps its rules.
/// </summary>
public sealed class PolicyEngine(string nodeName, PolicyOptions options, IClusterStore store, TextWriter log, INftClient? nft = null)
{
    private static readonly KindInfo[] s_kinds = [Kinds.Pod, Kinds.Namespace, Kinds.NetworkPolicy, Kinds.Node];

    private readonly Dictionary<string, (KindInfo Kind, JsonObject Json, long Revision)> _cache = new(StringComparer.Ordinal);
    private readonly INftClient _nft = nft ?? new NftClient();
    private readonly PolicyReconciler _reconciler = new(nft ?? new NftClient());
    private readonly Lock _statsLock = new();
    private string _lastProblems = "";
    private long _lastFull = Stopwatch.GetTimestamp();
    private PolicyRuleset? _current;
    private readonly Dictionary<string, long> _syncs = new(StringComparer.Ordinal);
    private double _lastSyncSeconds;
    private long _syncErrors;

    /// <summary>The ruleset last applied (null before the first sync).</summary>
    public PolicyRuleset? Current
    {
        get
        {
            lock (_statsLock)
            {
                return _current;
            }
        }
    }

    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                long rev = await RelistAsync(ct).ConfigureAwait(false);
                Sync("initial list");
                var signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
                using var stopWatch = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var watch = WatchAsync(rev, signal.Writer, stopWatch.Token);
                try
                {
                    while (!ct.IsCancellationRequested)
                    {
                        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
                        wait.CancelAfter(options.Resync);
                        var waitTask = signal.Reader.WaitToReadAsync(wait.Token).AsTask();
                        var done = await Task.WhenAny(waitTask, watch).ConfigureAwait(false);
                        if (done == watch)
                        {
                            await watch.ConfigureAwait(false); // rethrows: compacted, store down
                            break;
                        }
                        string why = "resync";
                        try
                        {
                            await waitTask.ConfigureAwait(false);
                            while (signal.Reader.TryRead(out _))
                            {
                            }
                            why = "change";
                        }
                        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                        {
                            // periodic
                        }
                        if (Stopwatch.GetElapsedTime(_lastFull) >= options.FullSyncPeriod)
                        {
                            _reconciler.RequestFullSync();
                        }
                        Sync(why);
                    }
                }
                finally
                {
                    await stopWatch.CancelAsync().ConfigureAwait(false);
                    try
                    {
                        await watch.ConfigureAwait(false);
                    }
                    catch (Exception) when (stopWatch.IsCancellationRequested)
                    {
                        // the watch ends with us
                    }
                }
            }
            catch (StoreCompactedException)
            {
                Log("watch history compacted: listing again");
            }
            catch (StoreException e) when (!ct.IsCancellationRequested)
            {
                Log($"store: {e.Message}; keeping the current rules, retrying");
                await Task.Delay(1000, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Lists every kind; returns the revision to watch from (the oldest listing's: Put ignores replays).</summary>
    private async Task<long> RelistAsync(CancellationToken ct)
    {
        var lists = new List<(KindInfo Kind, StoreList List)>();
        foreach (var kind in s_kinds)
        {
            lists.Add((kind, await store.ListAsync(kind.StorePrefix(), ct).ConfigureAwait(false)));
        }
        lock (_cache)
        {
            _cache.Clear();
            foreach (var (kind, list) in lists)
            {
                foreach (var item in list.Items)
                {
                    Put(kind, item);
                }
            }
        }
        return lists.Min(l => l.List.Revision);
    }

    private async Task WatchAsync(long fromRevision, ChannelWriter<bool> signal, CancellationToken ct)
    {
        await foreach (var e in store.WatchAsync("/registry/", fromRevision, ct).ConfigureAwait(false))
        {
            var kind = s_kinds.FirstOrDefault(k => e.Item.Key.StartsWith(k.StorePrefix(), StringComparison.Ordinal));
            if (kind is null)
            {
                continue;
            }
            bool changed;
            lock (_cache)
            {
                changed = e.Type == WatchEventType.Put ? Put(kind, e.Item) : Remove(e.Item.Key, e.Revision);
            }
            if (changed)
            {
                signal.TryWrite(true);
            }
        }
    }

    private bool Put(KindInfo kind, StoreItem item)
    {
        if (_cache.TryGetValue(item.Key, out var have) && have.Revision >= item.ModRevision)
        {
            return false;
        }
        JsonObject? json;
        try
        {
            json = JsonNode.Parse(item.Value) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
            json = null;
        }
        if (json is null)
        {
            Log($"{item.Key}: not a JSON object; ignored");
            return false;
        }
        _cache[item.Key] = (kind, json, item.ModRevision);
        return true;
    }

    private bool Remove(string key, long revision)
    {
        if (_cache.TryGetValue(key, out var have) && have.Revision > revision)
        {
            return false;
        }
        return _cache.Remove(key);
    }

    /// <summary>Compiles the cache for this node and reconciles; returns what was sent (null when nft refused).</summary>
    public PolicySyncResult? Sync(string why)
    {
        var started = Stopwatch.GetTimestamp();
        PolicySnapshot snapshot;
        lock (_cache)
        {
            var values = _cache.Values.ToList();
            snapshot = new PolicySnapshot
            {
                Pods = values.Where(v => v.Kind == Kinds.Pod).Select(v => new PodView(v.Json)).ToList(),
                Namespaces = values.Where(v => v.Kind == Kinds.Namespace).Select(v => new NamespaceView(v.Json)).ToList(),
                Policies = values.Where(v => v.Kind == Kinds.NetworkPolicy).Select(v => new NetworkPolicyView(v.Json)).ToList(),
                Nodes = values.Where(v => v.Kind == Kinds.Node).Select(v => new NodeView(v.Json)).ToList(),
            };
        }
        var ruleset = PolicyCompiler.Compile(snapshot, nodeName);
        var compiled = Stopwatch.GetElapsedTime(started);
        string problems = string.Join("\n", ruleset.Problems);
        if (problems != _lastProblems && problems.Length > 0)
        {
            Log("policy: skipped: " + problems.Replace("\n", "; ", StringComparison.Ordinal));
        }
        _lastProblems = problems;
        PolicySyncResult result;
        try
        {
            result = _reconciler.Sync(ruleset);
        }
        catch (NftException e)
        {
            lock (_statsLock)
            {
                _syncErrors++;
            }
            Log($"policy: nft refused the sync ({why}): {e.Message}; the next sync is a full one");
            return null;
        }
        if (result.Kind == "full")
        {
            _lastFull = Stopwatch.GetTimestamp();
        }
        lock (_statsLock)
        {
            _current = ruleset;
            _syncs[result.Kind] = _syncs.GetValueOrDefault(result.Kind) + 1;
            _lastSyncSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        }
        if (result.Kind != "none")
        {
            Log(string.Create(CultureInfo.InvariantCulture,
                $"policy: {result.Kind} sync ({why}): {snapshot.Policies.Count} policies, {ruleset.Sets["local-pods"].Elements.Count} local pods, {result.TransactionBytes} bytes; compile {compiled.TotalMilliseconds:F1} ms, nft {result.Elapsed.TotalMilliseconds:F1} ms"));
        }
        return result;
    }

    /// <summary>Reads the counter chains from the kernel (one <c>nft list table</c>); empty before the first sync.</summary>
    public IReadOnlyList<PolicyCounterValue> ReadCounters()
    {
        var ruleset = Current;
        if (ruleset is null)
        {
            return [];
        }
        string? listing = _nft.ListTable(PolicyNames.Family, PolicyNames.Table, stateless: false);
        return listing is null ? [] : PolicyCounters.Read(ruleset, listing);
    }

    /// <summary>Prometheus text: per-policy allow counters, per-pod drop counters, sync counts and the last sync's duration.</summary>
    public void WriteMetrics(StringBuilder w)
    {
        ArgumentNullException.ThrowIfNull(w);
        IReadOnlyList<PolicyCounterValue> counters;
        try
        {
            counters = ReadCounters();
        }
        catch (NftException e)
        {
            Log($"policy: cannot read counters: {e.Message}");
            counters = [];
        }
        w.Append("# HELP trellis_policy_allowed_packets_total New connections a NetworkPolicy rule allowed (credited to the first allowing policy by namespace/name).\n");
        w.Append("# TYPE trellis_policy_allowed_packets_total counter\n");
        foreach (var c in counters.Where(c => c.Chain.Kind == "allow"))
        {
            Metric(w, "trellis_policy_allowed_packets_total", c, "policy", c.Packets);
        }
        w.Append("# HELP trellis_policy_dropped_packets_total Packets NetworkPolicy dropped, per isolated pod and direction.\n");
        w.Append("# TYPE trellis_policy_dropped_packets_total counter\n");
        foreach (var c in counters.Where(c => c.Chain.Kind == "drop"))
        {
            Metric(w, "trellis_policy_dropped_packets_total", c, "pod", c.Packets);
        }
        lock (_statsLock)
        {
            w.Append("# HELP trellis_policy_syncs_total Policy syncs by kind (full, partial, none).\n");
            w.Append("# TYPE trellis_policy_syncs_total counter\n");
            foreach (var (kind, n) in _syncs.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                w.Append(CultureInfo.InvariantCulture, $"trellis_policy_syncs_total{{node=\"{Escape(nodeName)}\",kind=\"{kind}\"}} {n}\n");
            }
            w.Append("# TYPE trellis_policy_sync_errors_total counter\n");
            w.Append(CultureInfo.InvariantCulture, $"trellis_policy_sync_errors_total{{node=\"{Escape(nodeName)}\"}} {_syncErrors}\n");
            w.Append("# HELP trellis_policy_last_sync_seconds Compile + nft time of the last sync.\n");
            w.Append("# TYPE trellis_policy_last_sync_seconds gauge\n");
            w.Append(CultureInfo.InvariantCulture, $"trellis_policy_last_sync_seconds{{node=\"{Escape(nodeName)}\"}} {_lastSyncSeconds:R}\n");
        }
    }

    private void Metric(StringBuilder w, string name, PolicyCounterValue c, string what, long value) =>
        w.Append(CultureInfo.InvariantCulture,
            $"{name}{{node=\"{Escape(nodeName)}\",namespace=\"{Escape(c.Chain.Namespace)}\",{what}=\"{Escape(c.Chain.Name)}\",direction=\"{c.Chain.Direction}\"}} {value}\n");

    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private void Log(string message) =>
        log.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} trellisd {nodeName}: {message}");
}
