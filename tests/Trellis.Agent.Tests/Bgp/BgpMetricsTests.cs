using System.Net;
using Trellis.Agent.Metrics;
using Trellis.Bgp;
using Trellis.Bgp.Fsm;

namespace Trellis.Agent.Tests.Bgp;

public class BgpMetricsTests
{
    private static readonly DateTimeOffset Now = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    [Fact]
    public void Text_has_sessions_by_state_per_peer_counts_and_uptime()
    {
        var statuses = new[]
        {
            new BgpPeerStatus(IPAddress.Parse("10.0.0.2"), 64512, BgpState.Established, Now.AddSeconds(-90.7), 3, 1, 0, null),
            new BgpPeerStatus(IPAddress.Parse("10.0.0.3"), 64512, BgpState.Active, Now.AddSeconds(-500), 0, 0, 2, "hold timer expired"),
            new BgpPeerStatus(IPAddress.Parse("10.0.0.4"), 65000, BgpState.Established, Now.AddSeconds(5), 7, 1, 0, null),
        };
        string text = BgpMetrics.Render("node-1", statuses, 10, Now);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Contains("trellis_bgp_sessions{node=\"node-1\",state=\"Established\"} 2", lines);
        Assert.Contains("trellis_bgp_sessions{node=\"node-1\",state=\"Active\"} 1", lines);
        // every state is present, zeros too
        Assert.Contains("trellis_bgp_sessions{node=\"node-1\",state=\"Idle\"} 0", lines);
        Assert.Equal(Enum.GetValues<BgpState>().Length, lines.Count(l => l.StartsWith("trellis_bgp_sessions{", StringComparison.Ordinal)));
        Assert.Contains("trellis_bgp_session_established{node=\"node-1\",peer=\"10.0.0.2\",state=\"Established\"} 1", lines);
        Assert.Contains("trellis_bgp_session_established{node=\"node-1\",peer=\"10.0.0.3\",state=\"Active\"} 0", lines);
        Assert.Contains("trellis_bgp_session_uptime_seconds{node=\"node-1\",peer=\"10.0.0.2\"} 90", lines);
        // not Established: no uptime, whatever EstablishedAt says; a clock skew never goes negative
        Assert.Contains("trellis_bgp_session_uptime_seconds{node=\"node-1\",peer=\"10.0.0.3\"} 0", lines);
        Assert.Contains("trellis_bgp_session_uptime_seconds{node=\"node-1\",peer=\"10.0.0.4\"} 0", lines);
        Assert.Contains("trellis_bgp_prefixes_received{node=\"node-1\",peer=\"10.0.0.4\"} 7", lines);
        Assert.Contains("trellis_bgp_prefixes_advertised{node=\"node-1\",peer=\"10.0.0.2\"} 1", lines);
        Assert.Contains("trellis_bgp_prefixes_stale{node=\"node-1\",peer=\"10.0.0.3\"} 2", lines);
        Assert.Contains("trellis_bgp_routes_installed{node=\"node-1\"} 10", lines);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_sample_has_a_type_line_and_well_formed_labels()
    {
        var statuses = new[] { new BgpPeerStatus(IPAddress.Parse("fd00::2"), 64512, BgpState.OpenSent, null, 0, 0, 0, null) };
        string text = BgpMetrics.Render("we\"ird\\node", statuses, 0, Now);
        var typed = new HashSet<string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.Equal("gauge", parts[3]);
                Assert.True(typed.Add(parts[2]), $"duplicate TYPE {parts[2]}");
                continue;
            }
            if (line.StartsWith('#'))
            {
                continue;
            }
            string name = line[..line.IndexOf('{', StringComparison.Ordinal)];
            Assert.Contains(name, typed);
            Assert.Matches("^[a-z_]+\\{(node=\"(\\\\.|[^\"\\\\])*\")(,[a-z]+=\"[^\"]*\")*\\} -?[0-9]+$", line);
        }
        Assert.Contains("node=\"we\\\"ird\\\\node\"", text, StringComparison.Ordinal);
        Assert.Contains("trellis_bgp_session_uptime_seconds{node=\"we\\\"ird\\\\node\",peer=\"fd00::2\"} 0", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_server_serves_the_bgp_gauges()
    {
        var statuses = new[] { new BgpPeerStatus(IPAddress.Parse("10.0.0.2"), 64512, BgpState.Established, Now.AddSeconds(-1), 1, 1, 0, null) };
        await using var server = new MetricsServer(new IPEndPoint(IPAddress.Loopback, 0),
            [t => BgpMetrics.Write(t, "n1", statuses, 1, Now)], TextWriter.Null);
        using var http = new HttpClient();
        string body = await http.GetStringAsync(new Uri($"http://{server.Endpoint}/metrics"));
        Assert.Contains("trellis_bgp_sessions{node=\"n1\",state=\"Established\"} 1\n", body, StringComparison.Ordinal);
        Assert.Contains("trellis_bgp_session_uptime_seconds{node=\"n1\",peer=\"10.0.0.2\"} 1\n", body, StringComparison.Ordinal);
    }
}
