using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Trellis.Model;

namespace Trellis.Core.Leases;

/// <summary>A stored lease with the store revision it was read at: what a compare-and-swap compares.</summary>
public sealed record VersionedLease(SubnetLease Lease, long Revision);

public enum SubnetChoiceKind
{
    /// <summary>Create the key (it must not exist). Conflict → re-list and choose again.</summary>
    Create,

    /// <summary>Update the key if its revision is still <see cref="SubnetChoice.ExpectedRevision"/>. Conflict or not found → re-list and choose again.</summary>
    Update,

    /// <summary>Nothing to write: <see cref="SubnetChoice.Message"/> says why.</summary>
    Refused,
}

public enum SubnetChoiceReason
{
    /// <summary>This node already holds a lease: renew it.</summary>
    OwnLease,

    /// <summary>The subnet the node had before is free again.</summary>
    Previous,

    /// <summary>The subnet the node had before is held by another node's expired lease: take it back.</summary>
    PreviousExpired,

    /// <summary>A subnet no lease names.</summary>
    Free,

    /// <summary>No free subnet is left; an expired lease of another node is taken over.</summary>
    ReclaimExpired,

    /// <summary>Every subnet is held by a live lease.</summary>
    Exhausted,

    /// <summary>The cluster CIDR / subnet length cannot be split.</summary>
    InvalidConfig,
}

/// <summary>
/// What to write next. <see cref="Release"/> lists this node's other leases (duplicates, or leases that
/// no longer fit the cluster CIDR or subnet length), which the agent deletes by revision once the
/// chosen write succeeds — flannel deletes such an incompatible own lease too.
/// </summary>
public sealed record SubnetChoice(
    SubnetChoiceKind Kind,
    SubnetChoiceReason Reason,
    IPNetwork? Subnet,
    long ExpectedRevision,
    string Message,
    IReadOnlyList<VersionedLease> Release)
{
    public string? Key => Subnet is { } s ? SubnetLease.KeyFor(s) : null;
}

/// <summary>
/// Flannel's subnet manager (pkg/subnet/etcd/local_manager.go, tryAcquireLease/allocateSubnet) as a pure
/// decision. The compare-and-swap is the caller's, in a loop:
/// <code>
/// for (;;) {
///     var list = store.List(SubnetLease.KeyPrefix);               // leases + their ModRevisions
///     var choice = SubnetAllocator.Choose(..., list, ..., now, rng);
///     if (choice.Kind == Refused) fail(choice.Message);
///     var lease = new SubnetLease(choice.Subnet, me, myIp, myMac, now + ttl);
///     try { Create or Update(choice.Key, lease.ToJson(), choice.ExpectedRevision); break; }
///     catch (StoreConflictException or StoreNotFoundException) { continue; }  // flannel's errTryAgain / ErrLeaseTaken
/// }
/// </code>
/// Order of preference:
/// <list type="number">
/// <item>this node's own lease (matched by node name; flannel matches by public IP), live or expired — renewed;</item>
/// <item><c>previousSubnet</c> (the node's podCIDR, or what it had before a restart) when free or held by an
/// expired lease; a live lease of another node is never taken ("taken, not stolen");</item>
/// <item>a free subnet: flannel picks at random among the first 100 free ones so nodes starting together rarely
/// race for the same key; a <see cref="Random"/> that returns 0 makes it the lowest free one;</item>
/// <item>an expired lease of another node. Never-used subnets go first so a node that was merely slow to
/// renew (agent down for a while) still finds its subnet, and its pods' addresses, when it returns;</item>
/// <item>otherwise refused: "no /24 left in 10.244.0.0/16: 255 leased; …".</item>
/// </list>
/// <para><b>Subnet 0 is never leased</b>, as in flannel (config.go: SubnetMin defaults to network + one subnet,
/// "otherwise it causes problems. e.g. if Network is 10.100.0.0/16, having an interface with 10.100.0.0
/// conflicts with the network address"): the VXLAN device carries its subnet's network address, and for the
/// first subnet that is the cluster network's own address. The lab's node-i ↔ subnet i numbering agrees.</para>
/// </summary>
public static class SubnetAllocator
{
    /// <summary>Flannel collects at most this many free candidates before picking one at random.</summary>
    public const int MaxCandidates = 100;

