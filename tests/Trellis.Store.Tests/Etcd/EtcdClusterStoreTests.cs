using Trellis.Store.Tests.Contract;

namespace Trellis.Store.Tests.Etcd;

/// <summary>
/// The contract against a real single-member etcd: a fresh member per store (revisions,
/// leases and compaction are store-wide, so tests cannot share one), started in ~0.1 s on tmpfs.
/// </summary>
[EtcdRequired]
public sealed class EtcdClusterStoreTests : ClusterStoreContract
{
    private readonly List<EtcdCluster> _clusters = [];

    /// <summary>etcd's empty store is at revision 1; its first write is revision 2.</summary>
    protected override long InitialRevision => 1;

    /// <summary>etcd's TTLs are whole seconds, run by the leader's real clock.</summary>
    // Real time (etcd's leader clock), so it must tolerate a loaded 2-core CI machine: at 1 s a
    // renewal due at 0.6 s could arrive after expiry when the test assemblies run in parallel.
    protected override TimeSpan LeaseTtl => TimeSpan.FromSeconds(2);

    protected override bool ExpiryIsExactOnRead => false;

    protected override bool WatchEventsArePushed => true;

    /// <summary>
    /// A real wait, plus a little: our timer may fire a millisecond early and the leader's clock
    /// started the TTL when it applied the grant, so "exactly the TTL" needs a margin to be past it.
    /// </summary>
    protected override Task LetLeaseTimePassAsync(TimeSpan span) => Task.Delay(span + TimeSpan.FromMilliseconds(50));

    private EtcdCluster Main => _clusters[0];

    public override async Task InitializeAsync()
    {
        _clusters.Add(await EtcdCluster.StartAsync(1, EtcdTiming.Single));
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        try
        {
            await base.DisposeAsync();
        }
        finally
        {
            foreach (var cluster in _clusters)
            {
                await cluster.DisposeAsync();
            }
        }
    }

    /// <summary>The first store of a test uses the member InitializeAsync started; any later one gets a member of its own.</summary>
    protected override IClusterStore CreateStore(ClusterStoreOptions options)
    {
        if (Store is not null)
        {
            // Synchronous by the contract's signature; off the test's synchronization context.
            _clusters.Add(Task.Run(() => EtcdCluster.StartAsync(1, EtcdTiming.Single)).GetAwaiter().GetResult());
        }
        return ClusterStore.Open(_clusters[^1].Url, options);
    }

    /// <summary>Another client (its own connections) of the test's etcd.</summary>
    protected override IClusterStore OpenPeerClient(ClusterStoreOptions options) => ClusterStore.Open(Main.Url, options);

    protected override Task CompactAsync(IClusterStore store, long revision) => ((EtcdClusterStore)store).CompactAsync(revision);
}
