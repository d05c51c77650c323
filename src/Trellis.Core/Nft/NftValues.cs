using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Trellis.Core.Nft;

/// <summary>The nft data types a set key (or a match) can have, named as in <c>type …</c>.</summary>
public enum NftDataType
{
    Ipv4Addr,
    Ipv6Addr,
    InetProto,
    InetService,
    IfName,
    Mark,
}

/// <summary>
/// One field of a key: a closed interval of numbers (an address, CIDR or range is its first and last value; a
/// single value has Low == High), or a name for <c>ifname</c> (a trailing <c>*</c> is a prefix wildcard).
/// </summary>
public readonly record struct NftKeyPart(UInt128 Low, UInt128 High, string? Name = null) : IComparable<NftKeyPart>
{
    public static NftKeyPart Point(UInt128 v) => new(v, v);

    public bool IsSingle => Low == High;

    public bool Contains(NftKeyPart value)
    {
        if (Name is not null || value.Name is not null)
        {
            if (Name is null || value.Name is null)
            {
                return false;
            }
            return Name.EndsWith('*') ? value.Name.StartsWith(Name[..^1], StringComparison.Ordinal) : Name == value.Name;
        }
        return Low <= value.Low && value.High <= High;
    }

    public bool Overlaps(NftKeyPart other) =>
        Name is null && other.Name is null ? Low <= other.High && other.Low <= High : Name == other.Name;

    public int CompareTo(NftKeyPart other)
    {
        int c = Low.CompareTo(other.Low);
        if (c == 0)
        {
            c = High.CompareTo(other.High);
        }
        return c != 0 ? c : string.CompareOrdinal(Name, other.Name);
    }

    public static bool operator <(NftKeyPart left, NftKeyPart right) => left.CompareTo(right) < 0;

    public static bool operator >(NftKeyPart left, NftKeyPart right) => left.CompareTo(right) > 0;

    public static bool operator <=(NftKeyPart left, NftKeyPart right) => left.CompareTo(right) <= 0;

    public static bool operator >=(NftKeyPart left, NftKeyPart right) => left.CompareTo(right) >= 0;
}

