using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Trellis.Core.Objects;

namespace Trellis.Core.Dns;

/// <summary>
/// An immutable snapshot of the cluster zone (Kubernetes DNS-Based Service Discovery, schema 1.1.0) and
/// the answer function over it. Built once per store change by <see cref="Compile"/>; the server swaps the
/// reference, so queries read it without locks. Pure: no I/O, no clock.
/// </summary>
public sealed partial class DnsZone
{
    public const string SchemaVersion = "1.1.0";

    // Longest CNAME chain followed inside the zone (ExternalName → ExternalName → …) before giving up.
    private const int MaxChase = 8;

    private readonly FrozenDictionary<string, ZoneNode> _nodes;
    private readonly FrozenSet<string> _namespaces;
    private readonly FrozenSet<(string Namespace, IPAddress Address)> _podIPs;
    private readonly ZoneAnswer _nxDomain;
    private readonly ZoneAnswer _noData;
    private readonly ZoneAnswer _reverseNoData;
    private readonly string _podSuffix;

    private DnsZone(DnsZoneOptions options, string origin, long revision, FrozenDictionary<string, ZoneNode> nodes, FrozenSet<string> namespaces,
        FrozenSet<(string, IPAddress)> podIPs, int serviceCount, int recordCount)
    {
        Options = options;
        Origin = origin;
        Revision = revision;
        _nodes = nodes;
        _namespaces = namespaces;
        _podIPs = podIPs;
        ServiceCount = serviceCount;
        RecordCount = recordCount;
        Soa = MakeSoa(origin, options.Ttl, revision);
        _nxDomain = new ZoneAnswer(ZoneAnswerKind.Authoritative, ZoneRcode.NXDomain, [], [Soa], []);
        _noData = new ZoneAnswer(ZoneAnswerKind.Authoritative, ZoneRcode.NoError, [], [Soa], []);
        _reverseNoData = new ZoneAnswer(ZoneAnswerKind.Authoritative, ZoneRcode.NoError, [], [Soa with { Name = "in-addr.arpa." }], []);
        _podSuffix = ".pod." + origin;
        var lookup = nodes.GetAlternateLookup<ReadOnlySpan<char>>();
        // One delegate per snapshot, so interning a query name allocates nothing.
        // (A node's records carry its name, so the owner string comes from the first.)
        InternName = name => lookup.TryGetValue(name, out var node) && !node.All.IsEmpty ? node.All[0].Name : null;
    }

    /// <summary>The zone's own string for a name it holds (null otherwise): lets the server parse a question without allocating its name.</summary>
    public Func<ReadOnlySpan<char>, string?> InternName { get; }

    public DnsZoneOptions Options { get; }

    /// <summary>The cluster domain as an absolute lower-case name: "cluster.local.".</summary>
    public string Origin { get; }

    /// <summary>The store revision the snapshot was compiled from (also the SOA serial, modulo 2^32).</summary>
    public long Revision { get; }

    public SoaRecord Soa { get; }

    public int ServiceCount { get; }

    public int RecordCount { get; }

    /// <summary>An empty zone (before the first snapshot, or in tests).</summary>
    public static DnsZone Empty(DnsZoneOptions options) => Compile(Array.Empty<string>(), Array.Empty<DnsService>(), Array.Empty<DnsEndpointSlice>(), Array.Empty<DnsPod>(), options, 0);

    /// <summary>
    /// Answers one question. <paramref name="qname"/> is absolute and lower-case ("web.default.svc.cluster.local.");
    /// the server lower-cases it once when it parses the query.
    /// </summary>
    public ZoneAnswer Answer(string qname, ushort qtype)
    {
        ArgumentNullException.ThrowIfNull(qname);
        if (IsReverse(qname))
        {
            // Only addresses the cluster owns are answered here; the rest falls through to upstream (CoreDNS: fallthrough in-addr.arpa ip6.arpa).
            return _nodes.TryGetValue(qname, out var rnode) ? FromNode(qname, rnode, qtype, 0, reverse: true) : ZoneAnswer.Forward;
        }
        if (!InZone(qname))
        {
            return ZoneAnswer.Forward;
        }
        return AnswerInZone(qname, qtype, 0);
    }