    public static SubnetChoice Choose(
        IPNetwork clusterCidr,
        int subnetLength,
        IReadOnlyList<VersionedLease> existing,
        string nodeName,
        IPNetwork? previousSubnet,
        DateTimeOffset now,
        Random rng)
    {
        ArgumentNullException.ThrowIfNull(existing);
        ArgumentException.ThrowIfNullOrEmpty(nodeName);
        ArgumentNullException.ThrowIfNull(rng);

        int bits = clusterCidr.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int maxLength = bits - 2; // room for a gateway and a pod (flannel: "SubnetLen must be less than /31")
        if (subnetLength <= clusterCidr.PrefixLength || subnetLength > maxLength)
        {
            return Refuse(SubnetChoiceReason.InvalidConfig, string.Create(CultureInfo.InvariantCulture,
                $"subnet length /{subnetLength} must be longer than the cluster CIDR {clusterCidr} and at most /{maxLength}"), []);
        }

        var space = new SubnetSpace(clusterCidr, subnetLength);
        var own = existing.Where(l => l.Lease.NodeName == nodeName).ToList();
        var others = existing.Where(l => l.Lease.NodeName != nodeName).ToList();

        // 1. This node's own lease.
        var ownFitting = own.Where(l => space.IsCandidate(l.Lease.Subnet))
            .OrderByDescending(l => previousSubnet is { } p && l.Lease.Subnet == p)
            .ThenByDescending(l => !l.Lease.IsExpired(now))
            .ThenBy(l => IPAddressMath.ToInteger(l.Lease.Subnet.BaseAddress))
            .ToList();
        if (ownFitting.Count > 0)
        {
            var keep = ownFitting[0];
            var release = own.Where(l => !ReferenceEquals(l, keep)).ToList();
            return new SubnetChoice(SubnetChoiceKind.Update, SubnetChoiceReason.OwnLease, keep.Lease.Subnet, keep.Revision,
                $"renewing this node's lease on {keep.Lease.Subnet}", release);
        }
        var releaseAll = own; // all of them are outside the cluster CIDR or of another length

        var exact = new Dictionary<IPNetwork, VersionedLease>();
        var odd = new List<VersionedLease>(); // other shapes overlapping the cluster CIDR: block what they cover
        foreach (var l in others)
        {
            var s = l.Lease.Subnet;
            if (space.IsCandidate(s))
            {
                // Two leases for one key cannot come from a store; keep the first if a caller merged lists.
                exact.TryAdd(s, l);
            }
            else if (s.BaseAddress.AddressFamily == clusterCidr.BaseAddress.AddressFamily
                && (clusterCidr.Contains(s.BaseAddress) || s.Contains(clusterCidr.BaseAddress)))
            {
                // Expired or not, a lease of another shape still exists under its own key; if we created an
                // overlapping one and its holder renewed, two nodes would own the same addresses.
                odd.Add(l);
            }
        }

        // 2. The previous subnet.
        if (previousSubnet is { } prev && space.IsCandidate(prev) && OddCovering(odd, prev) is null)
        {
            if (!exact.TryGetValue(prev, out var holder))
            {
                return new SubnetChoice(SubnetChoiceKind.Create, SubnetChoiceReason.Previous, prev, 0,
                    $"taking back previous subnet {prev}", releaseAll);
            }
            if (holder.Lease.IsExpired(now))
            {
                return new SubnetChoice(SubnetChoiceKind.Update, SubnetChoiceReason.PreviousExpired, prev, holder.Revision,
                    $"taking back previous subnet {prev} from node {holder.Lease.NodeName}, whose lease expired at {holder.Lease.Expires:O}", releaseAll);
            }
        }

        // 3. A free subnet.
        var free = new List<IPNetwork>(MaxCandidates);
        UInt128 index = 1;
        while (index < space.Count && free.Count < MaxCandidates)
        {
            var candidate = space.At(index);
            if (OddCovering(odd, candidate) is { } blocker)
            {
                index = space.IndexAfter(blocker.Lease.Subnet);
                continue;
            }
            if (!exact.ContainsKey(candidate))
            {
                free.Add(candidate);
            }
            index++;
        }
        if (free.Count > 0)
        {
            var pick = free[rng.Next(free.Count)];
            return new SubnetChoice(SubnetChoiceKind.Create, SubnetChoiceReason.Free, pick, 0, $"leasing free subnet {pick}", releaseAll);
        }

        // 4. An expired lease of another node.
        var expired = exact.Values.Where(l => l.Lease.IsExpired(now))
            .OrderBy(l => IPAddressMath.ToInteger(l.Lease.Subnet.BaseAddress))
            .ToList();
        if (expired.Count > 0)
        {
            var pick = expired[rng.Next(expired.Count)];
            return new SubnetChoice(SubnetChoiceKind.Update, SubnetChoiceReason.ReclaimExpired, pick.Lease.Subnet, pick.Revision,
                $"reclaiming {pick.Lease.Subnet} from node {pick.Lease.NodeName}, whose lease expired at {pick.Lease.Expires:O}", releaseAll);
        }

        // 5. Nothing left.
        int live = exact.Values.Count(l => !l.Lease.IsExpired(now)) + odd.Count(l => !l.Lease.IsExpired(now));
        string message = string.Create(CultureInfo.InvariantCulture,
            $"no /{subnetLength} left in {clusterCidr}: {live} leased; the first, {space.At(0)}, is never leased");
        return Refuse(SubnetChoiceReason.Exhausted, message, releaseAll);
    }

