using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Cluster;

/// <summary>A stored object with the store revision it was read at (its resourceVersion).</summary>
public sealed record StoredObject(string Key, JsonObject Json, long ModRevision);

/// <summary>An object change seen by a watch.</summary>
public sealed record ObjectEvent(WatchEventType Type, StoredObject Stored, long Revision);

/// <summary>
/// Kubernetes objects over the cluster store: JSON in, JSON out, metadata.resourceVersion kept
/// equal to the key's ModRevision (as the API server does on etcd), and read-modify-write
/// loops with compare-and-swap so concurrent writers (kubelets, controllers, the CLI) never
/// lose each other's changes.
/// </summary>
public sealed class ObjectClient(IClusterStore store)
{
    public IClusterStore Store { get; } = store;

    public async Task<StoredObject?> GetAsync(KindInfo kind, string? ns, string name, CancellationToken ct = default)
    {
        var item = await Store.GetAsync(kind.StoreKey(ns, name), ct).ConfigureAwait(false);
        return item is null ? null : Decode(item);
    }

    public async Task<(IReadOnlyList<StoredObject> Items, long Revision)> ListAsync(KindInfo kind, string? ns = null, CancellationToken ct = default)
    {
        var list = await Store.ListAsync(kind.StorePrefix(ns), ct).ConfigureAwait(false);
        return (list.Items.Select(Decode).ToList(), list.Revision);
    }

    public async IAsyncEnumerable<ObjectEvent> WatchAsync(KindInfo kind, long fromRevision, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var e in Store.WatchAsync(kind.StorePrefix(), fromRevision, ct).ConfigureAwait(false))
        {
            yield return new ObjectEvent(e.Type, Decode(e.Item), e.Revision);
        }
    }

    public Task<long> CreateAsync(JsonObject obj, CancellationToken ct = default) =>
        Store.CreateAsync(Kinds.StoreKey(obj), Encode(obj), 0, ct);

    public Task<long> UpdateAsync(StoredObject current, JsonObject updated, CancellationToken ct = default) =>
        Store.UpdateAsync(current.Key, Encode(updated), current.ModRevision, 0, ct);

    public Task<long> DeleteAsync(StoredObject current, CancellationToken ct = default) =>
        Store.DeleteAsync(current.Key, current.ModRevision, ct);

    /// <summary>
    /// Applies <paramref name="mutate"/> to the latest version until the compare-and-swap wins.
    /// Returns false when the object does not exist (or is deleted meanwhile), or when mutate
    /// returns false (nothing to change).
    /// </summary>
    public async Task<bool> UpdateLoopAsync(KindInfo kind, string? ns, string name, Func<JsonObject, bool> mutate, CancellationToken ct = default)
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var current = await GetAsync(kind, ns, name, ct).ConfigureAwait(false);
            if (current is null)
            {
                return false;
            }
            var copy = (JsonObject)current.Json.DeepClone();
            if (!mutate(copy))
            {
                return false;
            }
            try
            {
                await UpdateAsync(current, copy, ct).ConfigureAwait(false);
                return true;
            }
            catch (StoreConflictException)
            {
                // Someone wrote in between: read again and re-apply.
            }
            catch (StoreNotFoundException)
            {
                return false;
            }
        }
        throw new StoreException($"update {kind.Kind} {ns}/{name}: too much contention");
    }

    public static StoredObject Decode(StoreItem item)
    {
        var json = JsonNode.Parse(item.Value) as JsonObject
            ?? throw new StoreException($"{item.Key}: stored value is not a JSON object");
        if (json["metadata"] is JsonObject meta)
        {
            meta["resourceVersion"] = item.ModRevision.ToString(CultureInfo.InvariantCulture);
        }
        return new StoredObject(item.Key, json, item.ModRevision);
    }

    public static byte[] Encode(JsonObject obj)
    {
        // resourceVersion is derived from the store revision on read, never stored.
        if (obj["metadata"] is JsonObject meta && meta.ContainsKey("resourceVersion"))
        {
            obj = (JsonObject)obj.DeepClone();
            ((JsonObject)obj["metadata"]!).Remove("resourceVersion");
        }
        return Encoding.UTF8.GetBytes(obj.ToJsonString());
    }
}