    private ZoneAnswer AnswerInZone(string qname, ushort qtype, int depth)
    {
        if (_nodes.TryGetValue(qname, out var node))
        {
            return FromNode(qname, node, qtype, depth, reverse: false);
        }
        if (qname.EndsWith(_podSuffix, StringComparison.Ordinal) && PodAnswer(qname, qtype) is { } pod)
        {
            return pod;
        }
        return _nxDomain;
    }

    private ZoneAnswer FromNode(string qname, ZoneNode node, ushort qtype, int depth, bool reverse)
    {
        if (node.Cname is { } cname && qtype != ZoneRecordType.CNAME)
        {
            return Chase(cname, qtype, depth);
        }
        if (qtype != ZoneRecordType.ANY && node.CachedAnswer(qtype) is { } cached)
        {
            return cached;
        }
        var records = qtype == ZoneRecordType.ANY ? node.All : node.OfType(qtype);
        if (records.IsEmpty)
        {
            return reverse ? (qname.EndsWith(".ip6.arpa.", StringComparison.Ordinal) ? _reverseNoData with { Authority = [Soa with { Name = "ip6.arpa." }] } : _reverseNoData) : _noData;
        }
        var answer = new ZoneAnswer(ZoneAnswerKind.Authoritative, ZoneRcode.NoError, records, [], AdditionalFor(records));
        if (qtype != ZoneRecordType.ANY)
        {
            node.CacheAnswer(qtype, answer);
        }
        return answer;
    }

    /// <summary>
    /// An ExternalName's CNAME, followed while it stays inside the cluster domain; a target outside it is
    /// left for the server to resolve upstream (<see cref="ZoneAnswer.ChaseName"/>). The rcode is the last
    /// name's (RFC 6604).
    /// </summary>
    private ZoneAnswer Chase(TargetRecord cname, ushort qtype, int depth)
    {
        if (depth >= MaxChase || !InZone(cname.Target))
        {
            return new ZoneAnswer(ZoneAnswerKind.Authoritative, ZoneRcode.NoError, [cname], [], [], depth >= MaxChase ? null : cname.Target);
        }
        var rest = AnswerInZone(cname.Target, qtype, depth + 1);
        return rest with { Answer = rest.Answer.Insert(0, cname) };
    }

    private ImmutableArray<ZoneRecord> AdditionalFor(ImmutableArray<ZoneRecord> answers)
    {
        ImmutableArray<ZoneRecord>.Builder? extra = null;
        foreach (var r in answers)
        {
            string? target = r switch
            {
                SrvRecord s => s.Target,
                TargetRecord { Type: ZoneRecordType.NS } ns => ns.Target,
                _ => null,
            };
            if (target is not null && _nodes.TryGetValue(target, out var t))
            {
                extra ??= ImmutableArray.CreateBuilder<ZoneRecord>();
                foreach (var a in t.OfType(ZoneRecordType.A).Concat(t.OfType(ZoneRecordType.AAAA)))
                {
                    if (!extra.Contains(a))
                    {
                        extra.Add(a);
                    }
                }
            }
        }
        return extra?.ToImmutable() ?? [];
    }

    /// <summary>
    /// <c>a-b-c-d.ns.pod.zone</c> (IPv6: the address with ':' as '-'). Null when the name has another shape,
    /// which the caller answers NXDOMAIN.
    /// </summary>
    private ZoneAnswer? PodAnswer(string qname, ushort qtype)
    {
        var rest = qname.AsSpan(0, qname.Length - _podSuffix.Length);
        int dot = rest.IndexOf('.');
        if (dot <= 0 || Options.Pods == PodRecordsMode.Disabled)
        {
            return null;
        }
        string ns = rest[(dot + 1)..].ToString();
        var label = rest[..dot];
        if (ns.Contains('.', StringComparison.Ordinal) || !_namespaces.Contains(ns) || !TryParseDashedIP(label, out var ip))
        {
            return null;
        }
        if (Options.Pods == PodRecordsMode.Verified && !_podIPs.Contains((ns, ip)))
        {
            return null;
        }
        var record = new AddressRecord(qname, Options.Ttl, ip);
        if (qtype == record.Type || qtype == ZoneRecordType.ANY)
        {
            return new ZoneAnswer(ZoneAnswerKind.Authoritative, ZoneRcode.NoError, [record], [], []);
        }
        return _noData;
    }

