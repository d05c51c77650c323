using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

// Cross-node networking in the lab, same run, same machine:
//  1. iperf3 pod→pod across two nodes over host-gw and over vxlan, against iperf3 node→node on the underlay
//     (the peer), single stream and 4 streams;
//  2. `lab up` for 20 nodes × 10 pods (to all pods Ready), and route convergence when a 21st node joins:
//     per node, the time from the join until its trellisd installed the route to the new node.
// Usage (root, after ./scripts/build.sh):
//   dotnet run -c Release --project bench/Trellis.Bench.Net -- [--seconds 3] [--nodes 20] [--trellis artifacts/bin/trellis]
int seconds = Opt("--seconds", 3);
int bigNodes = Opt("--nodes", 20);
string trellis = OptS("--trellis", Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../artifacts/bin/trellis")));
var sb = new StringBuilder();
sb.AppendLine(CultureInfo.InvariantCulture, $"Cross-node, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z, iperf3 {seconds} s per run");
sb.AppendLine();
sb.AppendLine("| path | 1 stream | 4 streams | 1 stream / underlay | 4 streams / underlay |");
sb.AppendLine("|---|---|---|---|---|");
foreach (var backend in new[] { "host-gw", "vxlan" })
{
    string lab = "bn" + Guid.NewGuid().ToString("N")[..6];
    try
    {
        Run(trellis, "lab", "up", "--name", lab, "--nodes", "2", "--backend", backend);
        Apply(lab, """
            apiVersion: v1
            kind: Namespace
            metadata: {name: perf}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: server, namespace: perf}
            spec: {nodeName: node-2, containers: [{name: s, image: iperf3, command: [iperf3, -s]}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: client, namespace: perf}
            spec: {nodeName: node-1, containers: [{name: c, image: x, command: [sleep, infinity]}]}
            """);
        string serverIp = WaitIp(lab, "server");
        WaitIp(lab, "client");
        Thread.Sleep(1500); // routes converge and iperf3 binds
        // The peer: the same two nodes over their underlay link, no pods, no tunnel.
        using var underlayServer = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", $"trl-{lab}-node-2", "iperf3", "-s"]) { RedirectStandardOutput = true })!;
        Thread.Sleep(300);
        double u1 = Iperf(["ip", "netns", "exec", $"trl-{lab}-node-1", "iperf3", "-c", "172.30.0.12"], 1);
        double u4 = Iperf(["ip", "netns", "exec", $"trl-{lab}-node-1", "iperf3", "-c", "172.30.0.12"], 4);
        double p1 = Iperf([trellis, "exec", "--lab", lab, "perf/client", "--", "iperf3", "-c", serverIp], 1);
        double p4 = Iperf([trellis, "exec", "--lab", lab, "perf/client", "--", "iperf3", "-c", serverIp], 4);
        underlayServer.Kill();
        sb.AppendLine(CultureInfo.InvariantCulture, $"| underlay node→node (peer, {backend} lab) | {u1:0.0} Gbit/s | {u4:0.0} Gbit/s | 1.00 | 1.00 |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| pod→pod over {backend} | {p1:0.0} Gbit/s | {p4:0.0} Gbit/s | {p1 / u1:0.00} | {p4 / u4:0.00} |");
    }
    finally
    {
        Run(trellis, "lab", "down", "--name", lab);
    }
}

// 2. A big lab, then a node joining it.
{
    string lab = "bb" + Guid.NewGuid().ToString("N")[..6];
    try
    {
        var sw = Stopwatch.StartNew();
        Run(trellis, "lab", "up", "--name", lab, "--nodes", bigNodes.ToString(CultureInfo.InvariantCulture));
        double up = sw.Elapsed.TotalSeconds;
        var pods = new StringBuilder("apiVersion: v1\nkind: Namespace\nmetadata: {name: big}\n");
        for (int i = 0; i < bigNodes * 10; i++)
        {
            pods.Append(CultureInfo.InvariantCulture, $"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: big}}\nspec: {{containers: [{{name: c, image: agnhost, ports: [{{containerPort: 80}}]}}]}}\n");
        }
        Apply(lab, pods.ToString());
        WaitReady(lab, "big", bigNodes * 10);
        double all = sw.Elapsed.TotalSeconds;

        // Join: node N+1. Convergence per node = first "ip route replace <new subnet>" in its trellisd log after the join began.
        var joinStart = DateTime.UtcNow;
        Run(trellis, "lab", "up", "--name", lab, "--nodes", (bigNodes + 1).ToString(CultureInfo.InvariantCulture));
        string newNode = $"node-{bigNodes + 1}";
        string? subnet = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (subnet is null && DateTime.UtcNow < deadline)
        {
            subnet = JsonNode.Parse(Out(trellis, "get", "no", newNode, "--lab", lab, "-o", "json"))?["spec"]?["podCIDR"]?.GetValue<string>();
            Thread.Sleep(50);
        }
        var delays = new List<double>();
        deadline = DateTime.UtcNow.AddSeconds(30);
        while (delays.Count < bigNodes && DateTime.UtcNow < deadline)
        {
            delays.Clear();
            for (int i = 1; i <= bigNodes; i++)
            {
                string log = File.ReadAllText($"/var/log/trellis/{lab}/trellisd-node-{i}.log");
                foreach (Match m in Regex.Matches(log, @"^(\d\d:\d\d:\d\d\.\d\d\d) trellisd [^\n]*\n(?:(?!\d\d:\d\d:\d\d\.\d\d\d )[^\n]*\n)*?ip route replace " + Regex.Escape(subnet ?? "none"), RegexOptions.Multiline))
                {
                    var t = DateTime.ParseExact(m.Groups[1].Value, "HH:mm:ss.fff", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
                    t = joinStart.Date + t.TimeOfDay;
                    if (t >= joinStart.AddSeconds(-1))
                    {
                        delays.Add((t - joinStart).TotalSeconds);
                        break;
                    }
                }
            }
            Thread.Sleep(200);
        }
        delays.Sort();
        // The same, counted from the moment the new node's agent held its lease (its log says so):
        // what the cluster's agents take to react, without the lab starting the node's processes.
        var leased = Regex.Match(File.ReadAllText($"/var/log/trellis/{lab}/trellisd-{newNode}.log"), @"^(\d\d:\d\d:\d\d\.\d\d\d) trellisd [^\n]*lease: " + Regex.Escape(subnet ?? "none"), RegexOptions.Multiline);
        double leaseOffset = leased.Success
            ? ((joinStart.Date + DateTime.ParseExact(leased.Groups[1].Value, "HH:mm:ss.fff", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal).TimeOfDay) - joinStart).TotalSeconds
            : double.NaN;
        double P(double q) => delays.Count == 0 ? double.NaN : delays[Math.Clamp((int)Math.Ceiling(q * delays.Count) - 1, 0, delays.Count - 1)];
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"| lab of {bigNodes} nodes | measure |");
        sb.AppendLine("|---|---|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| `lab up` ({bigNodes} nodes Ready) | {up:0.0} s |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| `lab up` + {bigNodes * 10} pods Ready | {all:0.0} s |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| node {bigNodes + 1} joins: nodes with its route | {delays.Count}/{bigNodes} |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| route convergence after the join, p50 | {P(0.5):0.00} s |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| route convergence after the join, p99 | {P(0.99):0.00} s |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| of which: the lab starting node {bigNodes + 1} until its lease | {leaseOffset:0.00} s |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| route convergence after the new node's lease, p50 | {P(0.5) - leaseOffset:0.00} s |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| route convergence after the new node's lease, p99 | {P(0.99) - leaseOffset:0.00} s |");
    }
    finally
    {
        Run(trellis, "lab", "down", "--name", lab);
    }
}
Console.Write(sb.ToString());
return 0;

double Iperf(string[] argv, int streams)
{
    var args = argv.Skip(1).Concat(["-t", seconds.ToString(CultureInfo.InvariantCulture), "-P", streams.ToString(CultureInfo.InvariantCulture), "-J"]).ToArray();
    string json = Out(argv[0], args);
    var end = JsonNode.Parse(json)!["end"]!;
    return end["sum_received"]!["bits_per_second"]!.GetValue<double>() / 1e9;
}

string WaitIp(string lab, string pod)
{
    var deadline = DateTime.UtcNow.AddSeconds(60);
    while (DateTime.UtcNow < deadline)
    {
        var p = JsonNode.Parse(Out(trellis, "get", "po", pod, "-n", "perf", "--lab", lab, "-o", "json"));
        if (p?["status"]?["conditions"] is JsonArray c && c.Any(x => x!["type"]!.GetValue<string>() == "Ready" && x["status"]!.GetValue<string>() == "True"))
        {
            return p["status"]!["podIP"]!.GetValue<string>();
        }
        Thread.Sleep(100);
    }
    throw new TimeoutException(pod);
}

void WaitReady(string lab, string ns, int count)
{
    var deadline = DateTime.UtcNow.AddMinutes(5);
    while (DateTime.UtcNow < deadline)
    {
        var items = JsonNode.Parse(Out(trellis, "get", "po", "-n", ns, "--lab", lab, "-o", "json"))!["items"]!.AsArray();
        if (items.Count(p => p!["status"]?["conditions"] is JsonArray c && c.Any(x => x!["type"]!.GetValue<string>() == "Ready" && x["status"]!.GetValue<string>() == "True")) >= count)
        {
            return;
        }
        Thread.Sleep(200);
    }
    throw new TimeoutException($"{count} pods in {ns}");
}

void Apply(string lab, string yaml)
{
    var psi = new ProcessStartInfo(trellis, ["apply", "-f", "-", "--lab", lab]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
    using var p = Process.Start(psi)!;
    p.StandardInput.Write(yaml);
    p.StandardInput.Close();
    string err = p.StandardError.ReadToEnd();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0)
    {
        throw new InvalidOperationException("apply: " + err);
    }
}

static string Out(string file, params string[] args)
{
    using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
    var o = p.StandardOutput.ReadToEndAsync();
    string e = p.StandardError.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0)
    {
        throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {e}");
    }
    return o.Result;
}

static void Run(string file, params string[] args) => Out(file, args);

int Opt(string name, int def) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : def;
string OptS(string name, string def) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : def;
