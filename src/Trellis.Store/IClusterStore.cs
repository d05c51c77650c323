namespace Trellis.Store;

/// <summary>
/// The cluster datastore: a key/value store with etcd v3 semantics. One store-wide revision
/// counter is incremented by every write; each key carries the revision that created it and the
/// one that last modified it, so writers compare-and-swap on <see cref="StoreItem.ModRevision"/>
/// and watchers resume from the last revision they saw without missing or repeating an event.
/// </summary>
/// <remarks>
/// Keys are absolute, '/'-separated strings (<c>/registry/pods/demo/web-1</c>); they sort by
/// Unicode code point (the order of their UTF-8 bytes, as etcd sorts). Values are opaque bytes
/// (Kubernetes objects as JSON). Every backend passes the same contract test suite
/// (<c>ClusterStoreContract</c>), so callers never depend on which one they were given.
/// </remarks>
public interface IClusterStore : IAsyncDisposable
{
    /// <summary>The key's current item, or null when it does not exist.</summary>
    Task<StoreItem?> GetAsync(string key, CancellationToken ct = default);

    /// <summary>
    /// Every key under <paramref name="prefix"/> (a plain string prefix: <c>/registry/pods/</c>),
    /// sorted by key, read from one consistent snapshot whose revision is returned with them:
    /// watching from that revision continues exactly where the list left off.
    /// </summary>
    Task<StoreList> ListAsync(string prefix, CancellationToken ct = default);

    /// <summary>Creates the key; returns the new revision. <see cref="StoreConflictException"/> when it exists.</summary>
    /// <param name="leaseId">0 for none; otherwise the key is deleted when that lease expires or is revoked.</param>
    Task<long> CreateAsync(string key, ReadOnlyMemory<byte> value, long leaseId = 0, CancellationToken ct = default);

    /// <summary>
    /// Replaces the value when the key's ModRevision still equals <paramref name="expectedModRevision"/>;
    /// returns the new revision. <see cref="StoreConflictException"/> (carrying the current item) when it
    /// moved on, <see cref="StoreNotFoundException"/> when the key is gone.
    /// </summary>
    /// <param name="leaseId">The lease the key is attached to from now on; 0 detaches it (as an etcd put does).</param>
    Task<long> UpdateAsync(string key, ReadOnlyMemory<byte> value, long expectedModRevision, long leaseId = 0, CancellationToken ct = default);

    /// <summary>
    /// Deletes the key; returns the delete's revision. <paramref name="expectedModRevision"/> 0 deletes
    /// unconditionally; otherwise as <see cref="UpdateAsync"/>.
    /// </summary>
    Task<long> DeleteAsync(string key, long expectedModRevision = 0, CancellationToken ct = default);

    /// <summary>
    /// Every event under <paramref name="prefix"/> with a revision greater than
    /// <paramref name="fromRevision"/>: first the retained history, then live events, in revision
    /// order, without gaps or duplicates. The sequence ends only by cancellation or an exception;
    /// <see cref="StoreCompactedException"/> means the history the caller asked for is gone and it
    /// must re-list. Arguments are validated when this is called, I/O errors surface while iterating.
    /// </summary>
    IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken ct = default);

    /// <summary>Grants a lease that expires <paramref name="ttl"/> from now unless kept alive; returns its id (never 0).</summary>
    Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken ct = default);

    /// <summary>Restarts the lease's TTL. <see cref="StoreNotFoundException"/> when it expired or was revoked.</summary>
    Task KeepAliveAsync(long leaseId, CancellationToken ct = default);

    /// <summary>Ends the lease now, deleting its keys (each a Delete event). <see cref="StoreNotFoundException"/> when unknown.</summary>
    Task RevokeLeaseAsync(long leaseId, CancellationToken ct = default);

    /// <summary>The revision of the latest write (the backend's initial revision — 0 for SQLite, 1 for etcd — when nothing was ever written).</summary>
    Task<long> CurrentRevisionAsync(CancellationToken ct = default);
}

/// <summary>One key's state.</summary>
/// <param name="CreateRevision">The revision that created the key (a delete and re-create gives a new one).</param>
/// <param name="ModRevision">The revision of its latest write: what compare-and-swap compares.</param>
/// <param name="LeaseId">The lease the key lives under, or 0.</param>
public sealed record StoreItem(string Key, byte[] Value, long CreateRevision, long ModRevision, long LeaseId);

/// <summary>A prefix listing and the store revision it was read at.</summary>
public sealed record StoreList(IReadOnlyList<StoreItem> Items, long Revision);

public enum WatchEventType
{
    Put,
    Delete,
}

/// <summary>
/// One change. For <see cref="WatchEventType.Put"/> <see cref="Item"/> is the new state and
/// <see cref="Revision"/> equals its ModRevision; for <see cref="WatchEventType.Delete"/>
/// <see cref="Item"/> is the last state before the delete (value, revisions, lease) and
/// <see cref="Revision"/> is the delete's own revision.
/// </summary>
public sealed record WatchEvent(WatchEventType Type, StoreItem Item, long Revision);
