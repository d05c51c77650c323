using System.Net;
using System.Net.Sockets;

namespace Trellis.Bgp.Wire;

/// <summary>Address family / subsequent address family (RFC 4760); only unicast is routed here.</summary>
public readonly record struct AfiSafi(ushort Afi, byte Safi)
{
    public const ushort AfiIpv4 = 1;
    public const ushort AfiIpv6 = 2;
    public const byte SafiUnicast = 1;

    public static readonly AfiSafi Ipv4Unicast = new(AfiIpv4, SafiUnicast);
    public static readonly AfiSafi Ipv6Unicast = new(AfiIpv6, SafiUnicast);

    public static AfiSafi Of(IPNetwork prefix) =>
        prefix.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6 ? Ipv6Unicast : Ipv4Unicast;

    public override string ToString() => this == Ipv4Unicast ? "ipv4-unicast" : this == Ipv6Unicast ? "ipv6-unicast" : $"afi{Afi}/safi{Safi}";
}

/// <summary>NLRI prefix encoding: a length in bits, then just enough bytes to hold it (RFC 4271 §4.3).</summary>
public static class Prefixes
{
    public static int EncodedLength(IPNetwork prefix) => 1 + ((prefix.PrefixLength + 7) / 8);

    public static void Write(ref BgpWriter writer, IPNetwork prefix)
    {
        Span<byte> address = stackalloc byte[16];
        prefix.BaseAddress.TryWriteBytes(address, out _);
        writer.WriteByte((byte)prefix.PrefixLength);
        writer.WriteBytes(address[..((prefix.PrefixLength + 7) / 8)]);
    }

    /// <summary>Reads a whole NLRI field; a bad length or a truncated prefix is <paramref name="onError"/>.</summary>
    public static void ReadAll(ReadOnlySpan<byte> data, bool ipv6, List<IPNetwork> into, BgpError onError)
    {
        int max = ipv6 ? 128 : 32;
        Span<byte> address = stackalloc byte[ipv6 ? 16 : 4];
        while (!data.IsEmpty)
        {
            int length = data[0];
            if (length > max)
            {
                throw new BgpMessageException(onError, $"prefix length {length} > {max}");
            }
            int bytes = (length + 7) / 8;
            if (data.Length < 1 + bytes)
            {
                throw new BgpMessageException(onError, $"prefix /{length} truncated");
            }
            address.Clear();
            data.Slice(1, bytes).CopyTo(address);
            // Bits past the prefix length are "irrelevant" (RFC 4271 §4.3); IPNetwork insists they are zero.
            if (length % 8 != 0)
            {
                address[bytes - 1] &= (byte)(0xff << (8 - (length % 8)));
            }
            into.Add(new IPNetwork(new IPAddress(address), length));
            data = data[(1 + bytes)..];
        }
    }
}
