using Microsoft.Extensions.Time.Testing;
using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.Contract;

/// <summary>
/// The behaviour every <see cref="IClusterStore"/> backend must have, written once. A backend's
/// test class subclasses this and says how to create a store, open a second client of it, and
/// compact it; every test here then runs against that backend (SQLite, the in-memory fake, etcd).
/// </summary>
/// <remarks>
/// <para>xUnit makes a new instance per test, so each test gets a fresh, empty store on a fake clock.
/// The partial files group the tests by concern: reads and writes, lists, watches, leases,
/// compaction, bad input and concurrency.</para>
/// <para>Where real backends legitimately differ, the suite asks the subclass instead of
/// assuming the embedded backends' answer: <see cref="InitialRevision"/> (etcd starts at 1),
/// how lease time passes (<see cref="LeaseTtl"/>, <see cref="LetLeaseTimePassAsync"/>,
/// <see cref="ExpiryIsExactOnRead"/>: etcd expires leases on its own clock), and
/// <see cref="WatchEventsArePushed"/> (etcd streams events to an open watch).</para>
/// <para>Tests are <see cref="ContractFactAttribute"/>s so that a backend needing a server
/// the machine lacks is skipped with a reason (<see cref="ContractPrerequisiteAttribute"/>).</para>
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

    /// <summary>
    /// The revision of a new, never-written store: 0 for the embedded backends; 1 for etcd, whose
    /// first write is revision 2. Every write still advances it by exactly one.
    /// </summary>
    protected virtual long InitialRevision => 0;

    /// <summary>The TTL the lease tests grant; the times they let pass are fractions of it.</summary>
    protected virtual TimeSpan LeaseTtl => TimeSpan.FromSeconds(10);

    /// <summary>
    /// Lets lease time pass: advances the fake clock for backends that expire leases by
    /// <see cref="ClusterStoreOptions.TimeProvider"/>; a backend whose server runs leases on its
    /// own clock (etcd) waits in real time instead, with a short <see cref="LeaseTtl"/>.
    /// </summary>
    protected virtual Task LetLeaseTimePassAsync(TimeSpan span)
    {
        Clock.Advance(span);
        return Task.CompletedTask;
    }

    /// <summary>
    /// True when reads check lease expiry themselves, so a key is gone the instant its lease's TTL
    /// has passed (SQLite, the fake). etcd's leader revokes expired leases on its own schedule
    /// (every 500 ms), so for it the tests wait for the deletion instead of expecting it at once.
    /// </summary>
    protected virtual bool ExpiryIsExactOnRead => true;

    /// <summary>
    /// False when a watch reads history only as the caller asks for the next event (SQLite, the
    /// fake), so compaction can overtake a watcher between two events; true when the server
    /// streams events to an open watch as they happen (etcd), so a connected watcher already
    /// holds what a later compaction removes.
    /// </summary>
    protected virtual bool WatchEventsArePushed => false;

    /// <summary>The revision of the store's <paramref name="n"/>th write.</summary>
    protected long Rev(long n) => InitialRevision + n;

    /// <summary>Revisions of writes <paramref name="first"/> to <paramref name="first"/> + count − 1.</summary>
    protected IEnumerable<long> Revs(int first, int count) => Enumerable.Range(first, count).Select(i => Rev(i));

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

    /// <summary>
    /// Asserts that <paramref name="key"/> is gone after its lease expired: at once where reads
    /// check expiry (<see cref="ExpiryIsExactOnRead"/>), otherwise once the server has revoked it.
    /// </summary>
    protected async Task AssertExpiredAsync(IClusterStore store, string key)
    {
        if (ExpiryIsExactOnRead)
        {
            Assert.Null(await store.GetAsync(key));
            return;
        }
        await EventuallyAsync(async () => await store.GetAsync(key) is null, $"{key} to be deleted with its expired lease");
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
