using System.Diagnostics;
using System.Globalization;
using System.Text;
using Trellis.Netlink;

// CNI ADD/DEL latency and peak RSS: trellis-cni against the reference bridge + host-local,
// same node netns, same run, each plugin exec'd directly from a thread inside the node's netns
// (as a runtime does: no `ip netns exec` wrapper). Usage (root):
//   dotnet run -c Release --project bench/Trellis.Bench.Cni -- [--pods 200] [--rounds 2] [--trellis PATH] [--reference-dir /usr/lib/cni]

int pods = Opt("--pods", 200);
int rounds = Opt("--rounds", 2);
string trellis = OptS("--trellis", Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../artifacts/bin/trellis-cni")));
string refDir = OptS("--reference-dir", "/usr/lib/cni");
if (!File.Exists(trellis))
{
    Console.Error.WriteLine($"trellis-cni not found at {trellis}; run ./scripts/build.sh or pass --trellis");
    return 2;
}

string tag = Guid.NewGuid().ToString("N")[..6];
string nodeName = $"trl-bench-{tag}";
string dataDir = Directory.CreateTempSubdirectory("trl-bench-").FullName;
var podNames = Enumerable.Range(0, pods).Select(i => $"trl-bp{tag}-{i}").ToArray();
Sh("ip", "netns", "add", nodeName);
try
{
    foreach (var p in podNames)
    {
        Sh("ip", "netns", "add", p);
    }
    using var nodeNs = NetNs.Open("/var/run/netns/" + nodeName);
    var plugins = new[]
    {
        new Plugin("reference bridge+host-local", Path.Combine(refDir, "bridge"), refDir,
            Conf("refnet", "bridge", "refbr0", "10.90.0.0/23", dataDir, ipamType: "host-local")),
        new Plugin("trellis-cni", trellis, Path.GetDirectoryName(trellis)!,
            Conf("trlnet", "trellis-cni", "trlbr0", "10.91.0.0/23", dataDir, ipamType: null)),
    };
    var results = plugins.ToDictionary(p => p.Name, _ => new Samples());
    for (int r = 0; r < rounds; r++)
    {
        foreach (var plugin in plugins)
        {
            var s = results[plugin.Name];
            RunPhase(nodeNs, plugin, podNames, 1, s.AddSeq, "ADD");
            RunPhase(nodeNs, plugin, podNames, 1, s.DelSeq, "DEL");
            RunPhase(nodeNs, plugin, podNames, 16, s.AddPar, "ADD");
            RunPhase(nodeNs, plugin, podNames, 16, s.DelPar, "DEL");
        }
    }
    foreach (var plugin in plugins)
    {
        results[plugin.Name].PeakRssKb = Rss.Measure(nodeNs, plugin, podNames[0], dataDir);
    }
    Report(plugins, results, pods, rounds);
    return 0;
}
finally
{
    foreach (var p in podNames)
    {
        Run("ip", "netns", "del", p);
    }
    Run("ip", "netns", "del", nodeName);
    Directory.Delete(dataDir, true);
}

static void RunPhase(NetNs nodeNs, Plugin plugin, string[] pods, int parallel, List<double> samples, string command)
{
    int next = -1;
    var threads = new List<Task>();
    var lockObj = new object();
    for (int w = 0; w < parallel; w++)
    {
        threads.Add(Task.Run(() => nodeNs.Run(() =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < pods.Length)
            {
                var (ms, exit, output) = Exec(plugin, command, $"bench{i:D4}", "/var/run/netns/" + pods[i]);
                if (exit != 0)
                {
                    throw new InvalidOperationException($"{plugin.Name} {command} {i} failed: {output}");
                }
                lock (lockObj)
                {
                    samples.Add(ms);
                }
            }
        })));
    }
    Task.WaitAll(threads);
}

static (double Ms, int Exit, string Output) Exec(Plugin plugin, string command, string cid, string netns)
{
    var psi = new ProcessStartInfo(plugin.Path) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
    psi.Environment["CNI_COMMAND"] = command;
    psi.Environment["CNI_CONTAINERID"] = cid;
    psi.Environment["CNI_NETNS"] = netns;
    psi.Environment["CNI_IFNAME"] = "eth0";
    psi.Environment["CNI_PATH"] = plugin.CniPath;
    var sw = Stopwatch.StartNew();
    using var p = Process.Start(psi)!;
    var o = p.StandardOutput.ReadToEndAsync();
    var e = p.StandardError.ReadToEndAsync();
    p.StandardInput.BaseStream.Write(plugin.ConfBytes);
    p.StandardInput.Close();
    p.WaitForExit();
    double ms = sw.Elapsed.TotalMilliseconds;
    return (ms, p.ExitCode, o.Result + e.Result);
}

