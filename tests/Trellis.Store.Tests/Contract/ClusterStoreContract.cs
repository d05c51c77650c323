using Microsoft.Extensions.Time.Testing;
using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.Contract;

/// <summary>
/// The behaviour every <see cref="IClusterStore"/> backend must have, written once. A backend's
/// test class subclasses this and says how to create a store, open a second client of it, and
/// compact it; every test here then runs against that backend. (etcd is next: it subclasses this
/// too, and passes these tests unchanged.)
/// </summary>
/// <remarks>
/// xUnit makes a new instance per test, so each test gets a fresh, empty store on a fake clock.
/// The partial files group the tests by concern: reads and writes, lists, watches, leases,
/// compaction, bad input and concurrency.
/// </remarks>
public abstract partial class ClusterStoreContract : IAsyncLifetime
{
    private readonly List<IClusterStore> _peers = [];

    /// <summary>The clock the store's leases and compaction run on; tests advance it instead of sleeping.</summary>
    protected FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));

    /// <summary>The store under test (fresh and empty).</summary>
    protected IClusterStore Store { get; private set; } = null!;

    /// <summary>The options a test's store is created with; a test class may adjust them.</summary>
    protected virtual ClusterStoreOptions Options => new()
    {
        TimeProvider = Clock,
        // Long enough never to fire by accident in a test that advances the clock by seconds.
        CompactionInterval = TimeSpan.FromHours(1),
    };

    /// <summary>A new, empty store of the backend under test.</summary>
    protected abstract IClusterStore CreateStore(ClusterStoreOptions options);

    /// <summary>
    /// Another client of <see cref="Store"/>'s data (for SQLite: another connection to the same
    /// file, as another process would have). Disposed with the test.
    /// </summary>
    protected abstract IClusterStore OpenPeerClient(ClusterStoreOptions options);

    /// <summary>The backend's administrative compaction (not part of <see cref="IClusterStore"/>).</summary>
    protected abstract Task CompactAsync(IClusterStore store, long revision);

    public virtual Task InitializeAsync()
    {
        Store = CreateStore(Options);
        return Task.CompletedTask;
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var peer in _peers)
        {
            await peer.DisposeAsync();
        }
        await Store.DisposeAsync();
    }

    protected IClusterStore OpenPeer()
    {
        var peer = OpenPeerClient(Options);
        _peers.Add(peer);
        return peer;
    }

    protected static byte[] Utf8(string text) => Bytes.Utf8(text);

    /// <summary>Compare-and-swap increment of a decimal counter value, retrying on conflict.</summary>
    protected static async Task<long> IncrementAsync(IClusterStore store, string key)
    {
        var current = await store.GetAsync(key) ?? throw new InvalidOperationException($"{key} missing");
        while (true)
        {
            long next = long.Parse(current.Text(), System.Globalization.CultureInfo.InvariantCulture) + 1;
            try
            {
                return await store.UpdateAsync(key, Utf8(next.ToString(System.Globalization.CultureInfo.InvariantCulture)), current.ModRevision);
            }
            catch (StoreConflictException ex)
            {
                current = ex.Current!;
            }
        }
    }

    /// <summary>Waits (real time) until <paramref name="condition"/> holds, failing after a generous bound.</summary>
    protected static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + WatchReader.DefaultTimeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }
            await Task.Delay(10);
        }
    }
}
