using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;
using Trellis.Netlink;
using Trellis.Nftables;
using Trellis.Store;

namespace Trellis.Agent.Proxy;

/// <summary>What the service proxy is told (kube-proxy's flags of the same meaning).</summary>
public sealed record ProxyOptions
{
    public IReadOnlyList<IPNetwork> ClusterCidrs { get; init; } = [];

    /// <summary>kube-apiserver's <c>--service-cluster-ip-range</c>: unallocated addresses in it are dropped.</summary>
    public IReadOnlyList<IPNetwork> ServiceCidrs { get; init; } = [];

    /// <summary><c>--masquerade-all</c>: SNAT every packet sent to a ClusterIP.</summary>
    public bool MasqueradeAll { get; init; }

    /// <summary><c>--nodeport-addresses</c>: the node addresses inside these networks accept NodePorts; empty = the node's primary addresses.</summary>
    public IReadOnlyList<IPNetwork> NodePortAddresses { get; init; } = [];

    /// <summary>A full resync (rewrite everything, delete strays) this often; partial syncs in between.</summary>
    public TimeSpan FullSyncPeriod { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How often the node's addresses are re-read even when no object changed.</summary>
    public TimeSpan Resync { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// The service proxy of trellisd: list + watch Services and EndpointSlices into a local cache, compile the
/// <c>ip trellis-proxy</c> ruleset (<see cref="ProxyCompiler"/>, pure) after every change, and reconcile it with
/// one nft transaction — partial, writing only what changed — then delete the UDP conntrack entries the change
/// made stale and update the health-check servers. On a store outage the kernel keeps its rules (traffic keeps
/// flowing); on restart the first sync replaces the table's contents atomically, never flushing it first.
/// </summary>
public sealed class ServiceProxy(string nodeName, string underlay, ProxyOptions options, IClusterStore store, TextWriter log)
{
    private readonly Dictionary<string, ServiceView> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, EndpointSliceView> _slices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _revisions = new(StringComparer.Ordinal);
    private readonly ProxyReconciler _reconciler = new(new NftClient());
    // Compiles only what changed: one Service added to 10,000 costs what it costs alone (BENCHMARKS.md).
    private readonly IncrementalProxyCompiler _compiler = new();
    private long _lastFull = Stopwatch.GetTimestamp();
    private bool _firstHealthUpdate = true;

    public async Task RunAsync(CancellationToken ct)
    {
        using var nl = RtNetlink.Open();
        using var health = new HealthCheckServer(log);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                long rev = await RelistAsync(ct).ConfigureAwait(false);
                Sync(nl, health, "initial list");
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
                            // periodic: node addresses, drift (full sync when due)
                        }
                        if (Stopwatch.GetElapsedTime(_lastFull) >= options.FullSyncPeriod)
                        {
                            _reconciler.RequestFullSync();
                        }
                        Sync(nl, health, why);
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

    private async Task<long> RelistAsync(CancellationToken ct)
    {
        var svcs = await store.ListAsync(Kinds.Service.StorePrefix(), ct).ConfigureAwait(false);
        var slices = await store.ListAsync(Kinds.EndpointSlice.StorePrefix(), ct).ConfigureAwait(false);
        lock (_services)
        {
            // Only what differs from the cache is handed to the compiler: a relist after a compaction or a store
            // outage recompiles the Services that changed meanwhile, not all of them.
            var listed = svcs.Items.Concat(slices.Items).ToList();
            var keys = listed.Select(i => i.Key).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in _revisions.Keys.Where(k => !keys.Contains(k)).ToList())
            {
                Remove(gone, long.MaxValue);
            }
            foreach (var i in listed)
            {
                Put(i);
            }
        }
        // Watch from the older of the two listings: events between them are replayed, and Put ignores
        // anything not newer than what the cache holds.
        return Math.Min(svcs.Revision, slices.Revision);
    }

    private async Task WatchAsync(long fromRevision, ChannelWriter<bool> signal, CancellationToken ct)
    {
        await foreach (var e in store.WatchAsync("/registry/", fromRevision, ct).ConfigureAwait(false))
        {
            string key = e.Item.Key;
            if (!key.StartsWith(Kinds.Service.StorePrefix(), StringComparison.Ordinal) && !key.StartsWith(Kinds.EndpointSlice.StorePrefix(), StringComparison.Ordinal))
            {
                continue;
            }
            bool changed;
            lock (_services)
            {
                changed = e.Type == WatchEventType.Put ? Put(e.Item) : Remove(key, e.Revision);
            }
            if (changed)
            {
                signal.TryWrite(true);
            }
        }
    }

    private bool Put(StoreItem item)
    {
        if (_revisions.TryGetValue(item.Key, out long have) && have >= item.ModRevision)
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
        _revisions[item.Key] = item.ModRevision;
        if (item.Key.StartsWith(Kinds.Service.StorePrefix(), StringComparison.Ordinal))
        {
            var view = new ServiceView(json);
            if (_services.Remove(item.Key, out var old))
            {
                _compiler.RemoveService(old.Namespace, old.Name);
            }
            _services[item.Key] = view;
            _compiler.PutService(view);
        }
        else
        {
            var view = new EndpointSliceView(json);
            _slices[item.Key] = view;
            _compiler.PutSlice(item.Key, view);
        }
        return true;
    }

    private bool Remove(string key, long revision)
    {
        if (_revisions.TryGetValue(key, out long have) && have > revision)
        {
            return false;
        }
        _revisions.Remove(key);
        if (_services.Remove(key, out var svc))
        {
            _compiler.RemoveService(svc.Namespace, svc.Name);
            return true;
        }
        if (_slices.Remove(key))
        {
            _compiler.RemoveSlice(key);
            return true;
        }
        return false;
    }

    private void Sync(RtNetlink nl, HealthCheckServer health, string why)
    {
        var started = Stopwatch.GetTimestamp();
        var nodeIps = NodeAddresses(nl);
        if (nodeIps.Count == 0)
        {
            Log($"{underlay} has no IPv4 address yet; not syncing");
            return;
        }
        ProxyUpdate update;
        int serviceCount;
        lock (_services)
        {
            _compiler.SetGlobals(new ProxyInput
            {
                NodeName = nodeName,
                NodeIPs = nodeIps,
                ClusterCidrs = options.ClusterCidrs,
                ServiceCidrs = options.ServiceCidrs,
                MasqueradeAll = options.MasqueradeAll,
                // kube-proxy's --nodeport-addresses: every address of the node (any interface, not loopback)
                // inside the given networks; none given: the primary address only.
                NodePortAddresses = options.NodePortAddresses.Count == 0 ? []
                    : nl.AddrList(null, AddressFamily.InterNetwork).Select(a => a.Cidr.Address)
                        .Where(ip => !IPAddress.IsLoopback(ip) && options.NodePortAddresses.Any(n => n.Contains(ip))).Distinct().ToList(),
            });
            update = _compiler.Compile();
            serviceCount = _compiler.ServiceCount;
        }
        var compiled = Stopwatch.GetElapsedTime(started);
        if (update.Problems.Count > 0)
        {
            Log("proxy: skipped: " + string.Join("; ", update.Problems));
        }
        ProxySyncResult result;
        try
        {
            result = _reconciler.Sync(_compiler, update);
        }
        catch (NftException e)
        {
            Log($"proxy: nft refused the sync ({why}): {e.Message}; the next sync is a full one");
            return;
        }
        if (result.Kind == "full")
        {
            _lastFull = Stopwatch.GetTimestamp();
        }
        // Only the changed Services' ports can have stale UDP entries (StaleConntrack compares per service port).
        foreach (var d in StaleConntrack.Find(update.RemovedPorts, update.AddedPorts))
        {
            RunConntrack(d);
        }
        bool HealthChecked(ProxyServicePort p) => p.ExternalPolicyLocal && p.HealthCheckNodePort is not null;
        if (update.Everything || update.RemovedPorts.Any(HealthChecked) || update.AddedPorts.Any(HealthChecked) || _firstHealthUpdate)
        {
            _firstHealthUpdate = false;
            health.Update(_compiler.ServicePorts
                .Where(HealthChecked)
                .GroupBy(p => p.HealthCheckNodePort!.Value)
                .ToDictionary(g => g.Key, g => (g.First().Namespace, g.First().Name, g.SelectMany(p => p.LocalEndpoints).Select(e => e.Ip).Distinct().Count())));
        }
        if (result.Kind != "none")
        {
            Log(string.Create(CultureInfo.InvariantCulture,
                $"proxy: {result.Kind} sync ({why}): {serviceCount} services, {result.TransactionBytes} bytes; compile {compiled.TotalMilliseconds:F1} ms, nft {result.Elapsed.TotalMilliseconds:F1} ms"));
        }
        if (result.TransactionBytes > 1 << 20)
        {
            // A big full sync (14 MB of text at 10,000 Services, twice that as UTF-16, plus nft's output) leaves
            // tens of MB of dead large objects that the GC would otherwise keep committed for a long time:
            // compact once and give the memory back. Full syncs are rare (start, periodic resync), so the pause
            // is cheap next to the nft transaction itself.
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
    }

    private List<IPAddress> NodeAddresses(RtNetlink nl)
    {
        var link = nl.LinkGetByName(underlay);
        return link is null ? [] : nl.AddrList(link.Index, AddressFamily.InterNetwork).Select(a => a.Cidr.Address).ToList();
    }

    private void RunConntrack(ConntrackDeletion d)
    {
        try
        {
            var psi = new ProcessStartInfo("conntrack") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in d.ToArgs())
            {
                psi.ArgumentList.Add(a);
            }
            using var p = Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            // conntrack exits 1 when no entry matched ("0 flow entries have been deleted"): nothing to do.
            if (p.ExitCode != 0 && !err.Contains("0 flow entries", StringComparison.Ordinal))
            {
                Log($"{d}: exit {p.ExitCode}: {err.Trim()}");
            }
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Log($"{d}: cannot run conntrack: {e.Message}");
        }
    }

    private void Log(string message) =>
        log.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} trellisd {nodeName}: {message}");
}
