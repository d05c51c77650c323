using System.Globalization;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Trellis.Cli.Cluster;
using Trellis.Core.Endpoints;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Lab;

/// <summary>
/// The lab's EndpointSlice controller (kube-controller-manager's, with <see cref="EndpointSliceBuilder"/>
/// as its pure core). It lists and watches Services, Pods, EndpointSlices and Nodes into local caches;
/// every change marks only the Services it can affect (a pod: the Services of its namespace whose
/// selector matched its old or new labels), and those are reconciled at once: the builder's writes go
/// out with compare-and-swap. Its own writes enter the caches as they succeed (with their revision), so
/// a reconcile right after never works from a stale slice list and duplicates nothing; the watch's echo
/// of them is recognised by revision and ignored. Every 30 s it relists and reconciles everything,
/// which repairs drift the watch could not show it.
/// </summary>
public sealed class EndpointSliceController(ObjectClient client, TextWriter log) : IDisposable
{
    public static readonly TimeSpan ResyncPeriod = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, StoredObject> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StoredObject> _pods = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StoredObject> _slices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StoredObject> _nodes = new(StringComparer.Ordinal);
    // Deleted keys and the revision of their delete: a late watch echo of an older Put must not resurrect them.
    private readonly Dictionary<string, long> _tombstones = new(StringComparer.Ordinal);
    private readonly SortedSet<(string Namespace, string Name)> _dirty = [];
    private volatile IReadOnlyList<LoadBalancerRoute> _lbRoutes = [];
    private readonly SemaphoreSlim _changed = new(0, 1);

    /// <summary>
    /// The LoadBalancer routes the cached objects call for, computed here on the controller's own
    /// loop (JsonNode trees are not safe to read from two threads) and handed over as immutable records.
    /// </summary>
    public IReadOnlyList<LoadBalancerRoute> LoadBalancerRoutes => _lbRoutes;

