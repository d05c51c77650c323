using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Trellis.Core.Objects;

namespace Trellis.Core.Dns;

public sealed partial class DnsZone
{
    /// <summary>
    /// Compiles the zone from the cluster's objects. Objects that are malformed (no name, an unparsable
    /// address, a label that is not a DNS label) contribute nothing rather than failing the whole zone:
    /// one bad Service must not take every other name down.
    /// </summary>
    public static DnsZone Compile(
        IEnumerable<NamespaceView> namespaces,
        IEnumerable<ServiceView> services,
        IEnumerable<EndpointSliceView> slices,
        IEnumerable<PodView> pods,
        DnsZoneOptions options,
        long revision) =>
        Compile(namespaces.Select(n => n.Name), services.Select(DnsService.From), slices.Select(DnsEndpointSlice.From), pods.Select(DnsPod.From), options, revision);

    /// <summary>The same, from the compact inputs the server keeps between snapshots.</summary>
    public static DnsZone Compile(
        IEnumerable<string> namespaces,
        IEnumerable<DnsService> services,
        IEnumerable<DnsEndpointSlice> slices,
        IEnumerable<DnsPod> pods,
        DnsZoneOptions options,
        long revision)
    {
        ArgumentNullException.ThrowIfNull(options);
        string origin = NormalizeDomain(options.Domain);
        uint ttl = options.Ttl;
        var b = new Builder(origin);
        var nsNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var ns in namespaces)
        {
            if (IsLabel(ns))
            {
                nsNames.Add(ns.ToLowerInvariant());
            }
        }
        var serviceList = services.Where(s => IsLabel(s.Name) && IsLabel(s.Namespace)).ToList();
        var sliceList = slices.ToList();
        foreach (var s in serviceList)
        {
            // A Service's namespace exists even when its Namespace object is not (yet) visible.
            nsNames.Add(s.Namespace.ToLowerInvariant());
        }

        // Apex: SOA and NS (served from the node), the NS host's address (the kube-dns Service, as CoreDNS), dns-version.
        var soa = MakeSoa(origin, ttl, revision);
        string nsHost = "ns.dns." + origin;
        b.Add(soa);
        b.Add(new TargetRecord(origin, ZoneRecordType.NS, ttl, nsHost));
        b.Add(new TxtRecord("dns-version." + origin, ttl, SchemaVersion));
        b.Touch("svc." + origin);
        b.Touch("pod." + origin);
        foreach (var ns in nsNames)
        {
            b.Touch($"{ns}.svc.{origin}");
            if (options.Pods != PodRecordsMode.Disabled)
            {
                b.Touch($"{ns}.pod.{origin}");
            }
        }

        var slicesByService = sliceList
            .Where(s => s.ServiceName is { Length: > 0 } && s.Namespace is { Length: > 0 } && s.AddressType is "IPv4" or "IPv6")
            .GroupBy(s => (s.Namespace.ToLowerInvariant(), s.ServiceName!.ToLowerInvariant()))
            .ToDictionary(g => g.Key, g => g.ToList());

        foreach (var svc in serviceList)
        {
            string ns = svc.Namespace.ToLowerInvariant();
            string name = svc.Name.ToLowerInvariant();
            string fqdn = $"{name}.{ns}.svc.{origin}";
            if (svc.Type == "ExternalName")
            {
                if (svc.ExternalName is { Length: > 0 } ext && NormalizeName(ext) is { } target)
                {
                    b.Add(new TargetRecord(fqdn, ZoneRecordType.CNAME, ttl, target));
                }
                continue;
            }
            if (svc.IsHeadless)
            {
                AddHeadless(b, svc, fqdn, slicesByService.GetValueOrDefault((ns, name)) ?? [], ttl);
                continue;
            }
            var ips = svc.ClusterIPs.Select(ParseIP).OfType<IPAddress>().Distinct().ToList();
            if (ips.Count == 0)
            {
                continue; // no ClusterIP allocated yet: the name does not exist until it has one
            }
            if (ns == "kube-system" && name == "kube-dns")
            {
                foreach (var ip in ips)
                {
                    b.Add(new AddressRecord(nsHost, ttl, ip));
                }
            }
            foreach (var ip in ips)
            {
                b.Add(new AddressRecord(fqdn, ttl, ip));
                b.Add(new TargetRecord(ReverseName(ip), ZoneRecordType.PTR, ttl, fqdn));
            }
            foreach (var port in svc.Ports)
            {
                if (port.Name is { Length: > 0 } pn && IsLabel(pn) && port.Port is > 0 and <= 65535 && IsLabel(port.Protocol))
                {
                    b.Add(new SrvRecord($"_{pn.ToLowerInvariant()}._{port.Protocol.ToLowerInvariant()}.{fqdn}", ttl, 0, 100, (ushort)port.Port.Value, fqdn));
                }
            }
        }

