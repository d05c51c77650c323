using System.Net;
using System.Net.Sockets;

namespace Trellis.Store;

/// <summary>Tuning shared by every backend. The defaults suit a lab or a small cluster.</summary>
public sealed class ClusterStoreOptions
{
    /// <summary>
    /// The clock for lease expiry, the lease sweep and compaction. Tests inject a fake one and
    /// advance it instead of sleeping. Watch polling paces real I/O and always uses real time.
    /// etcd expires leases on its own (real) clock; there this clock drives only compaction.
    /// </summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>How often each open store deletes the keys of expired leases (reads and writes also check). Not used by etcd, whose leader expires leases.</summary>
    public TimeSpan LeaseSweepInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How often each open store considers compacting history.</summary>
    public TimeSpan CompactionInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Compaction always keeps at least this many of the newest revisions watchable (≥ 1).</summary>
    public long CompactionMinRetainedRevisions { get; init; } = 10_000;

    /// <summary>
    /// ... and every revision younger than this, so a watcher that was away (restart, network
    /// blip) for less than this can resume instead of re-listing.
    /// </summary>
    public TimeSpan CompactionMinRetainedAge { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>SQLite: how often a store with active watchers checks the file for other processes' writes.</summary>
    public TimeSpan WatchPollInterval { get; init; } = TimeSpan.FromMilliseconds(25);

    /// <summary>
    /// etcd: opens the TCP connection to one endpoint of the store URL, instead of the store's own
    /// <c>connect(2)</c> from this process's network namespace. It receives the endpoint as written
    /// in the URL (host name or IP literal, port) and returns a <em>connected</em> stream socket;
    /// the store then owns it (sets TCP_NODELAY and keep-alive, closes it). Throwing
    /// <see cref="SocketException"/> counts as "this endpoint is down": the next one is tried.
    /// </summary>
    /// <remarks>
    /// The case it exists for: the lab's CLI runs in the host namespace while the lab's etcd
    /// members listen on the underlay, which the host cannot route to. A socket belongs to the
    /// namespace it was <em>created</em> in, so the hook creates it on a thread that entered the
    /// underlay and connects it from anywhere:
    /// <code>
    /// ConnectSocket = async (endpoint, ct) =>
    /// {
    ///     var socket = underlay.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
    ///     try { await socket.ConnectAsync(endpoint, ct); return socket; }
    ///     catch { socket.Dispose(); throw; }
    /// }
    /// </code>
    /// (<c>underlay</c> is a <c>Trellis.Netlink.NetNs</c>; the Store itself knows nothing of
    /// namespaces.) A host name in the URL is resolved where the hook resolves it: in the
    /// example, by the calling process, in the host namespace. Not used for <c>etcd+unix://</c>.
    /// </remarks>
    public Func<DnsEndPoint, CancellationToken, ValueTask<Socket>>? ConnectSocket { get; init; }

    /// <summary>etcd: how long connecting to one endpoint may take before the next one is tried.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// etcd: how long one operation may take, across retries and endpoints (and how long a watch
    /// may stay disconnected), before it fails with <see cref="StoreUnavailableException"/>.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    internal ClusterStoreOptions Validated()
    {
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
        RequirePositive(LeaseSweepInterval, nameof(LeaseSweepInterval));
        RequirePositive(CompactionInterval, nameof(CompactionInterval));
        RequirePositive(WatchPollInterval, nameof(WatchPollInterval));
        RequirePositive(ConnectTimeout, nameof(ConnectTimeout));
        RequirePositive(RequestTimeout, nameof(RequestTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(CompactionMinRetainedRevisions, 1, nameof(CompactionMinRetainedRevisions));
        ArgumentOutOfRangeException.ThrowIfLessThan(CompactionMinRetainedAge, TimeSpan.Zero, nameof(CompactionMinRetainedAge));
        return this;
    }

    private static void RequirePositive(TimeSpan value, string name) =>
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero, name);
}
