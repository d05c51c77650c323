using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Trellis.Core.Dns;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.DnsServer;

/// <summary>
/// Keeps <see cref="Current"/> equal to the zone compiled from the store: lists Namespaces, Services,
/// EndpointSlices (and Pods for <c>--pods verified</c>), then watches them, recompiling after each burst of
/// events and swapping the snapshot with one reference write. Queries read <see cref="Current"/> without locks.
/// </summary>
public sealed class ZoneWatcher
{
    private readonly IClusterStore _store;
    private readonly DnsZoneOptions _options;
    private readonly DnsMetrics _metrics;
    private readonly TextWriter _log;
    private readonly string[] _prefixes;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile DnsZone _current;

    public ZoneWatcher(IClusterStore store, DnsZoneOptions options, DnsMetrics metrics, TextWriter log)
    {
        _store = store;
        _options = options;
        _metrics = metrics;
        _log = log;
        _current = DnsZone.Empty(options);
        _prefixes = options.Pods == PodRecordsMode.Verified
            ? [Kinds.Namespace.StorePrefix(), Kinds.Service.StorePrefix(), Kinds.EndpointSlice.StorePrefix(), Kinds.Pod.StorePrefix()]
            : [Kinds.Namespace.StorePrefix(), Kinds.Service.StorePrefix(), Kinds.EndpointSlice.StorePrefix()];
    }

    public DnsZone Current => _current;

    /// <summary>Completes once the first full snapshot is serving (readiness).</summary>
    public Task Ready => _ready.Task;

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
                _log.WriteLine("trellis-dns: watch history compacted; re-listing");
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is StoreException or IOException)
            {
                // Keep serving the last snapshot while the store is away.
                _log.WriteLine($"trellis-dns: store: {e.Message}; retrying in 1 s");
                await Task.Delay(1000, ct).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // the watcher must outlive any one bad event: log it whole, re-list, keep serving
            catch (Exception e)
#pragma warning restore CA1031
            {
                _log.WriteLine($"trellis-dns: unexpected error while loading the zone (re-listing in 1 s): {e}");
                await Task.Delay(1000, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task ListAndWatchAsync(CancellationToken ct)
    {
        var objects = new Dictionary<string, object>(StringComparer.Ordinal);
        var listedAt = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var prefix in _prefixes)
        {
            var list = await _store.ListAsync(prefix, ct).ConfigureAwait(false);
            listedAt[prefix] = list.Revision;
            foreach (var item in list.Items)
            {
                if (Parse(item) is { } obj)
                {
                    objects[item.Key] = obj;
                }
            }
        }
        long revision = listedAt.Values.Max();
        Swap(objects, revision, Stopwatch.GetTimestamp());
        // The list's JSON and the first compile leave megabytes of garbage that a mostly idle server would
        // carry in its RSS until gen0 fills; return it now, once per (re)list.
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        _metrics.Ready = true;
        _ready.TrySetResult();

        // One watch over the common parent from the oldest list revision; an event a list already reflects
        // (revision at or below that prefix's list revision) is skipped, so nothing is missed or applied twice.
        var events = Channel.CreateUnbounded<(WatchEvent Event, long Received)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pump = PumpAsync(listedAt.Values.Min(), events.Writer, stop.Token);
        try
        {
            while (await events.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                long firstReceived = 0;
                bool changed = false;
                while (events.Reader.TryRead(out var e))
                {
                    string? prefix = Array.Find(_prefixes, p => e.Event.Item.Key.StartsWith(p, StringComparison.Ordinal));
                    if (prefix is null || e.Event.Revision <= listedAt[prefix])
                    {
                        continue;
                    }
                    if (firstReceived == 0)
                    {
                        firstReceived = e.Received;
                    }
                    revision = Math.Max(revision, e.Event.Revision);
                    changed = true;
                    if (e.Event.Type == WatchEventType.Delete)
                    {
                        objects.Remove(e.Event.Item.Key);
                    }
                    else if (Parse(e.Event.Item) is { } obj)
                    {
                        objects[e.Event.Item.Key] = obj;
                    }
                }
                if (changed)
                {
                    Swap(objects, revision, firstReceived);
                }
            }
            await pump.ConfigureAwait(false); // surfaces the watch's exception
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await pump.ConfigureAwait(false);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                // the pump ends with our cancellation or with the error already being handled
            }
        }
    }

    private async Task PumpAsync(long fromRevision, ChannelWriter<(WatchEvent, long)> writer, CancellationToken ct)
    {
        try
        {
            await foreach (var e in _store.WatchAsync("/registry/", fromRevision, ct).ConfigureAwait(false))
            {
                writer.TryWrite((e, Stopwatch.GetTimestamp()));
            }
            writer.TryComplete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
            throw;
        }
    }

    private void Swap(Dictionary<string, object> objects, long revision, long receivedTimestamp)
    {
        var zone = DnsZone.Compile(
            objects.Values.OfType<string>(),
            objects.Values.OfType<DnsService>(),
            objects.Values.OfType<DnsEndpointSlice>(),
            objects.Values.OfType<DnsPod>(),
            _options,
            revision);
        _current = zone;
        _metrics.Snapshot(zone, Stopwatch.GetElapsedTime(receivedTimestamp));
    }

    /// <summary>The object's DNS-relevant fields: a namespace name, <see cref="DnsService"/>, <see cref="DnsEndpointSlice"/> or <see cref="DnsPod"/>.</summary>
    private object? Parse(StoreItem item)
    {
        try
        {
            if (JsonNode.Parse(item.Value) is JsonObject obj)
            {
                string key = item.Key;
                return key.StartsWith(Kinds.Namespace.StorePrefix(), StringComparison.Ordinal) ? new NamespaceView(obj).Name
                    : key.StartsWith(Kinds.Service.StorePrefix(), StringComparison.Ordinal) ? DnsService.From(new ServiceView(obj))
                    : key.StartsWith(Kinds.EndpointSlice.StorePrefix(), StringComparison.Ordinal) ? DnsEndpointSlice.From(new EndpointSliceView(obj))
                    : key.StartsWith(Kinds.Pod.StorePrefix(), StringComparison.Ordinal) ? DnsPod.From(new PodView(obj))
                    : null;
            }
        }
        catch (JsonException)
        {
        }
        _log.WriteLine($"trellis-dns: {item.Key}: stored value is not a JSON object; ignored");
        return null;
    }
}
