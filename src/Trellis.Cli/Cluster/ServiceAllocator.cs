using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Trellis.Core.Cluster;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Cluster;

/// <summary>The keys one allocation created (what to release if the object is then not written), or why it failed.</summary>
public sealed record AllocationResult(IReadOnlyList<(string Key, long Revision)> Created, IReadOnlyList<FieldError> Errors);

/// <summary>
/// Allocates a Service's ClusterIP, NodePorts, healthCheckNodePort and load-balancer IP in the store, the
/// way the API server's allocators do: one key per value (<see cref="AllocationKeys"/>), created
/// create-if-absent, so concurrent applies — from any process, on either backend — can never share one.
/// A value the Service names is claimed (free, or already this Service's); an empty slot gets a random
/// free value (ClusterIP, NodePort: upper band first, <see cref="RangeAllocator"/>) or the lowest free
/// pool address (load-balancer IPs, as MetalLB does). Whatever fails undoes what it created.
/// </summary>
public sealed class ServiceAllocator(IClusterStore store, ClusterNetworkConfig config, TimeProvider time, Random? random = null)
{
    // A lost race re-reads what is taken and tries another value; more losses than this means a storm, not bad luck.
    private const int MaxAttempts = 64;

    private readonly Random _random = random ?? Random.Shared;

    public ClusterNetworkConfig Config => config;

    public static AllocationOwner OwnerOf(JsonObject service, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(service);
        var meta = service["metadata"] as JsonObject;
        return new AllocationOwner(
            meta?["namespace"]?.GetValue<string>() ?? ObjectDefaults.DefaultNamespace,
            meta?["name"]?.GetValue<string>() ?? "",
            meta?["uid"]?.GetValue<string>() ?? "",
            at);
    }

