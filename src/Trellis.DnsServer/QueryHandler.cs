using System.Collections.Immutable;
using System.Diagnostics;
using Trellis.Core.Dns;
using Trellis.Dns;

namespace Trellis.DnsServer;

/// <summary>
/// Turns one request into one response (or nothing). Cluster names are answered synchronously from the
/// current snapshot (<see cref="TryAnswer"/>); forwarding and ExternalName targets outside the cluster need
/// an upstream round trip (<see cref="AnswerAsync"/>).
/// </summary>
/// <remarks>
/// Without upstreams nothing leaves the server: names outside the cluster domain get REFUSED (CoreDNS with
/// no zone for the name), reverse names of addresses the cluster does not own SERVFAIL (CoreDNS's
/// <c>fallthrough</c> with no next plugin), and an ExternalName answer is the CNAME alone.
/// </remarks>
public sealed class QueryHandler
{
    public const ushort AdvertisedUdpSize = 1232; // the DNS Flag Day 2020 size: no IP fragmentation on common paths
    private const int OptLength = 11;
    private const int MaxCompressionNames = 128;

    private readonly Func<DnsZone> _zone;
    private readonly Forwarder? _forwarder;
    private readonly DnsMetrics _metrics;

    public QueryHandler(Func<DnsZone> zone, Forwarder? forwarder, DnsMetrics metrics)
    {
        _zone = zone;
        _forwarder = forwarder;
        _metrics = metrics;
    }

    /// <summary>
    /// Answers from the snapshot when no upstream is needed. Returns the response length (0: drop the
    /// packet); <paramref name="needsUpstream"/> true means nothing was written and <see cref="AnswerAsync"/> must run.
    /// </summary>
    public int TryAnswer(ReadOnlySpan<byte> request, Span<byte> response, bool tcp, out bool needsUpstream)
    {
        long start = Stopwatch.GetTimestamp();
        needsUpstream = false;
        var zone = _zone();
        var status = DnsRequest.TryParse(request, zone.InternName, out var req, out _);
        if (status == DnsRequestStatus.Drop)
        {
            _metrics.Drop();
            return 0;
        }
        if (status == DnsRequestStatus.FormErr)
        {
            _metrics.Query(0);
            return Error(req, request, response, DnsRcode.FormErr, tcp, echoQuestion: false, start);
        }
        _metrics.Query(req.Type);
        if (Precheck(req) is DnsRcode early)
        {
            return Error(req, request, response, early, tcp, echoQuestion: true, start);
        }
        var answer = zone.Answer(req.Name, req.Type);
        if (answer.Kind == ZoneAnswerKind.Forward)
        {
            if (_forwarder is null)
            {
                return Error(req, request, response, DnsZone.IsReverse(req.Name) ? DnsRcode.ServFail : DnsRcode.Refused, tcp, echoQuestion: true, start);
            }
            needsUpstream = true;
            return 0;
        }
        if (answer.ChaseName is not null && _forwarder is not null)
        {
            needsUpstream = true;
            return 0;
        }
        return Write(req, request, response, tcp, (int)answer.Rcode, authoritative: true, answer, null, 0, start);
    }

    /// <summary>The full path, upstream included. Never throws for bad input or upstream failures (those give FORMERR/SERVFAIL).</summary>
    public async ValueTask<int> AnswerAsync(ReadOnlyMemory<byte> request, Memory<byte> response, bool tcp, CancellationToken ct)
    {
        int n = TryAnswer(request.Span, response.Span, tcp, out bool needsUpstream);
        if (!needsUpstream)
        {
            return n;
        }
        long start = Stopwatch.GetTimestamp();
        DnsRequest.TryParse(request.Span, out var req, out _);
        var answer = _zone().Answer(req.Name, req.Type);
        string upstreamName = answer.ChaseName ?? req.Name;
        var reply = await _forwarder!.ResolveAsync(upstreamName, req.Type, req.Class, ct).ConfigureAwait(false);
        if (reply is null)
        {
            return Error(req, request.Span, response.Span, DnsRcode.ServFail, tcp, echoQuestion: true, start);
        }
        if (answer.Kind == ZoneAnswerKind.Forward)
        {
            return Write(req, request.Span, response.Span, tcp, reply.Message.Rcode, authoritative: (reply.Message.Flags & DnsFlags.AA) != 0, null, reply.Message, reply.AgeSeconds, start);
        }
        // ExternalName: our CNAME, then whatever upstream says about its target.
        var upstreamOnly = new DnsMessage
        {
            Rcode = reply.Message.Rcode,
            Answers = reply.Message.Answers,
            Authority = reply.Message.Authority,
        };
        return Write(req, request.Span, response.Span, tcp, reply.Message.Rcode, authoritative: true, answer, upstreamOnly, reply.AgeSeconds, start);
    }

