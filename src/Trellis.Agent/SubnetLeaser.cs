using System.Net;
using Trellis.Core.Leases;
using Trellis.Core.Routing;
using Trellis.Store;

namespace Trellis.Agent;

/// <summary>The outcome of one acquisition: the lease held, or why there is none.</summary>
public sealed record LeaseOutcome(SubnetLease? Lease, long Revision, SubnetChoiceReason Reason, string Message)
{
    public bool Held => Lease is not null;
}

/// <summary>
/// Flannel's subnet lease protocol over the cluster store: list the leases, let the pure
/// <see cref="SubnetAllocator"/> choose, then create or compare-and-swap the lease key — on a
/// conflict another node won that subnet, so list and choose again. Two nodes can therefore never
/// hold one subnet: the store's compare-and-swap decides, not timing. Renewal is the same loop
/// (the node's own lease is chosen first and updated by revision).
/// </summary>
public sealed class SubnetLeaser(IClusterStore store, IPNetwork clusterCidr, int subnetLength, TimeProvider time)
{
    public TimeSpan Ttl { get; init; } = LeaseTiming.DefaultTtl;

    public async Task<LeaseOutcome> AcquireAsync(string node, IPAddress nodeIp, MacAddress? vtep, IPNetwork? previous, CancellationToken ct)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            var list = await store.ListAsync(SubnetLease.KeyPrefix, ct).ConfigureAwait(false);
            var existing = new List<VersionedLease>();
            foreach (var item in list.Items)
            {
                try
                {
                    existing.Add(new VersionedLease(SubnetLease.Parse(item.Key, item.Value), item.ModRevision));
                }
                catch (LeaseFormatException)
                {
                    // A corrupt lease is not ours to repair; it simply blocks its subnet.
                }
            }
            var now = time.GetUtcNow();
            var choice = SubnetAllocator.Choose(clusterCidr, subnetLength, existing, node, previous, now, Random.Shared);
            if (choice.Kind == SubnetChoiceKind.Refused)
            {
                return new LeaseOutcome(null, 0, choice.Reason, choice.Message);
            }
            var lease = new SubnetLease(choice.Subnet!.Value, node, nodeIp, vtep, LeaseTiming.NewExpiry(now, Ttl));
            try
            {
                long rev = choice.Kind == SubnetChoiceKind.Create
                    ? await store.CreateAsync(lease.Key, lease.ToJson(), 0, ct).ConfigureAwait(false)
                    : await store.UpdateAsync(lease.Key, lease.ToJson(), choice.ExpectedRevision, 0, ct).ConfigureAwait(false);
                foreach (var stale in choice.Release)
                {
                    try
                    {
                        await store.DeleteAsync(stale.Lease.Key, stale.Revision, ct).ConfigureAwait(false);
                    }
                    catch (StoreException e) when (e is StoreConflictException or StoreNotFoundException)
                    {
                        // changed meanwhile: the next renewal sees it again
                    }
                }
                return new LeaseOutcome(lease, rev, choice.Reason, choice.Message);
            }
            catch (StoreException e) when (e is StoreConflictException or StoreNotFoundException)
            {
                // Another node won this subnet (or renewed it) between our list and our write.
            }
        }
        return new LeaseOutcome(null, 0, SubnetChoiceReason.Exhausted, "too much contention for subnet leases; retrying later");
    }
}
