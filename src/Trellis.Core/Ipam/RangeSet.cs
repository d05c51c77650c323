using System.Net;
using System.Net.Sockets;
using Trellis.Core.Cni;

namespace Trellis.Core.Ipam;

/// <summary>
/// One entry of <c>ipam.ranges</c>: ranges of one family from which a container gets exactly one
/// address. <see cref="Index"/> is the set's position after host-local's merging (the legacy
/// single range and runtimeConfig.ipRanges are prepended) and keys its last-reserved record;
/// <see cref="Path"/> names it in errors.
/// </summary>
public sealed record RangeSet
{
    public RangeSet(int index, string path, IReadOnlyList<IpRange> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        if (ranges.Count == 0)
        {
            throw CniException.Invalid(path, "empty range set");
        }
        Index = index;
        Path = path;
        Ranges = ranges;
    }

    public int Index { get; }

    public string Path { get; }

    public IReadOnlyList<IpRange> Ranges { get; }

    public AddressFamily Family => Ranges[0].Family;

    public bool Contains(IPAddress address) => RangeFor(address) is not null;

    public IpRange? RangeFor(IPAddress address)
    {
        foreach (var r in Ranges)
        {
            if (r.Contains(address))
            {
                return r;
            }
        }
        return null;
    }

    public bool IsAllocatable(IPAddress address) => RangeFor(address)?.IsAllocatable(address) ?? false;

    public bool Overlaps(RangeSet other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Ranges.Any(a => other.Ranges.Any(a.Overlaps));
    }

    public override string ToString() => string.Join(",", Ranges);

    /// <summary>Checks host-local's set rules: one family, no overlapping ranges (code 7, naming the later range).</summary>
    internal static RangeSet Validate(int index, string path, IReadOnlyList<IpRange> ranges, IReadOnlyList<string> rangePaths)
    {
        var set = new RangeSet(index, path, ranges);
        for (int i = 1; i < ranges.Count; i++)
        {
            if (ranges[i].Family != ranges[0].Family)
            {
                throw CniException.Invalid(
                    rangePaths[i] + ".subnet",
                    $"{ranges[i].Subnet} is {IpText.FamilyName(ranges[i].Family)} but {rangePaths[0]} is {IpText.FamilyName(ranges[0].Family)}; a range set holds one address family");
            }
            for (int j = 0; j < i; j++)
            {
                if (ranges[i].Overlaps(ranges[j]))
                {
                    throw CniException.Invalid(rangePaths[i], $"range {ranges[i]} overlaps {rangePaths[j]} ({ranges[j]})");
                }
            }
        }
        return set;
    }
}
