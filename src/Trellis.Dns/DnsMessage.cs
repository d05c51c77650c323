using System.Collections.Immutable;
using System.Net;
using System.Text;

namespace Trellis.Dns;

public sealed record DnsQuestion(string Name, ushort Type, ushort Class)
{
    public DnsRecordType RecordType => (DnsRecordType)Type;
}

/// <summary>One resource record. <see cref="Data"/> is decoded for the types Trellis serves; others keep raw RDATA.</summary>
/// <param name="TtlOffset">Where the TTL sits in the parsed message (the forwarding cache ages TTLs in place).</param>
public sealed record DnsResourceRecord(string Name, ushort Type, ushort Class, uint Ttl, DnsRData Data, int TtlOffset = -1)
{
    public DnsRecordType RecordType => (DnsRecordType)Type;

    public override string ToString() => $"{Name} {Ttl} {(Class == DnsClass.IN ? "IN" : Class.ToString(System.Globalization.CultureInfo.InvariantCulture))} {TypeName(Type)} {Data}";

    public static string TypeName(ushort type) => Enum.IsDefined((DnsRecordType)type) ? ((DnsRecordType)type).ToString() : $"TYPE{type}";
}

public abstract record DnsRData;

public sealed record AddressData(IPAddress Address) : DnsRData
{
    public override string ToString() => Address.ToString();
}

/// <summary>CNAME, PTR, NS target.</summary>
public sealed record NameData(string Target) : DnsRData
{
    public override string ToString() => Target;
}

public sealed record SrvData(ushort Priority, ushort Weight, ushort Port, string Target) : DnsRData
{
    public override string ToString() => $"{Priority} {Weight} {Port} {Target}";
}

public sealed record TxtData(ImmutableArray<string> Strings) : DnsRData
{
    public override string ToString() => string.Join(' ', Strings.Select(s => $"\"{s}\""));
}

public sealed record SoaData(string MName, string RName, uint Serial, uint Refresh, uint Retry, uint Expire, uint Minimum) : DnsRData
{
    public override string ToString() => $"{MName} {RName} {Serial} {Refresh} {Retry} {Expire} {Minimum}";
}

public sealed record RawData(ImmutableArray<byte> Bytes) : DnsRData
{
    public override string ToString() => $"\\# {Bytes.Length} {Convert.ToHexString(Bytes.AsSpan())}";
}

/// <summary>The EDNS0 OPT record's fields (RFC 6891 §6.1.3).</summary>
public sealed record EdnsInfo(ushort UdpPayloadSize, int ExtendedRcodeHigh, byte Version, bool DnssecOk, ImmutableArray<byte> Options);

/// <summary>A parsed DNS message.</summary>
public sealed class DnsMessage
{
    public ushort Id { get; init; }

    public DnsFlags Flags { get; init; }

    public int Opcode { get; init; }

    /// <summary>The full rcode: the header's 4 bits plus the OPT record's 8 high bits.</summary>
    public int Rcode { get; init; }

    public ImmutableArray<DnsQuestion> Questions { get; init; } = [];

    public ImmutableArray<DnsResourceRecord> Answers { get; init; } = [];

    public ImmutableArray<DnsResourceRecord> Authority { get; init; } = [];

    /// <summary>The additional section without the OPT record (that is <see cref="Edns"/>).</summary>
    public ImmutableArray<DnsResourceRecord> Additional { get; init; } = [];

    public EdnsInfo? Edns { get; init; }

    public bool IsResponse => (Flags & DnsFlags.QR) != 0;

    public DnsRcode ResponseCode => (DnsRcode)Rcode;

    /// <summary>Parses a whole message; <see cref="DnsFormatException"/> names the section and offset at fault.</summary>
    public static DnsMessage Parse(ReadOnlySpan<byte> message)
    {
        var r = new DnsReader(message);
        if (message.Length < DnsWriter.HeaderLength)
        {
            throw new DnsFormatException($"header: a message needs 12 octets, got {message.Length}");
        }
        ushort id = r.ReadUInt16("header.id");
        ushort flags = r.ReadUInt16("header.flags");
        int qd = r.ReadUInt16("header.qdcount");
        int an = r.ReadUInt16("header.ancount");
        int ns = r.ReadUInt16("header.nscount");
        int ar = r.ReadUInt16("header.arcount");
        // Every question takes at least 5 octets and every record 11: refuse absurd counts before allocating for them.
        if ((qd * 5L) + ((an + ns + ar) * 11L) > r.Remaining)
        {
            throw new DnsFormatException($"header: counts (qd {qd}, an {an}, ns {ns}, ar {ar}) exceed the {message.Length}-octet message");
        }
        var questions = ImmutableArray.CreateBuilder<DnsQuestion>(qd);
        for (int i = 0; i < qd; i++)
        {
            string name = r.ReadName($"question[{i}].name");
            questions.Add(new DnsQuestion(name, r.ReadUInt16($"question[{i}].type"), r.ReadUInt16($"question[{i}].class")));
        }
        var answers = ReadSection(ref r, message, an, "answer", out _);
        var authority = ReadSection(ref r, message, ns, "authority", out _);
        var additional = ReadSection(ref r, message, ar, "additional", out var edns);
        int rcode = (flags & 0xF) | ((edns?.ExtendedRcodeHigh ?? 0) << 4);
        return new DnsMessage
        {
            Id = id,
            Flags = (DnsFlags)(flags & 0x87F0),
            Opcode = (flags >> 11) & 0xF,
            Rcode = rcode,
            Questions = questions.MoveToImmutable(),
            Answers = answers,
            Authority = authority,
            Additional = additional,
            Edns = edns,
        };
    }

