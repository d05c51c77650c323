using System.Net;
using System.Net.Sockets;
using Trellis.Model;

namespace Trellis.Core.Cluster;

/// <summary>
/// The kube-apiserver's random choice from a range with a reserved lower band (KEP-3070 for
/// ClusterIPs, KEP-3668 for NodePorts): dynamic allocation takes a random free value from the
/// upper band first and falls back to the lower band only when the upper one is full, so the
/// lower band stays free for values that manifests ask for by number (10.96.0.10 for kube-dns,
/// 10.96.0.1 for <c>kubernetes</c>, a fixed NodePort). Pure: the caller says what is taken.
/// </summary>
public static class RangeAllocator
{
    /// <summary>
    /// The size of the lower band for a range of <paramref name="size"/> values:
    /// <c>clamp(size / step, min, max)</c>, or 0 when the range is smaller than <paramref name="min"/>.
    /// ClusterIPs use (16, 256, 16), NodePorts (16, 128, 32), as the apiserver's calculateRangeOffset does.
    /// </summary>
    public static long LowerBand(long size, long min, long max, long step)
    {
        if (size < min)
        {
            return 0;
        }
        return Math.Clamp(size / step, min, max);
    }

    /// <summary>
    /// A free offset in [0, <paramref name="size"/>): random in the upper band [lowerBand, size), else random in
    /// the lower band; null when every offset is taken. Scans from a random start, so the cost is bounded by
    /// the range, never by retries.
    /// </summary>
    public static long? Pick(long size, long lowerBand, Func<long, bool> isTaken, Random random)
    {
        ArgumentNullException.ThrowIfNull(isTaken);
        ArgumentNullException.ThrowIfNull(random);
        if (size <= 0)
        {
            return null;
        }
        lowerBand = Math.Clamp(lowerBand, 0, size);
        return ScanFrom(lowerBand, size - lowerBand, isTaken, random) ?? ScanFrom(0, lowerBand, isTaken, random);
    }

    private static long? ScanFrom(long start, long count, Func<long, bool> isTaken, Random random)
    {
        if (count <= 0)
        {
            return null;
        }
        long first = random.NextInt64(count);
        for (long i = 0; i < count; i++)
        {
            long offset = start + ((first + i) % count);
            if (!isTaken(offset))
            {
                return offset;
            }
        }
        return null;
    }
}

/// <summary>The allocatable addresses of a service CIDR: every address but the network address (and, for IPv4, the broadcast address).</summary>
public readonly record struct ServiceIPRange(IPNetwork Network)
{
    // Large IPv6 ranges are capped: random choice among 2^20 addresses never runs out in practice.
    private const long MaxSize = 1L << 20;

    public long Size
    {
        get
        {
            int bits = Network.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
            int host = bits - Network.PrefixLength;
            if (host >= 21)
            {
                return MaxSize;
            }
            long all = 1L << host;
            long usable = bits == 32 ? all - 2 : all - 1;
            return Math.Max(0, usable);
        }
    }

    public long LowerBand => RangeAllocator.LowerBand(Size, 16, 256, 16);

    public IPAddress At(long offset) => IPAddressMath.Add(Network.BaseAddress, offset + 1);

    /// <summary>The offset of <paramref name="ip"/>, or null when it is outside the range (or its network/broadcast address).</summary>
    public long? OffsetOf(IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(ip);
        if (ip.AddressFamily != Network.BaseAddress.AddressFamily || !Network.Contains(ip))
        {
            return null;
        }
        UInt128 delta = IPAddressMath.ToInteger(ip) - IPAddressMath.ToInteger(Network.BaseAddress);
        if (delta == 0 || delta > (UInt128)Size)
        {
            return null;
        }
        return (long)(delta - 1);
    }

    /// <summary>What the apiserver says about an address outside the range.</summary>
    public string Describe() => $"the range of valid IPs is {Network}";
}
