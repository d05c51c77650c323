namespace Trellis.Dns;

/// <summary>RR TYPE values (RFC 1035 §3.2.2, 3596, 2782, 6891). Any other value is carried as its number.</summary>
public enum DnsRecordType : ushort
{
    A = 1,
    NS = 2,
    CNAME = 5,
    SOA = 6,
    PTR = 12,
    MX = 15,
    TXT = 16,
    AAAA = 28,
    SRV = 33,
    OPT = 41,
    IXFR = 251,
    AXFR = 252,
    ANY = 255,
}

/// <summary>Response codes; values above 15 travel in the OPT record's extended-rcode byte (RFC 6891 §6.1.3).</summary>
public enum DnsRcode
{
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NXDomain = 3,
    NotImp = 4,
    Refused = 5,
    BadVers = 16,
}

public static class DnsClass
{
    public const ushort IN = 1;
    public const ushort CH = 3;
    public const ushort Any = 255;
}

public static class DnsOpcode
{
    public const int Query = 0;
}

/// <summary>Header flag bits (RFC 1035 §4.1.1, 4035 for AD/CD).</summary>
[Flags]
public enum DnsFlags : ushort
{
    None = 0,
    QR = 0x8000,
    AA = 0x0400,
    TC = 0x0200,
    RD = 0x0100,
    RA = 0x0080,
    AD = 0x0020,
    CD = 0x0010,
}

/// <summary>The malformed-packet error: the message says which part of the packet is at fault.</summary>
public sealed class DnsFormatException : Exception
{
    public DnsFormatException(string message) : base(message)
    {
    }

    public DnsFormatException()
    {
    }

    public DnsFormatException(string message, Exception inner) : base(message, inner)
    {
    }
}
