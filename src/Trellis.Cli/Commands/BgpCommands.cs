using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Trellis.Cli.Cluster;
using Trellis.Cli.Lab;
using Trellis.Cli.Workload;

namespace Trellis.Cli.Commands;

/// <summary>
/// <c>trellis bgp status [--node N] [-o json]</c>: each node's BGP sessions as its trellisd last wrote them
/// (<c>/run/trellis/&lt;lab&gt;/nodes/&lt;node&gt;/bgp.json</c>, replaced atomically every few seconds and on change),
/// like <c>calicoctl node status</c>. A status older than 15 s is flagged: its trellisd is not writing.
/// </summary>
public static class BgpCommands
{
    private static readonly TimeSpan s_staleAfter = TimeSpan.FromSeconds(15);
    private static readonly string[] s_header = ["PEER", "TYPE", "STATE", "UPTIME", "RECEIVED", "ADVERTISED", "LAST ERROR"];

    public static Command Create()
    {
        var cmd = new Command("bgp", "the bgp backend: sessions and routes");
        var node = new Option<string?>("--node") { Description = "only this node" };
        var output = new Option<string?>("--output", "-o") { Description = "json" };
        var status = new Command("status", "each node's BGP peers: state, uptime, prefixes received/advertised, last error") { node, output };
        status.SetAction(pr =>
        {
            var lab = StoreLocator.ResolveLab(pr.GetValue(ObjectCommands.LabOption));
            string? o = pr.GetValue(output);
            if (o is not null && o != "json")
            {
                throw new UsageException($"-o: '{o}' is not supported here (json)");
            }
            if (lab.Backend != "bgp")
            {
                Console.Error.WriteLine($"bgp status: lab '{lab.Name}' runs the {lab.Backend} backend; BGP runs with `lab up --backend bgp`");
                return 1;
            }
            string? only = pr.GetValue(node);
            var nodes = lab.Nodes.Where(n => only is null || n.Name == only).ToList();
            if (nodes.Count == 0)
            {
                throw new UsageException($"--node: lab '{lab.Name}' has no node '{only}' ({string.Join(", ", lab.Nodes.Select(n => n.Name))})");
            }
            var now = DateTimeOffset.UtcNow;
            var docs = nodes.Select(n => Read(lab.Name, n.Name, now)).ToList();
            if (o == "json")
            {
                var items = new JsonArray();
                foreach (var d in docs)
                {
                    items.Add((JsonNode)d);
                }
                Console.WriteLine(new JsonObject { ["lab"] = lab.Name, ["nodes"] = items }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                Console.Write(Table(docs, now));
            }
            return 0;
        });
        cmd.Subcommands.Add(status);
        return cmd;
    }

    /// <summary>A node's status document, with <c>stale</c> added; a node without one gets <c>error</c>.</summary>
    internal static JsonObject Read(string lab, string node, DateTimeOffset now)
    {
        string file = Path.Combine(LabLifecycle.NodeDir(lab, node), "bgp.json");
        try
        {
            var doc = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new FormatException("not a JSON object");
            bool stale = !DateTimeOffset.TryParse(doc["updated"]?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.None, out var updated) || now - updated > s_staleAfter;
            doc["stale"] = stale;
            return doc;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or System.Text.Json.JsonException or InvalidOperationException)
        {
            return new JsonObject { ["node"] = node, ["error"] = $"{file}: {e.Message} (is trellisd running on {node}?)", ["peers"] = new JsonArray() };
        }
    }

    internal static string Table(IReadOnlyList<JsonObject> docs, DateTimeOffset now)
    {
        var text = new StringBuilder();
        foreach (var d in docs)
        {
            string name = d["node"]?.ToString() ?? "?";
            if (d["error"] is { } error)
            {
                text.Append(CultureInfo.InvariantCulture, $"{name}: {error}\n\n");
                continue;
            }
            string rr = d["routeReflectorClusterId"] is JsonValue v ? $", route reflector {v}" : "";
            string stale = d["stale"]?.GetValue<bool>() == true ? "   STALE: trellisd has not written its status for a while" : "";
            text.Append(CultureInfo.InvariantCulture, $"{name}: AS {d["asNumber"]}, router id {d["routerId"]}{rr}, {d["routes"]?["installed"]} routes installed{stale}\n");
            var rows = new List<string[]> { s_header };
            foreach (var p in (d["peers"] as JsonArray ?? []).OfType<JsonObject>())
            {
                string uptime = p["uptimeSeconds"] is { } up ? Trellis.Core.Objects.HumanDuration.Format(TimeSpan.FromSeconds(up.GetValue<long>())) : "-";
                string addr = p["address"]!.ToString() + (p["port"]?.GetValue<int>() is int port && port != 179 ? ":" + port.ToString(CultureInfo.InvariantCulture) : "");
                string type = (p["type"]?.ToString() ?? "") + (p["routeReflectorClient"]?.GetValue<bool>() == true ? " (rr-client)" : "");
                rows.Add([addr, type, p["state"]?.ToString() ?? "", uptime, p["prefixesReceived"]?.ToString() ?? "0", p["prefixesAdvertised"]?.ToString() ?? "0", p["lastError"]?.ToString() ?? ""]);
            }
            int[] widths = [.. Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length))];
            foreach (var r in rows)
            {
                text.Append(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd()).Append('\n');
            }
            foreach (var e in (d["routes"]?["errors"] as JsonArray ?? []).Concat(d["errors"] as JsonArray ?? []))
            {
                text.Append("  ! ").Append(e).Append('\n');
            }
            text.Append('\n');
        }
        return text.ToString();
    }
}