    private static DnsRcode? Precheck(in DnsRequest req)
    {
        if (req.Opcode != DnsOpcode.Query)
        {
            return DnsRcode.NotImp;
        }
        if (req.HasEdns && req.EdnsVersion > 0)
        {
            return DnsRcode.BadVers; // RFC 6891 §6.1.3: we speak EDNS version 0 only
        }
        if (req.Type is (ushort)DnsRecordType.OPT)
        {
            return DnsRcode.FormErr;
        }
        if (req.Type is (ushort)DnsRecordType.AXFR or (ushort)DnsRecordType.IXFR)
        {
            return DnsRcode.Refused; // zone transfer is not offered (CoreDNS without the transfer plugin)
        }
        if (req.Class != DnsClass.IN && req.Class != DnsClass.Any)
        {
            return DnsRcode.Refused;
        }
        return null;
    }

    private static int MaxSize(in DnsRequest req, bool tcp, int bufferLength) =>
        Math.Min(bufferLength, tcp ? 65535 : req.HasEdns ? Math.Clamp((int)req.UdpPayloadSize, 512, 4096) : 512);

    private int Error(in DnsRequest req, ReadOnlySpan<byte> request, Span<byte> response, DnsRcode rcode, bool tcp, bool echoQuestion, long start)
    {
        int max = MaxSize(req, tcp, response.Length);
        var w = new DnsWriter(response[..max], stackalloc int[MaxCompressionNames]);
        var flags = DnsFlags.QR | (req.Flags & (DnsFlags.RD | DnsFlags.CD));
        w.WriteHeader(req.Id, flags, req.Opcode, (int)rcode & 0xF);
        int qd = 0;
        if (echoQuestion && req.Question.End.Value > req.Question.Start.Value)
        {
            if (!w.TryWriteRawQuestion(request[req.Question]))
            {
                w.WriteQuestion(req.Name, req.Type, req.Class);
            }
            qd = 1;
        }
        int ar = 0;
        if (req.HasEdns)
        {
            w.WriteOpt(AdvertisedUdpSize, (int)rcode, 0, false);
            ar = 1;
        }
        w.SetCounts(qd, 0, 0, ar);
        _metrics.Response((int)rcode, start);
        return w.Overflowed ? 0 : w.Position;
    }

