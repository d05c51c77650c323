using System.Net;
using Trellis.Core.Cni;
using Trellis.Model;

namespace Trellis.Core.Ipam;

/// <summary>An allocated address (with its subnet's prefix length) and the range's gateway.</summary>
public readonly record struct IpAllocation(IPCidr Address, IPAddress? Gateway);

/// <summary>
/// host-local's allocation strategy, without its store: the caller says which addresses are taken
/// and which one was reserved last, and persists the answer.
/// </summary>
public static class IpAllocator
{
    /// <summary>
    /// Picks an address from <paramref name="set"/>. With <paramref name="requested"/>, that address or
    /// an error. Otherwise round-robin like host-local: start after <paramref name="lastReserved"/> (when
    /// it is still in the set, else at the first range's start), walk to the end of its range, on
    /// through the following ranges, wrap around, and try <paramref name="lastReserved"/> itself last,
    /// so a crash-looping container does not get the same address back until the set has cycled.
    /// The gateway, network and broadcast addresses are skipped. <paramref name="isTaken"/> is asked
    /// at most once per address; a caller with a huge, nearly full IPv6 set should check
    /// <see cref="CountFree"/> first.
    /// </summary>
    /// <exception cref="CniException">Code 999 (<see cref="CniErrorCode.Internal"/>), as host-local reports these failures.</exception>
    public static IpAllocation Allocate(RangeSet set, Func<IPAddress, bool> isTaken, IPAddress? lastReserved, IPAddress? requested)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(isTaken);

        if (requested is not null)
        {
            return AllocateRequested(set, isTaken, requested);
        }

        var ranges = set.Ranges;
        int ri = 0;
        UInt128 cur = IPAddressMath.ToInteger(ranges[0].RangeStart);
        if (lastReserved is not null)
        {
            for (int i = 0; i < ranges.Count; i++)
            {
                if (ranges[i].Contains(lastReserved))
                {
                    (ri, cur) = Advance(ranges, i, IPAddressMath.ToInteger(lastReserved));
                    break;
                }
            }
        }

        var (firstRi, first) = (ri, cur);
        do
        {
            var range = ranges[ri];
            var address = IPAddressMath.FromInteger(cur, range.Family);
            if (range.IsAllocatable(address) && !isTaken(address))
            {
                return new IpAllocation(new IPCidr(address, range.Subnet.PrefixLength), range.Gateway);
            }
            (ri, cur) = Advance(ranges, ri, cur);
        }
        while (ri != firstRi || cur != first);

        throw new CniException(CniErrorCode.Internal, $"{set.Path}: no IP addresses available in range set {set}");
    }

    /// <summary>
    /// Hands each requested address to the set that contains it, in request order, one per set (a
    /// container gets one address per set). An address no set can take is an error, as in host-local
    /// ("failed to allocate all requested IPs").
    /// </summary>
    public static IReadOnlyList<IPAddress?> AssignRequested(IReadOnlyList<RangeSet> sets, IReadOnlyList<IPAddress> requested)
    {
        ArgumentNullException.ThrowIfNull(sets);
        ArgumentNullException.ThrowIfNull(requested);
        var result = new IPAddress?[sets.Count];
        var leftover = new List<IPAddress>();
        foreach (var ip in requested)
        {
            int match = -1;
            for (int i = 0; i < sets.Count; i++)
            {
                if (result[i] is null && sets[i].Contains(ip))
                {
                    match = i;
                    break;
                }
            }
            if (match < 0)
            {
                leftover.Add(ip);
            }
            else
            {
                result[match] = ip;
            }
        }
        if (leftover.Count > 0)
        {
            string where = sets.Count == 0 ? "no range sets" : string.Join("; ", sets.Select(s => $"{s.Path}: {s}"));
            throw new CniException(
                CniErrorCode.Internal,
                $"requested IP {string.Join(", ", leftover)}: not in any range set, or another requested IP already took its set ({where})");
        }
        return result;
    }

    /// <summary>Number of addresses the set can hand out (saturating).</summary>
    public static UInt128 Capacity(RangeSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        UInt128 total = 0;
        foreach (var r in set.Ranges)
        {
            var c = r.Capacity;
            total = UInt128.MaxValue - total < c ? UInt128.MaxValue : total + c;
        }
        return total;
    }

    /// <summary>Capacity minus the distinct <paramref name="reserved"/> addresses that are allocatable in the set (for STATUS).</summary>
    public static UInt128 CountFree(RangeSet set, IEnumerable<IPAddress> reserved)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(reserved);
        var used = new HashSet<IPAddress>();
        foreach (var ip in reserved)
        {
            if (ip is not null && set.IsAllocatable(ip))
            {
                used.Add(ip);
            }
        }
        var cap = Capacity(set);
        var n = (UInt128)used.Count;
        return n >= cap ? UInt128.Zero : cap - n;
    }

    private static IpAllocation AllocateRequested(RangeSet set, Func<IPAddress, bool> isTaken, IPAddress requested)
    {
        var range = set.RangeFor(requested)
            ?? throw new CniException(CniErrorCode.Internal, $"requested IP {requested}: not in range set {set.Path} ({set})");
        if (requested.Equals(range.Gateway))
        {
            throw new CniException(CniErrorCode.Internal, $"requested IP {requested}: is the gateway of {range.Subnet}");
        }
        if (!IpRange.IsHostAddress(range.Subnet, requested))
        {
            throw new CniException(CniErrorCode.Internal, $"requested IP {requested}: is the network or broadcast address of {range.Subnet}");
        }
        if (isTaken(requested))
        {
            throw new CniException(CniErrorCode.Internal, $"requested IP {requested}: is not available in range set {set.Path} ({set}); another container holds it");
        }
        return new IpAllocation(new IPCidr(requested, range.Subnet.PrefixLength), range.Gateway);
    }

    private static (int, UInt128) Advance(IReadOnlyList<IpRange> ranges, int ri, UInt128 cur)
    {
        if (cur >= IPAddressMath.ToInteger(ranges[ri].RangeEnd))
        {
            ri = (ri + 1) % ranges.Count;
            return (ri, IPAddressMath.ToInteger(ranges[ri].RangeStart));
        }
        return (ri, cur + 1);
    }
}