static void Report(Plugin[] plugins, Dictionary<string, Samples> results, int pods, int rounds)
{
    var refS = results[plugins[0].Name];
    var trl = results[plugins[1].Name];
    var sb = new StringBuilder();
    sb.AppendLine(CultureInfo.InvariantCulture, $"CNI latency, {pods} pods x {rounds} rounds, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z");
    sb.AppendLine();
    sb.AppendLine("| measure | reference bridge+host-local | trellis-cni | trellis / reference |");
    sb.AppendLine("|---|---|---|---|");
    void Row(string name, List<double> a, List<double> b, double q)
    {
        double pa = Pct(a, q), pb = Pct(b, q);
        sb.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {pa:0.00} ms | {pb:0.00} ms | {pb / pa:0.00} |");
    }
    Row("ADD p50, sequential", refS.AddSeq, trl.AddSeq, 0.50);
    Row("ADD p99, sequential", refS.AddSeq, trl.AddSeq, 0.99);
    Row("DEL p50, sequential", refS.DelSeq, trl.DelSeq, 0.50);
    Row("DEL p99, sequential", refS.DelSeq, trl.DelSeq, 0.99);
    Row("ADD p50, 16 at a time", refS.AddPar, trl.AddPar, 0.50);
    Row("ADD p99, 16 at a time", refS.AddPar, trl.AddPar, 0.99);
    Row("DEL p50, 16 at a time", refS.DelPar, trl.DelPar, 0.50);
    Row("DEL p99, 16 at a time", refS.DelPar, trl.DelPar, 0.99);
    sb.AppendLine(CultureInfo.InvariantCulture, $"| peak RSS (max over ADD+DEL execs) | {refS.PeakRssKb / 1024.0:0.0} MiB | {trl.PeakRssKb / 1024.0:0.0} MiB | {(double)trl.PeakRssKb / refS.PeakRssKb:0.00} |");
    Console.Write(sb.ToString());
}

static double Pct(List<double> xs, double q)
{
    var s = xs.Order().ToArray();
    return s[Math.Clamp((int)Math.Ceiling(q * s.Length) - 1, 0, s.Length - 1)];
}

static string Conf(string name, string type, string bridge, string subnet, string dataDir, string? ipamType) =>
    $$$"""{"cniVersion":"1.0.0","name":"{{{name}}}","type":"{{{type}}}","bridge":"{{{bridge}}}","isGateway":true,"mtu":1500,"hairpinMode":true,"ipam":{{{{(ipamType is null ? "" : $"\"type\":\"{ipamType}\",")}}}"ranges":[[{"subnet":"{{{subnet}}}"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"{{{dataDir}}}"}}""";

int Opt(string name, int def) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : def;
string OptS(string name, string def) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : def;

static void Sh(params string[] a)
{
    if (Run(a) != 0)
    {
        throw new InvalidOperationException(string.Join(' ', a) + " failed");
    }
}

static int Run(params string[] a)
{
    using var p = Process.Start(new ProcessStartInfo(a[0], a[1..]) { RedirectStandardError = true })!;
    p.StandardError.ReadToEnd();
    p.WaitForExit();
    return p.ExitCode;
}

internal sealed record Plugin(string Name, string Path, string CniPath, string Conf)
{
    public byte[] ConfBytes { get; } = Encoding.UTF8.GetBytes(Conf);
}

internal sealed class Samples
{
    public List<double> AddSeq { get; } = [];
    public List<double> DelSeq { get; } = [];
    public List<double> AddPar { get; } = [];
    public List<double> DelPar { get; } = [];
    public long PeakRssKb { get; set; }
}

/// <summary>
/// Peak RSS of a plugin's processes, as GNU time reports it (wait4's ru_maxrss: the plugin and
/// every process it waited for, e.g. bridge's host-local). Measured through /usr/bin/time because
/// exec from the large bench process would charge the bench's own pages to the child (the kernel
/// records the old mm's high-water mark at exec).
/// </summary>
internal static class Rss
{
    public static long Measure(NetNs nodeNs, Plugin plugin, string pod, string dataDir) => nodeNs.Run(() =>
    {
        long max = 0;
        for (int i = 0; i < 5; i++)
        {
            foreach (var cmd in new[] { "ADD", "DEL" })
            {
                var psi = new ProcessStartInfo("/usr/bin/time", ["-f", "%M", plugin.Path]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
                psi.Environment["CNI_COMMAND"] = cmd;
                psi.Environment["CNI_CONTAINERID"] = $"rss{i}";
                psi.Environment["CNI_NETNS"] = "/var/run/netns/" + pod;
                psi.Environment["CNI_IFNAME"] = "eth0";
                psi.Environment["CNI_PATH"] = plugin.CniPath;
                using var p = Process.Start(psi)!;
                var err = p.StandardError.ReadToEndAsync();
                p.StandardInput.BaseStream.Write(plugin.ConfBytes);
                p.StandardInput.Close();
                p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                string last = err.Result.TrimEnd().Split('\n')[^1];
                max = Math.Max(max, long.Parse(last, CultureInfo.InvariantCulture));
            }
        }
        return max;
    });
}