    private static ImmutableArray<DnsResourceRecord> ReadSection(ref DnsReader r, ReadOnlySpan<byte> message, int count, string section, out EdnsInfo? edns)
    {
        edns = null;
        var list = ImmutableArray.CreateBuilder<DnsResourceRecord>(count);
        for (int i = 0; i < count; i++)
        {
            string where = $"{section}[{i}]";
            string name = r.ReadName($"{where}.name");
            ushort type = r.ReadUInt16($"{where}.type");
            ushort cls = r.ReadUInt16($"{where}.class");
            int ttlOffset = r.Position;
            uint ttl = r.ReadUInt32($"{where}.ttl");
            int rdLength = r.ReadUInt16($"{where}.rdlength");
            int rdStart = r.Position;
            var rdata = r.ReadBytes(rdLength, $"{where}.rdata");
            if (type == (ushort)DnsRecordType.OPT)
            {
                if (section != "additional" || name != ".")
                {
                    throw new DnsFormatException($"{where}: an OPT record must be in the additional section with the root name");
                }
                if (edns is not null)
                {
                    throw new DnsFormatException($"{where}: more than one OPT record");
                }
                edns = new EdnsInfo(cls, (int)(ttl >> 24), (byte)(ttl >> 16), (ttl & 0x8000) != 0, [.. rdata]);
                continue;
            }
            var data = DecodeRData(message, rdStart, rdLength, type, where);
            list.Add(new DnsResourceRecord(name, type, cls, ttl, data, ttlOffset));
        }
        return list.Count == list.Capacity ? list.MoveToImmutable() : list.ToImmutable();
    }

    private static DnsRData DecodeRData(ReadOnlySpan<byte> message, int start, int length, ushort type, string where)
    {
        var r = new DnsReader(message, start);
        int end = start + length;
        DnsRData data;
        switch ((DnsRecordType)type)
        {
            case DnsRecordType.A when length == 4:
            case DnsRecordType.AAAA when length == 16:
                return new AddressData(new IPAddress(message.Slice(start, length)));
            case DnsRecordType.A:
            case DnsRecordType.AAAA:
                throw new DnsFormatException($"{where}.rdata: {(DnsRecordType)type} needs {(type == 1 ? 4 : 16)} octets, got {length}");
            case DnsRecordType.CNAME:
            case DnsRecordType.PTR:
            case DnsRecordType.NS:
                data = new NameData(r.ReadName($"{where}.rdata"));
                break;
            case DnsRecordType.SRV:
                data = new SrvData(r.ReadUInt16($"{where}.priority"), r.ReadUInt16($"{where}.weight"), r.ReadUInt16($"{where}.port"), r.ReadName($"{where}.target"));
                break;
            case DnsRecordType.SOA:
                data = new SoaData(r.ReadName($"{where}.mname"), r.ReadName($"{where}.rname"), r.ReadUInt32($"{where}.serial"), r.ReadUInt32($"{where}.refresh"),
                    r.ReadUInt32($"{where}.retry"), r.ReadUInt32($"{where}.expire"), r.ReadUInt32($"{where}.minimum"));
                break;
            case DnsRecordType.TXT:
                var strings = ImmutableArray.CreateBuilder<string>();
                while (r.Position < end)
                {
                    int len = r.ReadByte($"{where}.txt");
                    if (r.Position + len > end)
                    {
                        throw new DnsFormatException($"{where}.rdata: TXT string runs past RDLENGTH");
                    }
                    strings.Add(Encoding.UTF8.GetString(r.ReadBytes(len, $"{where}.txt")));
                }
                return new TxtData(strings.ToImmutable());
            default:
                return new RawData([.. message.Slice(start, length)]);
        }
        if (r.Position > end)
        {
            throw new DnsFormatException($"{where}.rdata: {(DnsRecordType)type} runs past RDLENGTH {length}");
        }
        return data;
    }
}
