namespace Trellis.Store.Tests.Support;

/// <summary>
/// A second "client" of an in-process store: the same instance, but disposing it leaves the
/// store open, as closing one connection leaves a database up.
/// </summary>
internal sealed class SharedClient(IClusterStore inner) : IClusterStore
{
    public Task<StoreItem?> GetAsync(string key, CancellationToken ct = default) => inner.GetAsync(key, ct);

    public Task<StoreList> ListAsync(string prefix, CancellationToken ct = default) => inner.ListAsync(prefix, ct);

    public Task<long> CreateAsync(string key, ReadOnlyMemory<byte> value, long leaseId = 0, CancellationToken ct = default) => inner.CreateAsync(key, value, leaseId, ct);

    public Task<long> UpdateAsync(string key, ReadOnlyMemory<byte> value, long expectedModRevision, long leaseId = 0, CancellationToken ct = default) =>
        inner.UpdateAsync(key, value, expectedModRevision, leaseId, ct);

    public Task<long> DeleteAsync(string key, long expectedModRevision = 0, CancellationToken ct = default) => inner.DeleteAsync(key, expectedModRevision, ct);

    public IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken ct = default) => inner.WatchAsync(prefix, fromRevision, ct);

    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken ct = default) => inner.GrantLeaseAsync(ttl, ct);

    public Task KeepAliveAsync(long leaseId, CancellationToken ct = default) => inner.KeepAliveAsync(leaseId, ct);

    public Task RevokeLeaseAsync(long leaseId, CancellationToken ct = default) => inner.RevokeLeaseAsync(leaseId, ct);

    public Task<long> CurrentRevisionAsync(CancellationToken ct = default) => inner.CurrentRevisionAsync(ct);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