        var podIPs = new HashSet<(string, IPAddress)>();
        if (options.Pods == PodRecordsMode.Verified)
        {
            foreach (var pod in pods)
            {
                if (pod.Namespace is { Length: > 0 } ns && !pod.IsTerminating)
                {
                    foreach (var ip in pod.IPs.Select(ParseIP).OfType<IPAddress>())
                    {
                        podIPs.Add((ns.ToLowerInvariant(), ip));
                    }
                }
            }
        }
        var nodes = b.Build();
        return new DnsZone(options with { Domain = origin.TrimEnd('.') }, origin, revision, nodes, nsNames.ToFrozenSet(StringComparer.Ordinal), podIPs.ToFrozenSet(),
            serviceList.Count, nodes.Values.Sum(n => n.All.Length));
    }

    /// <summary>
    /// Headless: one A/AAAA per ready endpoint at the Service name and at <c>hostname.service</c> (the
    /// endpoint's hostname, else its address with dashes, as CoreDNS), SRV per named port to those names,
    /// PTR back to them. No ready endpoint: the name does not exist (NXDOMAIN), as the spec says.
    /// </summary>
    private static void AddHeadless(Builder b, DnsService svc, string fqdn, List<DnsEndpointSlice> slices, uint ttl)
    {
        var srvByName = new Dictionary<string, List<(ushort Port, string Target)>>(StringComparer.Ordinal);
        var seen = new HashSet<(string, IPAddress)>();
        foreach (var slice in slices)
        {
            var ports = slice.Ports;
            foreach (var ep in slice.Endpoints)
            {
                if (ep.Ready == false && !svc.PublishNotReadyAddresses)
                {
                    continue;
                }
                foreach (var ip in ep.Addresses.Select(ParseIP).OfType<IPAddress>())
                {
                    string host = ep.Hostname is { Length: > 0 } h && IsLabel(h) ? h.ToLowerInvariant() : DashedIP(ip);
                    string hostName = $"{host}.{fqdn}";
                    if (!seen.Add((hostName, ip)))
                    {
                        continue;
                    }
                    b.Add(new AddressRecord(fqdn, ttl, ip));
                    b.Add(new AddressRecord(hostName, ttl, ip));
                    b.Add(new TargetRecord(ReverseName(ip), ZoneRecordType.PTR, ttl, hostName));
                    foreach (var port in ports)
                    {
                        if (port.Name is { Length: > 0 } pn && IsLabel(pn) && port.Port is > 0 and <= 65535 && IsLabel(port.Protocol))
                        {
                            string srvName = $"_{pn.ToLowerInvariant()}._{port.Protocol.ToLowerInvariant()}.{fqdn}";
                            if (!srvByName.TryGetValue(srvName, out var list))
                            {
                                srvByName[srvName] = list = [];
                            }
                            list.Add(((ushort)port.Port!.Value, hostName));
                        }
                    }
                }
            }
        }
        foreach (var (srvName, targets) in srvByName)
        {
            // Equal priority, the weight shared out as CoreDNS does (100 / n, at least 1).
            ushort weight = (ushort)Math.Max(1, 100 / targets.Count);
            foreach (var (port, target) in targets.Distinct())
            {
                b.Add(new SrvRecord(srvName, ttl, 0, weight, port, target));
            }
        }
    }

    /// <summary>"10-244-1-5"; IPv6 as CoreDNS writes it, the compressed text with ':' replaced ("fd00--5").</summary>
    public static string DashedIP(IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(ip);
        return ip.AddressFamily == AddressFamily.InterNetwork ? ip.ToString().Replace('.', '-') : ip.ToString().Replace(':', '-');
    }

    /// <summary>"5.1.244.10.in-addr.arpa." or the nibble form under ip6.arpa.</summary>
    public static string ReverseName(IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(ip);
        var bytes = ip.GetAddressBytes();
        if (bytes.Length == 4)
        {
            return $"{bytes[3]}.{bytes[2]}.{bytes[1]}.{bytes[0]}.in-addr.arpa.";
        }
        var sb = new System.Text.StringBuilder(72);
        for (int i = bytes.Length - 1; i >= 0; i--)
        {
            sb.Append("0123456789abcdef"[bytes[i] & 0xF]).Append('.').Append("0123456789abcdef"[bytes[i] >> 4]).Append('.');
        }
        return sb.Append("ip6.arpa.").ToString();
    }

    private static IPAddress? ParseIP(string? text) =>
        text is { Length: > 0 } && IPAddress.TryParse(text, out var ip) && (ip.AddressFamily == AddressFamily.InterNetworkV6 ? ip.ScopeId == 0 && !ip.IsIPv4MappedToIPv6 : text.Count(c => c == '.') == 3)
            ? ip
            : null;

    /// <summary>"cluster.local" → "cluster.local."; rejects names that are not dotted DNS labels.</summary>
    public static string NormalizeDomain(string domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        return NormalizeName(domain) is { } n && n != "."
            ? n
            : throw new ArgumentException($"domain '{domain}': not a DNS name (dot-separated labels of letters, digits and '-', each 1-63 characters)", nameof(domain));
    }

    /// <summary>An absolute lower-case name, or null when <paramref name="name"/> is not a hostname-like DNS name.</summary>
    public static string? NormalizeName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string n = name.Trim().ToLowerInvariant();
        if (n.Length == 0 || n.Length > 253)
        {
            return null;
        }
        string bare = n.TrimEnd('.');
        if (bare.Length == 0 || bare.Length < n.Length - 1)
        {
            return null;
        }
        foreach (var label in bare.Split('.'))
        {
            if (label.Length is 0 or > 63 || !label.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return null;
            }
        }
        return bare + ".";
    }

    private static bool IsLabel(string? s) =>
        s is { Length: > 0 and <= 63 } && s.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    private sealed class Builder(string origin)
    {
        private readonly Dictionary<string, List<ZoneRecord>> _records = new(StringComparer.Ordinal);

        public void Add(ZoneRecord r)
        {
            Touch(r.Name);
            var list = _records[r.Name];
            if (!list.Contains(r))
            {
                list.Add(r);
            }
        }

        /// <summary>
        /// Makes the name and every ancestor up to the apex exist (RFC 8020: below an existing name there is
        /// no NXDOMAIN cut). Reverse names get no ancestors: the cluster owns single addresses, not the
        /// in-addr.arpa subtrees above them, and those are forwarded.
        /// </summary>
        public void Touch(string name)
        {
            if (IsReverse(name))
            {
                _records.TryAdd(name, []);
                return;
            }
            string top = origin;
            string n = name;
            while (!_records.ContainsKey(n))
            {
                _records[n] = [];
                if (n.Length <= top.Length)
                {
                    break;
                }
                n = n[(n.IndexOf('.', StringComparison.Ordinal) + 1)..];
            }
        }

        public FrozenDictionary<string, ZoneNode> Build() =>
            _records.ToFrozenDictionary(kv => kv.Key, kv => new ZoneNode([.. kv.Value]), StringComparer.Ordinal);
    }
}