    /// <summary>Waits until <see cref="LoadBalancerRoutes"/> changes (or <paramref name="timeout"/> passes).</summary>
    public Task<bool> WaitRoutesChangedAsync(TimeSpan timeout, CancellationToken ct) => _changed.WaitAsync(timeout, ct);

    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await ListAndWatchAsync(ct).ConfigureAwait(false);
            }
            catch (StoreCompactedException)
            {
                Log("watch fell behind compaction: relisting");
            }
            catch (StoreException e) when (!ct.IsCancellationRequested)
            {
                Log($"store: {e.Message}; retrying");
                await Task.Delay(500, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task ListAndWatchAsync(CancellationToken ct)
    {
        KindInfo[] kinds = [Kinds.Service, Kinds.Pod, Kinds.EndpointSlice, Kinds.Node];
        var revisions = new long[kinds.Length];
        for (int i = 0; i < kinds.Length; i++)
        {
            var (items, rev) = await client.ListAsync(kinds[i], null, ct).ConfigureAwait(false);
            var cache = CacheOf(kinds[i]);
            cache.Clear();
            foreach (var item in items)
            {
                cache[item.Key] = item;
            }
            revisions[i] = rev;
        }
        _tombstones.Clear();
        foreach (var s in _services.Values)
        {
            var v = new ServiceView(s.Json);
            _dirty.Add((v.Namespace ?? "", v.Name));
        }
        foreach (var s in _slices.Values.Select(s => new EndpointSliceView(s.Json)).Where(EndpointSliceBuilder.IsManaged))
        {
            _dirty.Add((s.Namespace ?? "", s.ServiceName ?? ""));
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var events = Channel.CreateUnbounded<(KindInfo Kind, ObjectEvent Event)>(new UnboundedChannelOptions { SingleReader = true });
        var pumps = kinds.Select((k, i) => PumpAsync(k, revisions[i], events.Writer, stop.Token)).ToList();
        try
        {
            var resyncAt = DateTime.UtcNow + ResyncPeriod;
            while (true)
            {
                await ReconcileDirtyAsync(ct).ConfigureAwait(false);
                Publish();
                var wait = resyncAt - DateTime.UtcNow;
                if (wait <= TimeSpan.Zero)
                {
                    return; // resync: relist everything
                }
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(wait);
                try
                {
                    if (!await events.Reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false))
                    {
                        await events.Reader.Completion.ConfigureAwait(false); // rethrows the pump's failure
                        return;
                    }
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    return;
                }
                // Take everything that is already there before reconciling: a burst of pod events
                // costs one reconcile per Service, not one per event.
                while (events.Reader.TryRead(out var e))
                {
                    Observe(e.Kind, e.Event);
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            foreach (var p in pumps)
            {
                try
                {
                    await p.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
                catch (StoreException)
                {
                    // Already surfaced through the channel.
                }
            }
        }
    }

    private async Task PumpAsync(KindInfo kind, long fromRevision, ChannelWriter<(KindInfo, ObjectEvent)> writer, CancellationToken ct)
    {
        await Task.Yield();
        try
        {
            await foreach (var e in client.WatchAsync(kind, fromRevision, ct).ConfigureAwait(false))
            {
                writer.TryWrite((kind, e));
            }
        }
        catch (StoreException e)
        {
            writer.TryComplete(e);
            throw;
        }
    }

    private Dictionary<string, StoredObject> CacheOf(KindInfo kind) =>
        kind == Kinds.Service ? _services : kind == Kinds.Pod ? _pods : kind == Kinds.EndpointSlice ? _slices : _nodes;

    /// <summary>Applies one watch event to the caches and marks the Services it may change.</summary>
    private void Observe(KindInfo kind, ObjectEvent e)
    {
        var cache = CacheOf(kind);
        string key = e.Stored.Key;
        cache.TryGetValue(key, out var old);
        if (e.Type == WatchEventType.Put)
        {
            if ((old is not null && old.ModRevision >= e.Stored.ModRevision) || (_tombstones.TryGetValue(key, out long gone) && gone > e.Revision))
            {
                return; // our own write's echo, or older than what we know
            }
            cache[key] = e.Stored;
            _tombstones.Remove(key);
        }
        else
        {
            if (old is not null && old.ModRevision > e.Revision)
            {
                return; // re-created since
            }
            cache.Remove(key);
            _tombstones[key] = e.Revision;
        }
        var now = e.Type == WatchEventType.Put ? e.Stored : null;
        if (kind == Kinds.Service)
        {
            var v = new ServiceView(e.Stored.Json);
            _dirty.Add((v.Namespace ?? "", v.Name));
        }
        else if (kind == Kinds.Pod)
        {
            var pod = new PodView(e.Stored.Json);
            var oldLabels = old is null ? null : new PodView(old.Json).Metadata.Labels;
            var newLabels = now is null ? null : pod.Metadata.Labels;
            foreach (var s in _services.Values)
            {
                var svc = new ServiceView(s.Json);
                if (svc.Namespace != pod.Namespace || !svc.HasSelector)
                {
                    continue;
                }
                var sel = LabelSelector.FromSet(svc.Selector);
                if ((oldLabels is not null && sel.Matches(oldLabels)) || (newLabels is not null && sel.Matches(newLabels)))
                {
                    _dirty.Add((svc.Namespace ?? "", svc.Name));
                }
            }
        }
        else if (kind == Kinds.EndpointSlice)
        {
            // A managed slice edited or deleted by someone else: repair it now rather than at the resync.
            var s = new EndpointSliceView(e.Stored.Json);
            if (EndpointSliceBuilder.IsManaged(s) || (old is not null && EndpointSliceBuilder.IsManaged(new EndpointSliceView(old.Json))))
            {
                _dirty.Add((s.Namespace ?? "", s.ServiceName ?? ""));
            }
        }
        else if (kind == Kinds.Node)
        {
            // Only a node appearing, going or changing labels (zone) changes endpoints; status heartbeats do not.
            bool relevant = old is null || now is null
                || !new NodeView(old.Json).Metadata.Labels.OrderBy(kv => kv.Key, StringComparer.Ordinal).SequenceEqual(new NodeView(now.Json).Metadata.Labels.OrderBy(kv => kv.Key, StringComparer.Ordinal));
            if (relevant)
            {
                foreach (var s in _services.Values)
                {
                    var v = new ServiceView(s.Json);
                    _dirty.Add((v.Namespace ?? "", v.Name));
                }
            }
        }
    }

    private async Task ReconcileDirtyAsync(CancellationToken ct)
    {
        // A write that loses a compare-and-swap refreshes the slice and re-marks its Service; a few
        // rounds settle it, and anything still contended waits for the next event or the resync.
        for (int round = 0; round < 5 && _dirty.Count > 0; round++)
        {
            var batch = _dirty.ToList();
            _dirty.Clear();
            foreach (var (ns, name) in batch)
            {
                await ReconcileAsync(ns, name, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task ReconcileAsync(string ns, string name, CancellationToken ct)
    {
        var sliceViews = _slices.Values.Select(s => new EndpointSliceView(s.Json)).Where(s => s.Namespace == ns).ToList();
        EndpointSlicePlan plan;
        _services.TryGetValue(Kinds.Service.StoreKey(ns, name), out var svcObj);
        if (svcObj is null)
        {
            // The Service is gone: upstream's garbage collector removes its slices through the ownerReference.
            var orphans = sliceViews.Where(s => EndpointSliceBuilder.IsManaged(s) && s.ServiceName == name).ToList();
            plan = new EndpointSlicePlan([], [], orphans);
        }
        else
        {
            var svc = new ServiceView(svcObj.Json);
            var pods = _pods.Values.Select(p => new PodView(p.Json)).Where(p => p.Namespace == ns).ToList();
            var nodes = _nodes.Values.Select(n => new NodeView(n.Json)).ToList();
            try
            {
                plan = EndpointSliceBuilder.Plan(svc, pods, nodes, sliceViews, () => EndpointSliceBuilder.GenerateName(name, Random.Shared));
            }
            catch (InvalidOperationException e)
            {
                Log($"service {ns}/{name}: {e.Message}");
                return;
            }
        }
        if (plan.IsEmpty)
        {
            return;
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            foreach (var c in plan.Create)
            {
                var meta = (JsonObject)c["metadata"]!;
                meta["uid"] = Guid.NewGuid().ToString();
                meta["creationTimestamp"] = Timestamps.Format(DateTimeOffset.UtcNow);
                string key = Kinds.StoreKey(c);
                long rev = await client.CreateAsync(c, ct).ConfigureAwait(false);
                Remember(key, c, rev);
            }
            foreach (var u in plan.Update)
            {
                string key = Kinds.StoreKey(u);
                var current = _slices[key];
                long rev = await client.UpdateAsync(current, u, ct).ConfigureAwait(false);
                Remember(key, u, rev);
            }
            foreach (var d in plan.Delete)
            {
                string key = Kinds.StoreKey(d.Json);
                long rev = await client.DeleteAsync(_slices[key], ct).ConfigureAwait(false);
                _slices.Remove(key);
                _tombstones[key] = rev;
            }
        }
        catch (StoreException e) when (e is StoreConflictException or StoreNotFoundException)
        {
            // Someone else wrote a slice of this Service (or took a name) since we read it: read the
            // namespace's slices afresh and try again.
            Log($"service {ns}/{name}: {e.Message}; rereading its slices");
            await RefreshSlicesAsync(ns, ct).ConfigureAwait(false);
            _dirty.Add((ns, name));
            return;
        }
        Log(string.Create(CultureInfo.InvariantCulture,
            $"service {ns}/{name}: {plan.Create.Count} created, {plan.Update.Count} updated, {plan.Delete.Count} deleted ({clock.Elapsed.TotalMilliseconds:0.0} ms)"));
    }

    private void Remember(string key, JsonObject json, long rev)
    {
        if (json["metadata"] is JsonObject meta)
        {
            meta["resourceVersion"] = rev.ToString(CultureInfo.InvariantCulture);
        }
        _slices[key] = new StoredObject(key, json, rev);
        _tombstones.Remove(key);
    }

    private async Task RefreshSlicesAsync(string ns, CancellationToken ct)
    {
        var (items, _) = await client.ListAsync(Kinds.EndpointSlice, ns, ct).ConfigureAwait(false);
        foreach (var key in _slices.Keys.Where(k => k.StartsWith(Kinds.EndpointSlice.StorePrefix(ns), StringComparison.Ordinal)).ToList())
        {
            _slices.Remove(key);
        }
        foreach (var item in items)
        {
            _slices[item.Key] = item;
            _tombstones.Remove(item.Key);
        }
    }

    private void Publish()
    {
        var routes = Core.Endpoints.LoadBalancerRoutes.Compute(
            _services.Values.Select(s => new ServiceView(s.Json)),
            _nodes.Values.Select(n => new NodeView(n.Json)),
            _slices.Values.Select(s => new EndpointSliceView(s.Json)));
        if (Same(routes, _lbRoutes))
        {
            return;
        }
        _lbRoutes = routes;
        if (_changed.CurrentCount == 0)
        {
            try
            {
                _changed.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled.
            }
        }

        static bool Same(IReadOnlyList<LoadBalancerRoute> a, IReadOnlyList<LoadBalancerRoute> b) =>
            a.Count == b.Count && a.Zip(b).All(p => p.First.Destination.Equals(p.Second.Destination) && p.First.NextHops.SequenceEqual(p.Second.NextHops));
    }

    public void Dispose() => _changed.Dispose();

    private void Log(string message) =>
        log.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} endpointslice: {message}");
}
