using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Trellis.Core.Policies;

/// <summary>An inclusive range of IPv4 addresses as numbers, and the CIDR arithmetic ipBlock needs.</summary>
public readonly record struct Ipv4Interval(uint Lo, uint Hi)
{
    public static Ipv4Interval All { get; } = new(0, uint.MaxValue);

    public static uint ToUInt(IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(ip);
        Span<byte> b = stackalloc byte[4];
        ip.TryWriteBytes(b, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    public static IPAddress ToAddress(uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        return new IPAddress(b);
    }

    public bool Contains(uint ip) => Lo <= ip && ip <= Hi;

    /// <summary>
    /// An IPv4 CIDR (host bits are ignored, as the Go net.ParseCIDR result is used by implementations); null for
    /// IPv6 or malformed text — validation refuses those before a policy is stored.
    /// </summary>
    public static Ipv4Interval? ParseCidr(string? text)
    {
        if (text is null)
        {
            return null;
        }
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var ip) || ip.AddressFamily != AddressFamily.InterNetwork
            || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int len) || len > 32)
        {
            return null;
        }
        uint mask = len == 0 ? 0 : uint.MaxValue << (32 - len);
        uint lo = ToUInt(ip) & mask;
        return new Ipv4Interval(lo, lo | ~mask);
    }

    /// <summary><paramref name="from"/> minus every interval of <paramref name="holes"/>, in order.</summary>
    public static List<Ipv4Interval> Subtract(Ipv4Interval from, IEnumerable<Ipv4Interval> holes)
    {
        var result = new List<Ipv4Interval> { from };
        foreach (var h in holes)
        {
            var next = new List<Ipv4Interval>(result.Count + 1);
            foreach (var r in result)
            {
                if (h.Hi < r.Lo || h.Lo > r.Hi)
                {
                    next.Add(r);
                    continue;
                }
                if (h.Lo > r.Lo)
                {
                    next.Add(new Ipv4Interval(r.Lo, h.Lo - 1));
                }
                if (h.Hi < r.Hi)
                {
                    next.Add(new Ipv4Interval(h.Hi + 1, r.Hi));
                }
            }
            result = next;
        }
        return result;
    }

    /// <summary>nft element text: an address, a CIDR when the range is one, else <c>a-b</c>.</summary>
    public override string ToString()
    {
        if (Lo == Hi)
        {
            return ToAddress(Lo).ToString();
        }
        uint size = Hi - Lo; // size+1 addresses
        if ((size & (size + 1)) == 0 && (Lo & size) == 0)
        {
            int len = 32 - System.Numerics.BitOperations.PopCount(size);
            return ToAddress(Lo) + "/" + len.ToString(CultureInfo.InvariantCulture);
        }
        return ToAddress(Lo) + "-" + ToAddress(Hi);
    }
}