    private static SubnetChoice Refuse(SubnetChoiceReason reason, string message, IReadOnlyList<VersionedLease> release) =>
        new(SubnetChoiceKind.Refused, reason, null, 0, message, release);

    private static VersionedLease? OddCovering(List<VersionedLease> odd, IPNetwork candidate)
    {
        foreach (var l in odd)
        {
            var s = l.Lease.Subnet;
            if (s.Contains(candidate.BaseAddress) || candidate.Contains(s.BaseAddress))
            {
                return l;
            }
        }
        return null;
    }

    /// <summary>The cluster CIDR cut into subnets of one length, addressed by index (0 = the unused first one).</summary>
    private readonly struct SubnetSpace(IPNetwork cluster, int length)
    {
        private readonly UInt128 _base = IPAddressMath.ToInteger(cluster.BaseAddress);
        private readonly int _shift = (cluster.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128) - length;

        /// <summary>How many subnets, saturating (an IPv6 /32 in /96s does not fit even in UInt128 arithmetic comfortably).</summary>
        public UInt128 Count { get; } = length - cluster.PrefixLength >= 127 ? UInt128.MaxValue : UInt128.One << (length - cluster.PrefixLength);

        public IPNetwork At(UInt128 index) =>
            new(IPAddressMath.FromInteger(_base + (index << _shift), cluster.BaseAddress.AddressFamily), length);

        /// <summary>The index of the first subnet that starts after <paramref name="n"/> ends.</summary>
        public UInt128 IndexAfter(IPNetwork n)
        {
            var last = IPAddressMath.ToInteger(IPAddressMath.LastAddress(n));
            return last < _base ? 0 : ((last - _base) >> _shift) + 1;
        }

        public bool IsCandidate(IPNetwork s) =>
            s.PrefixLength == length
            && s.BaseAddress.AddressFamily == cluster.BaseAddress.AddressFamily
            && cluster.Contains(s.BaseAddress)
            && !s.BaseAddress.Equals(cluster.BaseAddress);
    }
}
