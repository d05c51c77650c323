using System.Globalization;
using System.Net;
using Trellis.Core.Dns;

namespace Trellis.DnsServer;

/// <summary>The command line of trellis-dns (DESIGN.md §6).</summary>
public sealed record DnsServerOptions
{
    public string StoreUrl { get; init; } = "";

    public IPEndPoint Listen { get; init; } = new(IPAddress.Loopback, 53);

    public DnsZoneOptions Zone { get; init; } = new();

    /// <summary>Empty: nothing is forwarded (see <see cref="QueryHandler"/> for what outside names get then).</summary>
    public IReadOnlyList<IPEndPoint> Upstreams { get; init; } = [];

    public IPEndPoint? Health { get; init; }

    /// <summary>A second address serving the same /metrics (and /ready, /healthz): CoreDNS's :9153 beside its :8080.</summary>
    public IPEndPoint? Metrics { get; init; }

    public TimeSpan UpstreamTimeout { get; init; } = TimeSpan.FromSeconds(2);

    public int CacheEntries { get; init; } = 10_000;

    public const string Usage = """
        usage: trellis-dns --store URL --listen ADDR:PORT [--domain cluster.local] [--upstream ADDR:PORT,…]
                           [--pods disabled|insecure|verified] [--ttl 30] [--health ADDR:PORT] [--metrics ADDR:PORT]

        Cluster DNS (Kubernetes DNS-Based Service Discovery 1.1.0) for the Services, EndpointSlices, Pods
        and Namespaces in the store, over UDP and TCP on --listen. Names outside the cluster domain, and
        reverse names of addresses the cluster does not own, go to the --upstream servers (cached); with no
        --upstream nothing is forwarded: outside names get REFUSED, unowned reverse names SERVFAIL, as
        CoreDNS answers without a forward plugin. --health serves /ready and /metrics (Prometheus text);
        --metrics serves the same on a second address (CoreDNS's :9153).
        """;

    /// <summary>Parses the flags; <see cref="ArgumentException"/> names the flag at fault.</summary>
    public static DnsServerOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        string[] known = ["--store", "--listen", "--domain", "--upstream", "--pods", "--ttl", "--health", "--metrics"];
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string? value = null;
            if (a.Contains('=', StringComparison.Ordinal) && a.StartsWith("--", StringComparison.Ordinal))
            {
                value = a[(a.IndexOf('=', StringComparison.Ordinal) + 1)..];
                a = a[..a.IndexOf('=', StringComparison.Ordinal)];
            }
            if (!known.Contains(a))
            {
                throw new ArgumentException($"unknown argument '{args[i]}'");
            }
            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    throw new ArgumentException($"{a}: a value is required");
                }
                value = args[++i];
            }
            flags[a] = value;
        }
        if (!flags.TryGetValue("--store", out var store) || store.Length == 0)
        {
            throw new ArgumentException("--store: required (sqlite:///path/store.db or etcd://HOST:PORT)");
        }
        if (!flags.TryGetValue("--listen", out var listen))
        {
            throw new ArgumentException("--listen: required (ADDR:PORT, e.g. 0.0.0.0:53)");
        }
        var zone = new DnsZoneOptions();
        if (flags.TryGetValue("--domain", out var domain))
        {
            try
            {
                zone = zone with { Domain = DnsZone.NormalizeDomain(domain).TrimEnd('.') };
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"--domain: {e.Message}");
            }
        }
        if (flags.TryGetValue("--pods", out var pods))
        {
            zone = zone with
            {
                Pods = pods switch
                {
                    "disabled" => PodRecordsMode.Disabled,
                    "insecure" => PodRecordsMode.Insecure,
                    "verified" => PodRecordsMode.Verified,
                    _ => throw new ArgumentException($"--pods: '{pods}' is not one of disabled, insecure, verified"),
                },
            };
        }
        if (flags.TryGetValue("--ttl", out var ttlText))
        {
            if (!uint.TryParse(ttlText, NumberStyles.None, CultureInfo.InvariantCulture, out uint ttl) || ttl > 3600)
            {
                throw new ArgumentException($"--ttl: '{ttlText}' is not a number of seconds from 0 to 3600");
            }
            zone = zone with { Ttl = ttl };
        }
        var upstreams = new List<IPEndPoint>();
        if (flags.TryGetValue("--upstream", out var up))
        {
            foreach (var part in up.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                upstreams.Add(ParseEndPoint("--upstream", part, defaultPort: 53));
            }
        }
        return new DnsServerOptions
        {
            StoreUrl = store,
            Listen = ParseEndPoint("--listen", listen, defaultPort: null),
            Zone = zone,
            Upstreams = upstreams,
            Health = flags.TryGetValue("--health", out var h) ? ParseEndPoint("--health", h, defaultPort: null) : null,
            Metrics = flags.TryGetValue("--metrics", out var m) ? ParseEndPoint("--metrics", m, defaultPort: null) : null,
        };
    }

    private static IPEndPoint ParseEndPoint(string flag, string text, int? defaultPort)
    {
        if (IPEndPoint.TryParse(text, out var ep) && (ep.Port != 0 || text.EndsWith(":0", StringComparison.Ordinal)))
        {
            return ep;
        }
        if (defaultPort is int p && IPAddress.TryParse(text, out var ip))
        {
            return new IPEndPoint(ip, p);
        }
        throw new ArgumentException($"{flag}: '{text}' is not ADDR:PORT (an IP address and a port; IPv6 as [::1]:53)");
    }
}
