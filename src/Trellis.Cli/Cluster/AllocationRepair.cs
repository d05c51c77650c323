using System.Text.Json.Nodes;
using Trellis.Core.Cluster;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Cluster;

/// <summary>What one repair pass did.</summary>
/// <param name="Removed">Keys whose owner is gone or no longer uses the value (leaks), now deleted.</param>
/// <param name="Restored">Values a Service uses that had no key (e.g. stored before allocation existed), now recorded.</param>
/// <param name="Conflicts">Values two Services use at once: reported, left alone (someone must change one of them).</param>
public sealed record RepairReport(IReadOnlyList<string> Removed, IReadOnlyList<string> Restored, IReadOnlyList<string> Conflicts)
{
    public bool IsClean => Removed.Count == 0 && Restored.Count == 0 && Conflicts.Count == 0;
}

/// <summary>
/// The API server's allocation repair controllers (ClusterIP and NodePort "repair" loops), as one pass the
/// lab controller calls periodically: allocation keys whose owning Service no longer exists (or is another
/// Service of the same name now, or no longer uses the value) are deleted, and values Services use that have
/// no key get one. A key younger than <c>minAge</c> is left alone even if unused: an apply that allocated it
/// may not have written its Service yet (the apiserver waits several repair intervals for the same reason).
/// </summary>
public static class AllocationRepair
{
    public static readonly TimeSpan DefaultMinAge = TimeSpan.FromMinutes(1);

    public static async Task<RepairReport> RunOnceAsync(IClusterStore store, TimeSpan? minAge = null, TimeProvider? time = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        time ??= TimeProvider.System;
        var grace = minAge ?? DefaultMinAge;
        var now = time.GetUtcNow();
        var config = await ClusterConfigStore.LoadAsync(store, ct).ConfigureAwait(false);
        var (services, _) = await new ObjectClient(store).ListAsync(Kinds.Service, null, ct).ConfigureAwait(false);

        // Who uses what, by the Services themselves (the truth the keys must follow).
        var users = new Dictionary<Allocation, List<AllocationOwner>>();
        foreach (var svc in services)
        {
            var owner = ServiceAllocator.OwnerOf(svc.Json, now);
            foreach (var a in ServiceAllocationPlanner.Held(config, svc.Json))
            {
                if (!users.TryGetValue(a, out var list))
                {
                    users[a] = list = [];
                }
                list.Add(owner);
            }
        }

        var removed = new List<string>();
        var restored = new List<string>();
        var conflicts = new List<string>();
        var keyed = new HashSet<Allocation>();
        var keys = await store.ListAsync(AllocationKeys.Prefix, ct).ConfigureAwait(false);
        foreach (var item in keys.Items)
        {
            if (AllocationKeys.Parse(item.Key) is not { } a)
            {
                continue; // not an allocation key: not ours to judge
            }
            var holder = AllocationKeys.DecodeOwner(item.Value);
            if (holder is not null && users.TryGetValue(a, out var owners) && owners.Any(holder.SameService))
            {
                keyed.Add(a);
                continue;
            }
            if (holder is not null && now - holder.AllocatedAt < grace)
            {
                keyed.Add(a); // young: its Service may be on its way
                continue;
            }
            try
            {
                await store.DeleteAsync(item.Key, item.ModRevision, ct).ConfigureAwait(false);
                removed.Add(item.Key);
            }
            catch (StoreException e) when (e is StoreNotFoundException or StoreConflictException)
            {
                // Released or re-claimed meanwhile: the next pass looks again.
            }
        }

        foreach (var (a, owners) in users)
        {
            if (owners.Count > 1)
            {
                conflicts.Add($"{a.Key}: used by {string.Join(", ", owners.Select(o => "service " + o.Service))}");
            }
            if (keyed.Contains(a))
            {
                continue;
            }
            try
            {
                await store.CreateAsync(a.Key, AllocationKeys.EncodeOwner(owners[0]), 0, ct).ConfigureAwait(false);
                restored.Add(a.Key);
            }
            catch (StoreConflictException)
            {
                // Allocated meanwhile by an apply: the next pass checks who holds it.
            }
        }
        return new RepairReport(removed, restored, conflicts);
    }
}
