using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Trellis.Bgp;
using Trellis.Core.Routing;

namespace Trellis.Agent.Bgp;

/// <summary>
/// The status file <c>trellis bgp status</c> reads (<c>/run/trellis/&lt;lab&gt;/nodes/&lt;node&gt;/bgp.json</c>):
/// <c>{"node","asNumber","routerId","routeReflectorClusterId","listen","updated","peers":[{"address","port",
/// "asNumber","type","state","since","uptimeSeconds","prefixesReceived","prefixesAdvertised","stalePrefixes",
/// "endOfRib","routeReflectorClient","lastError"}],"routes":{"installed","errors":[]},"errors":[]}</c>,
/// and beside it <c>bgp.prom</c>: the same gauges trellisd serves on <c>--metrics</c>.
/// </summary>
internal static class BgpStatusJson
{
    public static string Write(string node, BgpSpeakerOptions options, IPAddress self, BgpTopology topology, IReadOnlyList<BgpPeerStatus> statuses,
        IReadOnlyDictionary<IPAddress, BgpPeerSpec> specs, BgpRouteCompilation compilation, BgpRouteSyncResult result, DateTimeOffset now)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("node", node);
            w.WriteNumber("asNumber", options.Asn);
            w.WriteString("routerId", options.RouterId.ToString());
            if (topology.ClusterId is { } cid)
            {
                w.WriteString("routeReflectorClusterId", cid.ToString());
            }
            else
            {
                w.WriteNull("routeReflectorClusterId");
            }
            w.WriteString("listen", $"{self}:{topology.ListenPort}");
            w.WriteString("updated", now.ToString("O", CultureInfo.InvariantCulture));
            w.WriteStartArray("peers");
            foreach (var p in statuses)
            {
                specs.TryGetValue(p.Address, out var spec);
                w.WriteStartObject();
                w.WriteString("address", p.Address.ToString());
                w.WriteNumber("port", spec?.Port ?? 179);
                w.WriteNumber("asNumber", p.Asn);
                w.WriteString("type", spec?.Source ?? "unknown");
                w.WriteString("state", p.State.ToString());
                if (p.EstablishedAt is { } since && p.State == Trellis.Bgp.Fsm.BgpState.Established)
                {
                    w.WriteString("since", since.ToString("O", CultureInfo.InvariantCulture));
                    w.WriteNumber("uptimeSeconds", Math.Max(0, (long)(now - since).TotalSeconds));
                }
                w.WriteNumber("prefixesReceived", p.PrefixesReceived);
                w.WriteNumber("prefixesAdvertised", p.PrefixesAdvertised);
                w.WriteNumber("stalePrefixes", p.StalePrefixes);
                w.WriteBoolean("endOfRib", p.EndOfRibReceived);
                w.WriteBoolean("routeReflectorClient", p.RouteReflectorClient);
                if (p.LastError is { } err)
                {
                    w.WriteString("lastError", err);
                }
                else
                {
                    w.WriteNull("lastError");
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("routes");
            w.WriteNumber("installed", result.Installed);
            w.WriteStartArray("errors");
            foreach (var e in compilation.Errors.Concat(result.Errors))
            {
                w.WriteStringValue(e);
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartArray("errors");
            foreach (var e in topology.Errors)
            {
                w.WriteStringValue(e);
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>The document without what changes every second, to tell a real change from the clock.</summary>
    public static string StripVolatile(string json) =>
        string.Join('\n', json.Split('\n').Where(l => !l.Contains("\"updated\"", StringComparison.Ordinal) && !l.Contains("\"uptimeSeconds\"", StringComparison.Ordinal)));

    /// <summary>bgp.prom: the same text trellisd serves on <c>--metrics</c> (see <see cref="Metrics.BgpMetrics"/>).</summary>
    public static string Metrics(string node, IReadOnlyList<BgpPeerStatus> statuses, BgpRouteSyncResult result, DateTimeOffset now) =>
        Trellis.Agent.Metrics.BgpMetrics.Render(node, statuses, result.Installed, now);
}
