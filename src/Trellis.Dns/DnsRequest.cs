namespace Trellis.Dns;

public enum DnsRequestStatus
{
    /// <summary>A well-formed query: answer it.</summary>
    Ok,

    /// <summary>The header parsed but the rest did not: answer FORMERR with the same id (RFC 1035 §4.1.1).</summary>
    FormErr,

    /// <summary>Not a query we may answer (too short for a header, or a response): drop it, never reply to a reply.</summary>
    Drop,
}

/// <summary>
/// The server's view of a query, read without allocating beyond the lower-cased name: header, the one
/// question (and where its bytes are, to echo them), and the EDNS0 OPT record if any.
/// </summary>
public readonly struct DnsRequest
{
    public ushort Id { get; init; }

    public DnsFlags Flags { get; init; }

    public int Opcode { get; init; }

    public int QuestionCount { get; init; }

    /// <summary>The question name, lower-cased, in presentation form with the trailing dot.</summary>
    public string Name { get; init; }

    public ushort Type { get; init; }

    public ushort Class { get; init; }

    /// <summary>Offset and length of the question (name, type, class) in the request.</summary>
    public Range Question { get; init; }

    public bool HasEdns { get; init; }

    public ushort UdpPayloadSize { get; init; }

    public byte EdnsVersion { get; init; }

    public bool DnssecOk { get; init; }

    public bool RecursionDesired => (Flags & DnsFlags.RD) != 0;

    public static DnsRequestStatus TryParse(ReadOnlySpan<byte> packet, out DnsRequest request, out string? error) =>
        TryParse(packet, intern: null, out request, out error);

    /// <summary>As <see cref="TryParse(ReadOnlySpan{byte}, out DnsRequest, out string?)"/>, reusing the strings <paramref name="intern"/> knows for the question name.</summary>
    public static DnsRequestStatus TryParse(ReadOnlySpan<byte> packet, Func<ReadOnlySpan<char>, string?>? intern, out DnsRequest request, out string? error)
    {
        request = default;
        error = null;
        if (packet.Length < DnsWriter.HeaderLength)
        {
            error = "shorter than a header";
            return DnsRequestStatus.Drop;
        }
        var r = new DnsReader(packet);
        try
        {
            ushort id = r.ReadUInt16("id");
            ushort flags = r.ReadUInt16("flags");
            if ((flags & (ushort)DnsFlags.QR) != 0)
            {
                error = "a response, not a query";
                return DnsRequestStatus.Drop;
            }
            int qd = r.ReadUInt16("qdcount");
            int an = r.ReadUInt16("ancount");
            int ns = r.ReadUInt16("nscount");
            int ar = r.ReadUInt16("arcount");
            request = new DnsRequest { Id = id, Flags = (DnsFlags)(flags & 0x87F0), Opcode = (flags >> 11) & 0xF, QuestionCount = qd, Name = "." };
            if (qd != 1)
            {
                // RFC 9619: QDCOUNT must be 1 for QUERY; 0 (a cookie-only or EDNS probe) and >1 get FORMERR.
                error = $"qdcount {qd}: a query carries exactly one question";
                return DnsRequestStatus.FormErr;
            }
            int qStart = r.Position;
            string name = r.ReadName("question.name", lowerCase: true, intern);
            ushort type = r.ReadUInt16("question.type");
            ushort cls = r.ReadUInt16("question.class");
            int qEnd = r.Position;
            for (int i = 0; i < an + ns; i++)
            {
                SkipRecord(ref r);
            }
            bool hasEdns = false;
            ushort udpSize = 0;
            byte version = 0;
            bool dnssecOk = false;
            for (int i = 0; i < ar; i++)
            {
                int at = r.Position;
                r.SkipName("additional.name");
                ushort rtype = r.ReadUInt16("additional.type");
                if (rtype == (ushort)DnsRecordType.OPT)
                {
                    if (hasEdns || packet[at] != 0)
                    {
                        error = "more than one OPT record, or one not owned by the root";
                        request = request with { Name = name, Type = type, Class = cls, Question = qStart..qEnd };
                        return DnsRequestStatus.FormErr;
                    }
                    hasEdns = true;
                    udpSize = r.ReadUInt16("opt.class");
                    uint ttl = r.ReadUInt32("opt.ttl");
                    version = (byte)(ttl >> 16);
                    dnssecOk = (ttl & 0x8000) != 0;
                    r.ReadBytes(r.ReadUInt16("opt.rdlength"), "opt.rdata");
                }
                else
                {
                    r.ReadUInt16("additional.class");
                    r.ReadUInt32("additional.ttl");
                    r.ReadBytes(r.ReadUInt16("additional.rdlength"), "additional.rdata");
                }
            }
            request = request with
            {
                Name = name,
                Type = type,
                Class = cls,
                Question = qStart..qEnd,
                HasEdns = hasEdns,
                UdpPayloadSize = udpSize,
                EdnsVersion = version,
                DnssecOk = dnssecOk,
            };
            return DnsRequestStatus.Ok;
        }
        catch (DnsFormatException e)
        {
            error = e.Message;
            return DnsRequestStatus.FormErr;
        }
    }

    private static void SkipRecord(ref DnsReader r)
    {
        r.SkipName("record.name");
        r.ReadBytes(8, "record.fixed");
        r.ReadBytes(r.ReadUInt16("record.rdlength"), "record.rdata");
    }
}
