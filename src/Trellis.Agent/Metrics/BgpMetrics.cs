using System.Globalization;
using System.Text;
using Trellis.Bgp;
using Trellis.Bgp.Fsm;

namespace Trellis.Agent.Metrics;

/// <summary>
/// The bgp backend's gauges as Prometheus text: what trellisd serves on <c>--metrics</c> and what it writes to
/// <c>bgp.prom</c> beside the status file (one renderer, so the two never disagree). Pure: the caller passes the
/// speaker's peer statuses and the clock, which makes the text testable byte for byte.
/// </summary>
public static class BgpMetrics
{
    public static void Write(StringBuilder text, string node, IReadOnlyList<BgpPeerStatus> statuses, int routesInstalled, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(statuses);
        string n = Escape(node);
        text.Append("# HELP trellis_bgp_sessions BGP sessions of this node by FSM state.\n");
        text.Append("# TYPE trellis_bgp_sessions gauge\n");
        // Every state is listed, zeros included: a dashboard alerting on Established < N must see the 0.
        foreach (var state in Enum.GetValues<BgpState>())
        {
            int count = statuses.Count(p => p.State == state);
            text.Append(CultureInfo.InvariantCulture, $"trellis_bgp_sessions{{node=\"{n}\",state=\"{state}\"}} {count}\n");
        }
        text.Append("# HELP trellis_bgp_session_established 1 if the session with the peer is Established, else 0.\n");
        text.Append("# TYPE trellis_bgp_session_established gauge\n");
        foreach (var p in statuses)
        {
            text.Append(CultureInfo.InvariantCulture, $"trellis_bgp_session_established{{node=\"{n}\",peer=\"{p.Address}\",state=\"{p.State}\"}} {(p.State == BgpState.Established ? 1 : 0)}\n");
        }
        text.Append("# HELP trellis_bgp_session_uptime_seconds Seconds since the session reached Established (0 when it is not).\n");
        text.Append("# TYPE trellis_bgp_session_uptime_seconds gauge\n");
        foreach (var p in statuses)
        {
            long up = p.State == BgpState.Established && p.EstablishedAt is { } since ? Math.Max(0, (long)(now - since).TotalSeconds) : 0;
            text.Append(CultureInfo.InvariantCulture, $"trellis_bgp_session_uptime_seconds{{node=\"{n}\",peer=\"{p.Address}\"}} {up}\n");
        }
        text.Append("# HELP trellis_bgp_prefixes_received Prefixes in the Adj-RIB-In of the peer (stale ones included).\n");
        text.Append("# TYPE trellis_bgp_prefixes_received gauge\n");
        foreach (var p in statuses)
        {
            text.Append(CultureInfo.InvariantCulture, $"trellis_bgp_prefixes_received{{node=\"{n}\",peer=\"{p.Address}\"}} {p.PrefixesReceived}\n");
        }
        text.Append("# HELP trellis_bgp_prefixes_advertised Prefixes advertised to the peer.\n");
        text.Append("# TYPE trellis_bgp_prefixes_advertised gauge\n");
        foreach (var p in statuses)
        {
            text.Append(CultureInfo.InvariantCulture, $"trellis_bgp_prefixes_advertised{{node=\"{n}\",peer=\"{p.Address}\"}} {p.PrefixesAdvertised}\n");
        }
        text.Append("# HELP trellis_bgp_prefixes_stale Prefixes of the peer kept stale by graceful restart.\n");
        text.Append("# TYPE trellis_bgp_prefixes_stale gauge\n");
        foreach (var p in statuses)
        {
            text.Append(CultureInfo.InvariantCulture, $"trellis_bgp_prefixes_stale{{node=\"{n}\",peer=\"{p.Address}\"}} {p.StalePrefixes}\n");
        }
        text.Append("# HELP trellis_bgp_routes_installed Learned routes installed in the kernel (protocol 203).\n");
        text.Append("# TYPE trellis_bgp_routes_installed gauge\n");
        text.Append(CultureInfo.InvariantCulture, $"trellis_bgp_routes_installed{{node=\"{n}\"}} {routesInstalled}\n");
    }

    public static string Render(string node, IReadOnlyList<BgpPeerStatus> statuses, int routesInstalled, DateTimeOffset now)
    {
        var text = new StringBuilder();
        Write(text, node, statuses, routesInstalled, now);
        return text.ToString();
    }

    /// <summary>Label values per the exposition format: backslash, quote and newline escaped.</summary>
    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