    private static bool TryParseDashedIP(ReadOnlySpan<char> label, out IPAddress ip)
    {
        ip = IPAddress.None;
        int dashes = label.Count('-');
        Span<char> text = stackalloc char[label.Length];
        label.CopyTo(text);
        if (dashes == 3 && !label.Contains("--", StringComparison.Ordinal))
        {
            text.Replace('-', '.');
            return IPAddress.TryParse(text, out ip!) && ip.AddressFamily == AddressFamily.InterNetwork;
        }
        text.Replace('-', ':');
        return dashes >= 2 && IPAddress.TryParse(text, out ip!) && ip.AddressFamily == AddressFamily.InterNetworkV6 && ip.ScopeId == 0;
    }

    public bool InZone(string name) =>
        name.Length >= Origin.Length && name.EndsWith(Origin, StringComparison.Ordinal)
        && (name.Length == Origin.Length || name[^(Origin.Length + 1)] == '.');

    public static bool IsReverse(string name) =>
        name.EndsWith(".in-addr.arpa.", StringComparison.Ordinal) || name.EndsWith(".ip6.arpa.", StringComparison.Ordinal)
        || name is "in-addr.arpa." or "ip6.arpa.";

    private static SoaRecord MakeSoa(string origin, uint ttl, long revision) =>
        // As CoreDNS: mname ns.dns.<zone>, rname hostmaster.<zone>, refresh 2 h, retry 30 min, expire 1 day, minimum = the TTL.
        new(origin, ttl, "ns.dns." + origin, "hostmaster." + origin, (uint)(revision & 0xFFFFFFFF), 7200, 1800, 86400, ttl);

    /// <summary>Every name and its records in zone-file form, sorted: the golden-file form of a snapshot.</summary>
    public string Dump()
    {
        var lines = new List<string> { Soa.ToString() };
        foreach (var (name, node) in _nodes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            lines.AddRange(node.All.Select(r => r.ToString()).Order(StringComparer.Ordinal));
            if (node.All.IsEmpty)
            {
                lines.Add($"; {name} (empty non-terminal)");
            }
        }
        return string.Join('\n', lines) + "\n";
    }

    internal static string Invariant(int v) => v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One owner name: its records grouped by type. A node without records is an empty non-terminal (RFC 8020: it exists).</summary>
internal sealed class ZoneNode(ImmutableArray<ZoneRecord> all)
{
    private readonly (ushort Type, ImmutableArray<ZoneRecord> Records)[] _byType =
        all.GroupBy(r => r.Type).Select(g => (g.Key, g.ToImmutableArray())).ToArray();

    public ImmutableArray<ZoneRecord> All { get; } = all;

    public TargetRecord? Cname { get; } = all.OfType<TargetRecord>().FirstOrDefault(r => r.Type == ZoneRecordType.CNAME);

    // Positive answers built on first use and kept with the snapshot, so a hit allocates nothing here.
    // Racing writers store equal answers; a reference write is atomic.
    private readonly ZoneAnswer?[] _answers = new ZoneAnswer?[all.Select(r => r.Type).Distinct().Count()];

    public ZoneAnswer? CachedAnswer(ushort type)
    {
        for (int i = 0; i < _byType.Length; i++)
        {
            if (_byType[i].Type == type)
            {
                return Volatile.Read(ref _answers[i]);
            }
        }
        return null;
    }

    public void CacheAnswer(ushort type, ZoneAnswer answer)
    {
        for (int i = 0; i < _byType.Length; i++)
        {
            if (_byType[i].Type == type)
            {
                Volatile.Write(ref _answers[i], answer);
            }
        }
    }

    public ImmutableArray<ZoneRecord> OfType(ushort type)
    {
        foreach (var (t, records) in _byType)
        {
            if (t == type)
            {
                return records;
            }
        }
        return [];
    }
}
