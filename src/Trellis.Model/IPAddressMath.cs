using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;


namespace Trellis.Model;

/// <summary>Address arithmetic on IPv4 and IPv6 addresses as 128-bit integers.</summary>
public static class IPAddressMath
{
    public static UInt128 ToInteger(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int n);
        return n == 4
            ? BinaryPrimitives.ReadUInt32BigEndian(b)
            : BinaryPrimitives.ReadUInt128BigEndian(b);
    }

    public static IPAddress FromInteger(UInt128 value, AddressFamily family)
    {
        if (family == AddressFamily.InterNetwork)
        {
            Span<byte> b4 = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(b4, (uint)value);
            return new IPAddress(b4);
        }
        Span<byte> b = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(b, value);
        return new IPAddress(b);
    }

    public static IPAddress Mask(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        int bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        UInt128 v = ToInteger(address);
        UInt128 mask = prefixLength == 0 ? UInt128.Zero : UInt128.MaxValue << (bits - prefixLength);
        if (bits == 32)
        {
            mask &= uint.MaxValue;
        }
        return FromInteger(v & mask, address.AddressFamily);
    }

    public static IPAddress Add(IPAddress address, long delta)
    {
        ArgumentNullException.ThrowIfNull(address);
        UInt128 v = ToInteger(address);
        v = delta >= 0 ? v + (UInt128)delta : v - (UInt128)(-delta);
        return FromInteger(v, address.AddressFamily);
    }

    /// <summary>The last address of the network (the IPv4 broadcast address).</summary>
    public static IPAddress LastAddress(IPNetwork network)
    {
        int bits = network.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int host = bits - network.PrefixLength;
        UInt128 hostMask = host == 0 ? UInt128.Zero : UInt128.MaxValue >> (128 - host);
        return FromInteger(ToInteger(network.BaseAddress) | hostMask, network.BaseAddress.AddressFamily);
    }

    public static int Compare(IPAddress a, IPAddress b) => ToInteger(a).CompareTo(ToInteger(b));

    /// <summary>Number of addresses in the network, saturating at <see cref="ulong.MaxValue"/>.</summary>
    public static ulong Size(IPNetwork network)
    {
        int bits = network.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int host = bits - network.PrefixLength;
        return host >= 64 ? ulong.MaxValue : 1UL << host;
    }

}
