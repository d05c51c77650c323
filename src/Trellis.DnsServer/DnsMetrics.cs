using System.Diagnostics;
using System.Globalization;
using System.Text;
using Trellis.Core.Dns;

namespace Trellis.DnsServer;

/// <summary>Counters and histograms, updated with Interlocked on the query path, rendered as Prometheus text.</summary>
public sealed class DnsMetrics
{
    private static readonly double[] s_latencyBounds = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
    private static readonly double[] s_delayBounds = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly long[] _queriesByType = new long[256]; // index 0 collects types above 255
    private readonly long[] _responsesByRcode = new long[24];
    private readonly Histogram _latency = new(s_latencyBounds);
    private readonly Histogram _programmingDelay = new(s_delayBounds);
    private long _dropped;
    private long _truncated;
    private long _forwarded;
    private long _forwardErrors;
    private long _cacheHits;
    private long _cacheMisses;
    private long _snapshots;
    private volatile DnsZone? _zone;

    public bool Ready { get; set; }

    public long Dropped => Interlocked.Read(ref _dropped);

    public long Forwarded => Interlocked.Read(ref _forwarded);

    public long CacheHits => Interlocked.Read(ref _cacheHits);

    public double LastProgrammingDelaySeconds { get; private set; }

    public long QueriesOfType(ushort type) => Interlocked.Read(ref _queriesByType[type < 256 ? type : 0]);

    public long ResponsesWith(int rcode) => Interlocked.Read(ref _responsesByRcode[Math.Clamp(rcode, 0, 23)]);

    public void Query(ushort type) => Interlocked.Increment(ref _queriesByType[type < 256 ? type : 0]);

    public void Response(int rcode, long startTimestamp)
    {
        Interlocked.Increment(ref _responsesByRcode[Math.Clamp(rcode, 0, 23)]);
        _latency.Observe(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
    }

    public void Drop() => Interlocked.Increment(ref _dropped);

    public void Truncated() => Interlocked.Increment(ref _truncated);

    public void Forward() => Interlocked.Increment(ref _forwarded);

    public void ForwardError() => Interlocked.Increment(ref _forwardErrors);

    public void CacheHit() => Interlocked.Increment(ref _cacheHits);

    public void CacheMiss() => Interlocked.Increment(ref _cacheMisses);

    public void Snapshot(DnsZone zone, TimeSpan programmingDelay)
    {
        _zone = zone;
        Interlocked.Increment(ref _snapshots);
        LastProgrammingDelaySeconds = programmingDelay.TotalSeconds;
        _programmingDelay.Observe(programmingDelay.TotalSeconds);
    }

    public string Render()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append("# HELP trellis_dns_queries_total DNS queries received, by question type.\n# TYPE trellis_dns_queries_total counter\n");
        for (int t = 0; t < 256; t++)
        {
            long n = Interlocked.Read(ref _queriesByType[t]);
            if (n > 0)
            {
                string name = t == 0 ? "other" : ZoneRecord.TypeName((ushort)t);
                sb.Append(inv, $"trellis_dns_queries_total{{type=\"{name}\"}} {n}\n");
            }
        }
        sb.Append("# HELP trellis_dns_responses_total DNS responses sent, by rcode.\n# TYPE trellis_dns_responses_total counter\n");
        for (int r = 0; r < _responsesByRcode.Length; r++)
        {
            long n = Interlocked.Read(ref _responsesByRcode[r]);
            if (n > 0)
            {
                sb.Append(inv, $"trellis_dns_responses_total{{rcode=\"{RcodeName(r)}\"}} {n}\n");
            }
        }
        _latency.Render(sb, "trellis_dns_request_duration_seconds", "Time from receiving a query to having its response ready.");
        _programmingDelay.Render(sb, "trellis_dns_programming_delay_seconds", "Time from a store change reaching the server (watch event) to the new snapshot serving queries.");
        Counter(sb, "trellis_dns_dropped_total", "Packets dropped (not a query, or too short for a header).", Interlocked.Read(ref _dropped));
        Counter(sb, "trellis_dns_truncated_total", "UDP responses sent with TC because the answer did not fit.", Interlocked.Read(ref _truncated));
        Counter(sb, "trellis_dns_forward_requests_total", "Queries sent upstream.", Interlocked.Read(ref _forwarded));
        Counter(sb, "trellis_dns_forward_errors_total", "Upstream exchanges that failed (timeout, refused, malformed).", Interlocked.Read(ref _forwardErrors));
        Counter(sb, "trellis_dns_cache_hits_total", "Forwarded questions answered from the cache.", Interlocked.Read(ref _cacheHits));
        Counter(sb, "trellis_dns_cache_misses_total", "Forwarded questions not in the cache.", Interlocked.Read(ref _cacheMisses));
        Counter(sb, "trellis_dns_snapshots_total", "Zone snapshots swapped in.", Interlocked.Read(ref _snapshots));
        var zone = _zone;
        Gauge(sb, "trellis_dns_ready", "1 once the first full snapshot is loaded.", Ready ? 1 : 0);
        Gauge(sb, "trellis_dns_zone_revision", "Store revision of the serving snapshot.", zone?.Revision ?? 0);
        Gauge(sb, "trellis_dns_zone_services", "Services in the serving snapshot.", zone?.ServiceCount ?? 0);
        Gauge(sb, "trellis_dns_zone_records", "Records in the serving snapshot.", zone?.RecordCount ?? 0);
        return sb.ToString();
    }

    private static void Counter(StringBuilder sb, string name, string help, long value) =>
        sb.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");

    private static void Gauge(StringBuilder sb, string name, string help, long value) =>
        sb.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");

    public static string RcodeName(int rcode) => rcode switch
    {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        16 => "BADVERS",
        _ => rcode.ToString(CultureInfo.InvariantCulture),
    };

    private sealed class Histogram(double[] bounds)
    {
        private readonly long[] _buckets = new long[bounds.Length + 1];
        private long _count;
        private long _sumMicros;

        public void Observe(double seconds)
        {
            int i = 0;
            while (i < bounds.Length && seconds > bounds[i])
            {
                i++;
            }
            Interlocked.Increment(ref _buckets[i]);
            Interlocked.Increment(ref _count);
            Interlocked.Add(ref _sumMicros, (long)(seconds * 1e6));
        }

        public void Render(StringBuilder sb, string name, string help)
        {
            var inv = CultureInfo.InvariantCulture;
            sb.Append(inv, $"# HELP {name} {help}\n# TYPE {name} histogram\n");
            long cumulative = 0;
            for (int i = 0; i < bounds.Length; i++)
            {
                cumulative += Interlocked.Read(ref _buckets[i]);
                sb.Append(inv, $"{name}_bucket{{le=\"{bounds[i].ToString("R", inv)}\"}} {cumulative}\n");
            }
            cumulative += Interlocked.Read(ref _buckets[^1]);
            sb.Append(inv, $"{name}_bucket{{le=\"+Inf\"}} {cumulative}\n");
            sb.Append(inv, $"{name}_sum {(Interlocked.Read(ref _sumMicros) / 1e6).ToString("R", inv)}\n");
            sb.Append(inv, $"{name}_count {Interlocked.Read(ref _count)}\n");
        }
    }
}