    /// <summary>
    /// Header, the question as sent, then the zone's records and/or the upstream's. Over UDP, an answer or
    /// authority section that does not fit is dropped whole and TC set (the client retries over TCP); the
    /// additional section is only trimmed (RFC 2181 §9).
    /// </summary>
    private int Write(in DnsRequest req, ReadOnlySpan<byte> request, Span<byte> response, bool tcp, int rcode, bool authoritative,
        ZoneAnswer? zone, DnsMessage? upstream, uint age, long start)
    {
        int max = MaxSize(req, tcp, response.Length);
        int limit = max - (req.HasEdns ? OptLength : 0);
        var w = new DnsWriter(response[..max], stackalloc int[MaxCompressionNames]);
        var flags = DnsFlags.QR | (req.Flags & (DnsFlags.RD | DnsFlags.CD));
        if (authoritative)
        {
            flags |= DnsFlags.AA;
        }
        if (_forwarder is not null)
        {
            flags |= DnsFlags.RA;
        }
        w.WriteHeader(req.Id, flags, req.Opcode, rcode & 0xF);
        if (!w.TryWriteRawQuestion(request[req.Question]))
        {
            w.WriteQuestion(req.Name, req.Type, req.Class);
        }
        int afterQuestion = w.Position;
        int an = 0, ns = 0, ar = 0;
        bool truncated = false;
        if (zone is not null)
        {
            truncated |= !WriteSection(ref w, zone.Answer, limit, ref an);
        }
        if (upstream is not null && !truncated)
        {
            truncated |= !WriteSection(ref w, upstream.Answers, age, limit, ref an);
        }
        if (!truncated)
        {
            if (zone is not null && (upstream is null || zone.Authority.Length > 0))
            {
                truncated |= !WriteSection(ref w, zone.Authority, limit, ref ns);
            }
            if (upstream is not null && !truncated && (zone is null || zone.Authority.Length == 0))
            {
                truncated |= !WriteSection(ref w, upstream.Authority, age, limit, ref ns);
            }
        }
        if (truncated)
        {
            w.Rewind(afterQuestion);
            an = ns = 0;
            w.SetFlag(DnsFlags.TC);
            _metrics.Truncated();
        }
        else
        {
            if (zone is not null)
            {
                WriteSection(ref w, zone.Additional, limit, ref ar);
            }
            if (upstream is not null && zone is null)
            {
                WriteSection(ref w, upstream.Additional, age, limit, ref ar);
            }
        }
        if (req.HasEdns)
        {
            w.WriteOpt(AdvertisedUdpSize, rcode, 0, false);
            ar++;
        }
        w.SetCounts(1, an, ns, ar);
        _metrics.Response(rcode, start);
        return w.Overflowed ? 0 : w.Position;
    }

    private static bool WriteSection(ref DnsWriter w, ImmutableArray<ZoneRecord> records, int limit, ref int count)
    {
        foreach (var r in records)
        {
            int before = w.Position;
            switch (r)
            {
                case AddressRecord a:
                    w.WriteAddress(a.Name, a.Ttl, a.Address);
                    break;
                case TargetRecord t:
                    w.WriteNameRecord(t.Name, (DnsRecordType)t.Type, t.Ttl, t.Target);
                    break;
                case SrvRecord s:
                    w.WriteSrv(s.Name, s.Ttl, s.Priority, s.Weight, s.Port, s.Target);
                    break;
                case TxtRecord x:
                    w.WriteTxt(x.Name, x.Ttl, [x.Text]);
                    break;
                case SoaRecord soa:
                    w.WriteSoa(soa.Name, soa.Ttl, soa.MName, soa.RName, soa.Serial, soa.Refresh, soa.Retry, soa.Expire, soa.Minimum);
                    break;
                default:
                    continue;
            }
            if (w.Overflowed || w.Position > limit)
            {
                w.Rewind(before);
                return false;
            }
            count++;
        }
        return true;
    }

    private static bool WriteSection(ref DnsWriter w, ImmutableArray<DnsResourceRecord> records, uint age, int limit, ref int count)
    {
        Span<byte> b = stackalloc byte[16];
        foreach (var r in records)
        {
            int before = w.Position;
            uint ttl = r.Ttl > age ? r.Ttl - age : 0;
            switch (r.Data)
            {
                case AddressData a:
                    int at = w.BeginRecord(r.Name, r.Type, r.Class, ttl);
                    a.Address.TryWriteBytes(b, out int n);
                    w.WriteBytes(b[..n]);
                    w.EndRecord(at);
                    break;
                case NameData t:
                    int at2 = w.BeginRecord(r.Name, r.Type, r.Class, ttl);
                    w.WriteName(t.Target);
                    w.EndRecord(at2);
                    break;
                case SrvData s:
                    w.WriteSrv(r.Name, ttl, s.Priority, s.Weight, s.Port, s.Target);
                    break;
                case TxtData x:
                    w.WriteTxt(r.Name, ttl, x.Strings);
                    break;
                case SoaData soa:
                    w.WriteSoa(r.Name, ttl, soa.MName, soa.RName, soa.Serial, soa.Refresh, soa.Retry, soa.Expire, soa.Minimum);
                    break;
                case RawData raw:
                    w.WriteRaw(r.Name, r.Type, r.Class, ttl, raw.Bytes.AsSpan());
                    break;
                default:
                    continue;
            }
            if (w.Overflowed || w.Position > limit)
            {
                w.Rewind(before);
                return false;
            }
            count++;
        }
        return true;
    }
}
