using System.Net;

namespace Trellis.Dns;

/// <summary>
/// A fixed authoritative zone answered without I/O: the lab's "internet resolver" (the upstream stub in the
/// underlay netns that trellis-dns forwards outside names to). A and AAAA records plus the PTR names of their
/// IPv4 addresses; an existing name without the asked type is NODATA, a missing name under the apex NXDOMAIN
/// (both with the SOA, RFC 2308), anything outside the apex and its reverse names REFUSED.
/// </summary>
public sealed class StaticZone
{
    private const uint Ttl = 30;
    private readonly string _apex;
    private readonly Dictionary<string, List<IPAddress>> _addresses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _pointers = new(StringComparer.Ordinal);

    /// <param name="apex">The zone, e.g. "test".</param>
    /// <param name="records">Owner names (relative to nothing: "outside.test") and their addresses.</param>
    public StaticZone(string apex, IEnumerable<KeyValuePair<string, IPAddress>> records)
    {
        ArgumentNullException.ThrowIfNull(apex);
        ArgumentNullException.ThrowIfNull(records);
        _apex = Fqdn(apex);
        foreach (var (name, address) in records)
        {
            string owner = Fqdn(name);
            if (!InZone(owner, _apex))
            {
                throw new ArgumentException($"{name} is not in the zone {apex}", nameof(records));
            }
            if (!_addresses.TryGetValue(owner, out var list))
            {
                _addresses[owner] = list = [];
            }
            list.Add(address);
            if (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            {
                _pointers.TryAdd(ReverseName(address), owner);
            }
        }
    }

    public string Apex => _apex;

    /// <summary>Writes the answer to <paramref name="query"/> into <paramref name="response"/>; returns its length, 0 = drop.</summary>
    public int Respond(ReadOnlySpan<byte> query, Span<byte> response)
    {
        var status = DnsRequest.TryParse(query, out var req, out _);
        if (status == DnsRequestStatus.Drop)
        {
            return 0;
        }
        Span<int> names = stackalloc int[64];
        var w = new DnsWriter(response, names);
        var flags = DnsFlags.QR | (req.Flags & DnsFlags.RD);
        if (status == DnsRequestStatus.FormErr || req.QuestionCount != 1)
        {
            w.WriteHeader(req.Id, flags, req.Opcode, (int)DnsRcode.FormErr);
            return w.Overflowed ? 0 : w.Position;
        }
        if (req.Opcode != DnsOpcode.Query)
        {
            w.WriteHeader(req.Id, flags, req.Opcode, (int)DnsRcode.NotImp);
            return w.Overflowed ? 0 : w.Position;
        }
        string name = req.Name;
        bool forward = InZone(name, _apex);
        bool reverse = _pointers.ContainsKey(name) || name.EndsWith(".in-addr.arpa.", StringComparison.Ordinal) && _pointers.Keys.Any(k => k.EndsWith("." + name, StringComparison.Ordinal));
        if (req.Class != DnsClass.IN || !forward && !reverse)
        {
            w.WriteHeader(req.Id, flags, req.Opcode, (int)DnsRcode.Refused);
            w.TryWriteRawQuestion(query[req.Question]);
            w.SetCounts(1, 0, 0, 0);
            return w.Overflowed ? 0 : w.Position;
        }
        var answers = new List<(DnsRecordType Type, object Data)>();
        bool exists;
        if (forward)
        {
            exists = name == _apex || _addresses.ContainsKey(name) || _addresses.Keys.Any(k => k.EndsWith("." + name, StringComparison.Ordinal));
            if (_addresses.TryGetValue(name, out var list))
            {
                foreach (var a in list)
                {
                    var t = a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? DnsRecordType.A : DnsRecordType.AAAA;
                    if ((ushort)t == req.Type || req.Type == (ushort)DnsRecordType.ANY)
                    {
                        answers.Add((t, a));
                    }
                }
            }
        }
        else
        {
            exists = true; // an owned PTR name, or one of its ancestors
            if (_pointers.TryGetValue(name, out var target) && (req.Type == (ushort)DnsRecordType.PTR || req.Type == (ushort)DnsRecordType.ANY))
            {
                answers.Add((DnsRecordType.PTR, target));
            }
        }
        w.WriteHeader(req.Id, flags | DnsFlags.AA, req.Opcode, (int)(exists ? DnsRcode.NoError : DnsRcode.NXDomain));
        w.TryWriteRawQuestion(query[req.Question]);
        foreach (var (type, data) in answers)
        {
            if (type == DnsRecordType.PTR)
            {
                w.WriteNameRecord(name, DnsRecordType.PTR, Ttl, (string)data);
            }
            else
            {
                w.WriteAddress(name, Ttl, (IPAddress)data);
            }
        }
        int authority = 0;
        if (answers.Count == 0)
        {
            // RFC 2308: the SOA makes the negative answer cacheable (for its MINIMUM).
            w.WriteSoa(forward ? _apex : name, Ttl, "ns." + _apex, "hostmaster." + _apex, 1, 7200, 1800, 86400, Ttl);
            authority = 1;
        }
        w.SetCounts(1, answers.Count, authority, 0);
        return w.Overflowed ? 0 : w.Position;
    }

    public static string ReverseName(IPAddress v4)
    {
        ArgumentNullException.ThrowIfNull(v4);
        var b = v4.GetAddressBytes();
        return $"{b[3]}.{b[2]}.{b[1]}.{b[0]}.in-addr.arpa.";
    }

    private static string Fqdn(string name) => name.ToLowerInvariant().TrimEnd('.') + ".";

    private static bool InZone(string name, string apex) => name == apex || name.EndsWith("." + apex, StringComparison.Ordinal);
}
