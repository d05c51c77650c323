using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Trellis.Core.Routing;

/// <summary>
/// A 48-bit Ethernet address as a value (equality and ordering work, unlike <c>byte[]</c>), printed the
/// way iproute2 prints it: lowercase, colon-separated ("0e:4f:a1:00:12:9c").
/// </summary>
public readonly record struct MacAddress : IComparable<MacAddress>
{
    private const ulong Mask48 = 0xFFFF_FFFF_FFFFUL;

    public MacAddress(ulong value)
    {
        if (value > Mask48)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "a MAC address has 48 bits");
        }
        Value = value;
    }

    /// <summary>The address as a big-endian 48-bit integer.</summary>
    public ulong Value { get; }

    /// <summary>The I/G bit: a group (multicast/broadcast) address, never valid for a VTEP.</summary>
    public bool IsMulticast => ((Value >> 40) & 0x01) != 0;

    public bool IsZero => Value == 0;

    public static MacAddress FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != 6)
        {
            throw new ArgumentException($"a MAC address has 6 bytes, not {bytes.Length}", nameof(bytes));
        }
        ulong v = 0;
        foreach (byte b in bytes)
        {
            v = (v << 8) | b;
        }
        return new MacAddress(v);
    }

    /// <summary>The 6 bytes, for netlink (IFLA_ADDRESS, NDA_LLADDR).</summary>
    public byte[] ToBytes()
    {
        var b = new byte[6];
        for (int i = 0; i < 6; i++)
        {
            b[i] = (byte)(Value >> (8 * (5 - i)));
        }
        return b;
    }

    /// <summary>
    /// A stable VTEP address for a node: locally administered, unicast, derived from the node name.
    /// Flannel picks a random MAC and keeps it only as long as the device survives; a derived one
    /// stays the same across agent restarts and device re-creation, so the other nodes' neighbour
    /// and FDB entries for this node never go stale. Collisions (2^-46 per pair) are caught by the
    /// route compiler, which refuses two nodes with one VTEP MAC.
    /// </summary>
    public static MacAddress ForNode(string nodeName)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("trellis-vtep/" + nodeName), hash);
        // Clear I/G (unicast), set U/L (locally administered): never collides with a vendor address.
        hash[0] = (byte)((hash[0] & 0xFC) | 0x02);
        return FromBytes(hash[..6]);
    }

    public static MacAddress Parse(string text) =>
        TryParse(text, out var mac) ? mac : throw new FormatException($"'{text}' is not a MAC address (expected six hex pairs separated by ':')");

    /// <summary>Accepts "aa:bb:cc:dd:ee:ff" in either case (also '-' separators, as Go's net.ParseMAC does).</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out MacAddress mac)
    {
        mac = default;
        if (text is null || text.Length != 17)
        {
            return false;
        }
        char sep = text[2];
        if (sep is not (':' or '-'))
        {
            return false;
        }
        ulong v = 0;
        for (int i = 0; i < 6; i++)
        {
            if (i > 0 && text[(3 * i) - 1] != sep)
            {
                return false;
            }
            if (!byte.TryParse(text.AsSpan(3 * i, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b))
            {
                return false;
            }
            v = (v << 8) | b;
        }
        mac = new MacAddress(v);
        return true;
    }

    public int CompareTo(MacAddress other) => Value.CompareTo(other.Value);

    public override string ToString()
    {
        Span<char> chars = stackalloc char[17];
        for (int i = 0; i < 6; i++)
        {
            byte b = (byte)(Value >> (8 * (5 - i)));
            chars[3 * i] = HexDigit(b >> 4);
            chars[(3 * i) + 1] = HexDigit(b & 0xF);
            if (i < 5)
            {
                chars[(3 * i) + 2] = ':';
            }
        }
        return new string(chars);

        static char HexDigit(int n) => (char)(n < 10 ? '0' + n : 'a' + n - 10);
    }

    public static bool operator <(MacAddress left, MacAddress right) => left.CompareTo(right) < 0;

    public static bool operator <=(MacAddress left, MacAddress right) => left.CompareTo(right) <= 0;

    public static bool operator >(MacAddress left, MacAddress right) => left.CompareTo(right) > 0;

    public static bool operator >=(MacAddress left, MacAddress right) => left.CompareTo(right) >= 0;
}