internal static class NftValues
{
    public static string TypeName(NftDataType t) => t switch
    {
        NftDataType.Ipv4Addr => "ipv4_addr",
        NftDataType.Ipv6Addr => "ipv6_addr",
        NftDataType.InetProto => "inet_proto",
        NftDataType.InetService => "inet_service",
        NftDataType.IfName => "ifname",
        NftDataType.Mark => "mark",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    public static bool TryParseType(string name, out NftDataType type)
    {
        switch (name)
        {
            case "ipv4_addr": type = NftDataType.Ipv4Addr; return true;
            case "ipv6_addr": type = NftDataType.Ipv6Addr; return true;
            case "inet_proto": type = NftDataType.InetProto; return true;
            case "inet_service": type = NftDataType.InetService; return true;
            case "ifname": type = NftDataType.IfName; return true;
            case "mark": type = NftDataType.Mark; return true;
            default: type = default; return false;
        }
    }

    public static int Bits(NftDataType t) => t switch
    {
        NftDataType.Ipv4Addr => 32,
        NftDataType.Ipv6Addr => 128,
        NftDataType.InetProto => 8,
        NftDataType.InetService => 16,
        NftDataType.Mark => 32,
        _ => 0,
    };

    private static readonly Dictionary<string, int> s_protocols = new(StringComparer.Ordinal)
    {
        ["icmp"] = 1, ["tcp"] = 6, ["udp"] = 17, ["icmpv6"] = 58, ["sctp"] = 132,
    };

    public static int? ProtocolNumber(string name) => s_protocols.TryGetValue(name, out int n) ? n : null;

    public static string ProtocolName(int number) =>
        s_protocols.FirstOrDefault(kv => kv.Value == number).Key ?? number.ToString(CultureInfo.InvariantCulture);

    public static UInt128 FromAddress(IPAddress a)
    {
        UInt128 v = 0;
        foreach (byte b in a.GetAddressBytes())
        {
            v = (v << 8) | b;
        }
        return v;
    }

    public static IPAddress ToAddress(UInt128 v, NftDataType t)
    {
        int n = t == NftDataType.Ipv4Addr ? 4 : 16;
        var bytes = new byte[n];
        for (int i = n - 1; i >= 0; i--)
        {
            bytes[i] = (byte)(v & 0xff);
            v >>= 8;
        }
        return new IPAddress(bytes);
    }

    /// <summary>Parses one literal of a type: an address, CIDR or <c>a-b</c> range, a protocol, a port (range), a mark, an ifname.</summary>
    public static NftKeyPart Parse(Token token, NftDataType type, TokenReader errors)
    {
        string text = token.Text;
        if (type == NftDataType.IfName)
        {
            if (token.Kind is not (TokenKind.String or TokenKind.Word))
            {
                throw errors.Error($"expected an interface name, found '{token}'");
            }
            if (text.Length is 0 or > 15)
            {
                throw errors.Error($"interface name '{text}' must be 1-15 characters");
            }
            return new NftKeyPart(0, 0, text);
        }
        if (token.Kind != TokenKind.Word)
        {
            throw errors.Error($"expected a {TypeName(type)} value, found '{token}'");
        }
        switch (type)
        {
            case NftDataType.Ipv4Addr:
            case NftDataType.Ipv6Addr:
                {
                    var family = type == NftDataType.Ipv4Addr ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
                    int bits = Bits(type);
                    int slash = text.IndexOf('/', StringComparison.Ordinal);
                    if (slash >= 0)
                    {
                        if (!IPAddress.TryParse(text[..slash], out var a) || a.AddressFamily != family ||
                            !int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int len) || len > bits)
                        {
                            throw errors.Error($"'{text}' is not a {TypeName(type)} prefix");
                        }
                        UInt128 hostMask = len == 0 ? (bits == 128 ? UInt128.MaxValue : ((UInt128)1 << bits) - 1) : (((UInt128)1 << (bits - len)) - 1);
                        UInt128 low = FromAddress(a) & ~hostMask;
                        return new NftKeyPart(low, low | hostMask);
                    }
                    int dash = text.IndexOf('-', StringComparison.Ordinal);
                    if (dash >= 0)
                    {
                        var lo = ParseAddress(text[..dash], family, type, errors);
                        var hi = ParseAddress(text[(dash + 1)..], family, type, errors);
                        return Ordered(lo, hi, text, errors);
                    }
                    return NftKeyPart.Point(ParseAddress(text, family, type, errors));
                }
            case NftDataType.InetProto:
                {
                    if (ProtocolNumber(text) is int p)
                    {
                        return NftKeyPart.Point((UInt128)p);
                    }
                    if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n <= 255)
                    {
                        return NftKeyPart.Point((UInt128)n);
                    }
                    throw errors.Error($"'{text}' is not a protocol (tcp, udp, sctp, icmp, icmpv6 or 0-255)");
                }
            case NftDataType.InetService:
                {
                    int dash = text.IndexOf('-', StringComparison.Ordinal);
                    if (dash > 0)
                    {
                        return Ordered(ParsePort(text[..dash], errors), ParsePort(text[(dash + 1)..], errors), text, errors);
                    }
                    return NftKeyPart.Point(ParsePort(text, errors));
                }
            case NftDataType.Mark:
                return NftKeyPart.Point(ParseNumber(text, errors, "mark"));
            default:
                throw errors.Error($"unsupported type {TypeName(type)}");
        }
    }

    private static NftKeyPart Ordered(UInt128 lo, UInt128 hi, string text, TokenReader errors) =>
        lo <= hi ? new NftKeyPart(lo, hi) : throw errors.Error($"range '{text}' has its first value above its last");

    private static UInt128 ParseAddress(string s, AddressFamily family, NftDataType type, TokenReader errors)
    {
        // IPAddress.TryParse accepts "10" or "10.1" (inet_aton forms); nft does not, so insist on dotted quads.
        if (!IPAddress.TryParse(s, out var a) || a.AddressFamily != family || (family == AddressFamily.InterNetwork && s.Count(ch => ch == '.') != 3))
        {
            throw errors.Error($"'{s}' is not a {TypeName(type)}");
        }
        return FromAddress(a);
    }

    private static UInt128 ParsePort(string s, TokenReader errors) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p <= 65535
            ? (UInt128)p
            : throw errors.Error($"'{s}' is not a port (0-65535)");

    public static uint ParseNumber(string s, TokenReader errors, string what)
    {
        bool ok = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? uint.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint v)
            : uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        return ok ? v : throw errors.Error($"'{s}' is not a {what} (a 32-bit number, decimal or 0x hex)");
    }

    public static string Format(NftKeyPart part, NftDataType type)
    {
        switch (type)
        {
            case NftDataType.IfName:
                return "\"" + part.Name + "\"";
            case NftDataType.Ipv4Addr:
            case NftDataType.Ipv6Addr:
                {
                    if (part.IsSingle)
                    {
                        return ToAddress(part.Low, type).ToString();
                    }
                    int bits = Bits(type);
                    UInt128 span = part.High - part.Low;
                    // A prefix: span+1 is a power of two and Low is aligned to it.
                    if (span != UInt128.MaxValue && UInt128.IsPow2(span + 1) && (part.Low & span) == 0)
                    {
                        int hostBits = (int)UInt128.Log2(span + 1);
                        return $"{ToAddress(part.Low, type)}/{bits - hostBits}";
                    }
                    if (span == UInt128.MaxValue)
                    {
                        return "::/0";
                    }
                    return $"{ToAddress(part.Low, type)}-{ToAddress(part.High, type)}";
                }
            case NftDataType.InetProto:
                return ProtocolName((int)part.Low);
            case NftDataType.Mark:
                return "0x" + ((uint)part.Low).ToString("x8", CultureInfo.InvariantCulture);
            default:
                return part.IsSingle
                    ? part.Low.ToString(CultureInfo.InvariantCulture)
                    : $"{part.Low.ToString(CultureInfo.InvariantCulture)}-{part.High.ToString(CultureInfo.InvariantCulture)}";
        }
    }

    public static string FormatKey(IReadOnlyList<NftKeyPart> key, IReadOnlyList<NftDataType> types) =>
        string.Join(" . ", key.Select((p, i) => Format(p, types[i])));
}