    /// <summary>
    /// Plans, claims and allocates for <paramref name="desired"/> and writes the chosen values into it (in place).
    /// On errors nothing stays allocated and <paramref name="desired"/> is unchanged.
    /// </summary>
    public async Task<AllocationResult> AllocateAsync(JsonObject desired, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var plan = ServiceAllocationPlanner.Plan(config, desired);
        if (plan.Errors.Count > 0)
        {
            return new AllocationResult([], plan.Errors);
        }
        if (plan.IsEmpty)
        {
            return new AllocationResult([], []);
        }
        var owner = OwnerOf(desired, time.GetUtcNow());
        var created = new List<(string, long)>();
        var errors = new List<FieldError>();
        bool ok = false;
        try
        {
            foreach (var claim in plan.Claims)
            {
                if (await ClaimAsync(claim.Allocation, owner, created, ct).ConfigureAwait(false) is { } taker)
                {
                    errors.Add(AlreadyAllocated(claim, taker));
                }
            }
            if (errors.Count > 0)
            {
                return new AllocationResult([], errors);
            }
            var choice = new ServiceAllocationChoice();
            if (plan.AllocateClusterIP is { } range)
            {
                long? offset = await AllocateNextAsync(AllocationKind.ClusterIP, range.Size, range.LowerBand,
                    o => range.At(o).ToString(), v => IPAddress.TryParse(v, out var ip) ? range.OffsetOf(ip) : null, owner, created, ct).ConfigureAwait(false);
                if (offset is null)
                {
                    errors.Add(new FieldError("spec.clusterIP", $"failed to allocate a ClusterIP: the service CIDR {range.Network} is full"));
                }
                else
                {
                    choice = choice with { ClusterIP = range.At(offset.Value).ToString() };
                }
            }
            var nodePorts = new Dictionary<int, int>();
            int needed = plan.AllocateNodePortsFor.Count + (plan.AllocateHealthCheckNodePort ? 1 : 0);
            for (int i = 0; i < needed && errors.Count == 0; i++)
            {
                int? port = await AllocateNodePortAsync(owner, created, ct).ConfigureAwait(false);
                if (port is null)
                {
                    errors.Add(new FieldError(i < plan.AllocateNodePortsFor.Count ? "spec.ports[].nodePort" : "spec.healthCheckNodePort",
                        $"failed to allocate a node port: the range {config.NodePortMin}-{config.NodePortMax} is full"));
                }
                else if (i < plan.AllocateNodePortsFor.Count)
                {
                    nodePorts[plan.AllocateNodePortsFor[i]] = port.Value;
                }
                else
                {
                    choice = choice with { HealthCheckNodePort = port };
                }
            }
            choice = choice with { NodePortsByPort = nodePorts };
            if (plan.AllocateLoadBalancerIP && errors.Count == 0)
            {
                // A full pool is not an error: the Service stays <pending>, as with MetalLB.
                choice = choice with { LoadBalancerIP = await AllocatePoolAddressAsync(owner, created, ct).ConfigureAwait(false) };
            }
            if (errors.Count > 0)
            {
                return new AllocationResult([], errors);
            }
            ServiceAllocationPlanner.Fill(desired, plan, choice);
            ok = true;
            return new AllocationResult(created, []);
        }
        finally
        {
            if (!ok)
            {
                await ReleaseCreatedAsync(created, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Deletes keys an allocation created (the object was not written after all).</summary>
    public async Task ReleaseCreatedAsync(IEnumerable<(string Key, long Revision)> created, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(created);
        foreach (var (key, revision) in created)
        {
            try
            {
                await store.DeleteAsync(key, revision, ct).ConfigureAwait(false);
            }
            catch (StoreException e) when (e is StoreNotFoundException or StoreConflictException)
            {
                // Gone or rewritten by the repair meanwhile: not ours to delete any more.
            }
        }
    }

    /// <summary>Releases allocations <paramref name="owner"/> holds (a deleted Service, or values an update dropped); keys of other owners are left alone.</summary>
    public async Task ReleaseAsync(IEnumerable<Allocation> allocations, AllocationOwner owner, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(allocations);
        ArgumentNullException.ThrowIfNull(owner);
        foreach (var a in allocations)
        {
            var item = await store.GetAsync(a.Key, ct).ConfigureAwait(false);
            if (item is null || AllocationKeys.DecodeOwner(item.Value) is not { } holder || !holder.SameService(owner))
            {
                continue;
            }
            try
            {
                await store.DeleteAsync(a.Key, item.ModRevision, ct).ConfigureAwait(false);
            }
            catch (StoreException e) when (e is StoreNotFoundException or StoreConflictException)
            {
            }
        }
    }

    /// <summary>Creates the key for <paramref name="a"/>; null when it is now (or already was) the owner's, else the holder.</summary>
    private async Task<AllocationOwner?> ClaimAsync(Allocation a, AllocationOwner owner, List<(string, long)> created, CancellationToken ct)
    {
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            try
            {
                long rev = await store.CreateAsync(a.Key, AllocationKeys.EncodeOwner(owner), 0, ct).ConfigureAwait(false);
                created.Add((a.Key, rev));
                return null;
            }
            catch (StoreConflictException e)
            {
                var current = e.Current ?? await store.GetAsync(a.Key, ct).ConfigureAwait(false);
                if (current is null)
                {
                    continue; // released between the create and the read: try again
                }
                var holder = AllocationKeys.DecodeOwner(current.Value) ?? new AllocationOwner("?", "an unreadable allocation key", "", DateTimeOffset.UnixEpoch);
                return holder.SameService(owner) ? null : holder;
            }
        }
        throw new StoreException($"create {a.Key}: too much contention");
    }

    private async Task<int?> AllocateNodePortAsync(AllocationOwner owner, List<(string, long)> created, CancellationToken ct)
    {
        long size = config.NodePortMax - config.NodePortMin + 1;
        long band = RangeAllocator.LowerBand(size, 16, 128, 32);
        long? offset = await AllocateNextAsync(AllocationKind.NodePort, size, band,
            o => AllocationKeys.Port((int)(config.NodePortMin + o)),
            v => int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p >= config.NodePortMin && p <= config.NodePortMax ? p - config.NodePortMin : null,
            owner, created, ct).ConfigureAwait(false);
        return offset is { } o ? config.NodePortMin + (int)o : null;
    }

    private async Task<long?> AllocateNextAsync(AllocationKind kind, long size, long lowerBand, Func<long, string> valueOf, Func<string, long?> offsetOf,
        AllocationOwner owner, List<(string, long)> created, CancellationToken ct)
    {
        var taken = await TakenAsync(kind, offsetOf, ct).ConfigureAwait(false);
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            long? offset = RangeAllocator.Pick(size, lowerBand, taken.Contains, _random);
            if (offset is null)
            {
                return null;
            }
            var a = new Allocation(kind, valueOf(offset.Value));
            try
            {
                long rev = await store.CreateAsync(a.Key, AllocationKeys.EncodeOwner(owner), 0, ct).ConfigureAwait(false);
                created.Add((a.Key, rev));
                return offset;
            }
            catch (StoreConflictException)
            {
                // Another apply took it between our list and our create: it is taken, pick again.
                taken.Add(offset.Value);
            }
        }
        throw new StoreException($"allocate a {kind}: lost the race {MaxAttempts} times in a row");
    }

    private async Task<HashSet<long>> TakenAsync(AllocationKind kind, Func<string, long?> offsetOf, CancellationToken ct)
    {
        string prefix = AllocationKeys.PrefixOf(kind);
        var list = await store.ListAsync(prefix, ct).ConfigureAwait(false);
        var taken = new HashSet<long>();
        foreach (var item in list.Items)
        {
            if (offsetOf(item.Key[prefix.Length..]) is long o)
            {
                taken.Add(o);
            }
        }
        return taken;
    }

    private async Task<string?> AllocatePoolAddressAsync(AllocationOwner owner, List<(string, long)> created, CancellationToken ct)
    {
        var list = await store.ListAsync(AllocationKeys.LoadBalancerIPPrefix, ct).ConfigureAwait(false);
        var taken = list.Items.Select(i => i.Key[AllocationKeys.LoadBalancerIPPrefix.Length..]).ToHashSet(StringComparer.Ordinal);
        foreach (var ip in ServiceAllocationPlanner.PoolAddresses(config))
        {
            var a = new Allocation(AllocationKind.LoadBalancerIP, ip.ToString());
            if (taken.Contains(a.Value))
            {
                continue;
            }
            try
            {
                long rev = await store.CreateAsync(a.Key, AllocationKeys.EncodeOwner(owner), 0, ct).ConfigureAwait(false);
                created.Add((a.Key, rev));
                return a.Value;
            }
            catch (StoreConflictException)
            {
                // Taken meanwhile: the next address.
            }
        }
        return null;
    }

    private static FieldError AlreadyAllocated(AllocationClaim claim, AllocationOwner holder)
    {
        string by = $"(by service {holder.Service})";
        return claim.Allocation.Kind switch
        {
            AllocationKind.ClusterIP => FieldError.Invalid(claim.Field, claim.Allocation.Value, $"failed to allocate IP {claim.Allocation.Value}: provided IP is already allocated {by}"),
            AllocationKind.NodePort => FieldError.Invalid(claim.Field, long.Parse(claim.Allocation.Value, CultureInfo.InvariantCulture), $"provided port is already allocated {by}"),
            _ => FieldError.Invalid(claim.Field, claim.Allocation.Value, $"load-balancer IP {claim.Allocation.Value} is already allocated {by}"),
        };
    }
}
