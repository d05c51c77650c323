using Trellis.Core.Cluster;
using Trellis.Store;

namespace Trellis.Cli.Cluster;

/// <summary>Reads and writes <see cref="ClusterNetworkConfig"/> at <see cref="ClusterNetworkConfig.Key"/>.</summary>
public static class ClusterConfigStore
{
    /// <summary>The stored config; <see cref="ClusterNetworkConfig.Default"/> when none is stored (store-only use).</summary>
    public static async Task<ClusterNetworkConfig> LoadAsync(IClusterStore store, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var item = await store.GetAsync(ClusterNetworkConfig.Key, ct).ConfigureAwait(false);
        if (item is null)
        {
            return ClusterNetworkConfig.Default;
        }
        try
        {
            return ClusterNetworkConfig.Parse(item.Value);
        }
        catch (FormatException e)
        {
            // Store contents are untrusted: a broken config stops admission with the field named, never a crash.
            throw new StoreException($"cluster network config: {e.Message}", e);
        }
    }

    /// <summary>Creates or replaces the stored config (what `lab up` does with the lab's settings).</summary>
    public static async Task SaveAsync(IClusterStore store, ClusterNetworkConfig config, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(config);
        byte[] value = config.ToJson();
        for (int attempt = 0; attempt < 10; attempt++)
        {
            var item = await store.GetAsync(ClusterNetworkConfig.Key, ct).ConfigureAwait(false);
            try
            {
                if (item is null)
                {
                    await store.CreateAsync(ClusterNetworkConfig.Key, value, 0, ct).ConfigureAwait(false);
                }
                else if (!item.Value.AsSpan().SequenceEqual(value))
                {
                    await store.UpdateAsync(ClusterNetworkConfig.Key, value, item.ModRevision, 0, ct).ConfigureAwait(false);
                }
                return;
            }
            catch (StoreException e) when (e is StoreConflictException or StoreNotFoundException)
            {
                // Written meanwhile by another `lab up`: read again.
            }
        }
        throw new StoreException($"write {ClusterNetworkConfig.Key}: too much contention");
    }
}
