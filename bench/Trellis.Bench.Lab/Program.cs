using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Trellis.Core.Objects;
using Trellis.Store;

// The lab, end to end: `lab up` with 3 nodes then 30 pods, and 100 more pods from apply to Ready,
// with trellis-cni and with the reference bridge + host-local as the nodes' CNI plugin — same
// lab, same run, alternating. Usage (root, after ./scripts/build.sh):
//   dotnet run -c Release --project bench/Trellis.Bench.Lab -- [--rounds 1] [--trellis artifacts/bin/trellis]
int rounds = Opt("--rounds", 1);
string trellis = OptS("--trellis", Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../artifacts/bin/trellis")));
var results = new Dictionary<string, List<Run>> { ["reference"] = [], ["trellis-cni"] = [] };
for (int r = 0; r < rounds; r++)
{
    foreach (var plugin in new[] { "reference", "trellis-cni" })
    {
        results[plugin].Add(await OneAsync(plugin));
    }
}
Report();
return 0;

async Task<Run> OneAsync(string plugin)
{
    string lab = "bench" + Guid.NewGuid().ToString("N")[..6];
    try
    {
        var sw = Stopwatch.StartNew();
        Trellis("lab", "up", "--name", lab, "--nodes", "3", "--cni-plugin", plugin);
        double up = sw.Elapsed.TotalSeconds;
        Apply(lab, Pods("b30", 30));
        await WaitReadyAsync(lab, "b30", 30);
        double up30 = sw.Elapsed.TotalSeconds;

        var sw100 = Stopwatch.StartNew();
        Apply(lab, Pods("b100", 100));
        await WaitReadyAsync(lab, "b100", 100);
        double t100 = sw100.Elapsed.TotalSeconds;
        // CNI ADD time of those 100 pods, as each kubelet measured it around its CNI invocation.
        double cniMs = 0;
        foreach (var log in Directory.EnumerateFiles($"/var/log/trellis/{lab}", "kubelet-*.log"))
        {
            foreach (Match m in Regex.Matches(File.ReadAllText(log), @"started b100/\S+ .*\(cni add ([0-9.]+) ms\)"))
            {
                cniMs += double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            }
        }
        return new Run(up, up30, t100, cniMs);
    }
    finally
    {
        Trellis("lab", "down", "--name", lab);
    }
}

void Report()
{
    static double Med(IEnumerable<double> xs) { var a = xs.Order().ToArray(); return a[a.Length / 2]; }
    var refR = results["reference"];
    var trl = results["trellis-cni"];
    var sb = new StringBuilder();
    sb.AppendLine(CultureInfo.InvariantCulture, $"Lab, 3 nodes, {rounds} round(s), {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z (medians)");
    sb.AppendLine();
    sb.AppendLine("| measure | lab on reference bridge+host-local | lab on trellis-cni | trellis / reference |");
    sb.AppendLine("|---|---|---|---|");
    void Row(string name, Func<Run, double> f, string unit)
    {
        double a = Med(refR.Select(f)), b = Med(trl.Select(f));
        sb.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {a:0.00} {unit} | {b:0.00} {unit} | {b / a:0.00} |");
    }
    Row("`lab up` (3 nodes Ready)", r => r.Up, "s");
    Row("`lab up` + 30 pods Ready", r => r.Up30, "s");
    Row("100 pods, apply → all Ready", r => r.T100, "s");
    Row("pod start rate (100 pods)", r => 100 / r.T100, "pods/s");
    Row("CNI ADD time, summed over the 100 pods", r => r.CniMs / 1000, "s");
    Row("share of kubelet time in CNI ADD (sum / (3 kubelets × wall))", r => r.CniMs / 1000 / (3 * r.T100) * 100, "%");
    Console.Write(sb.ToString());
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
        throw new InvalidOperationException("apply failed: " + err);
    }
}

async Task WaitReadyAsync(string lab, string ns, int count)
{
    await using var store = ClusterStore.Open($"sqlite:///var/lib/trellis/{lab}/store.db");
    var deadline = DateTime.UtcNow.AddMinutes(3);
    while (true)
    {
        var list = await store.ListAsync(Kinds.Pod.StorePrefix(ns));
        int ready = list.Items.Count(i => new PodView((JsonObject)JsonNode.Parse(i.Value)!).IsReady);
        if (ready >= count)
        {
            return;
        }
        if (DateTime.UtcNow > deadline)
        {
            throw new TimeoutException($"{ready}/{count} pods Ready in {ns}");
        }
        await Task.Delay(20);
    }
}

static string Pods(string ns, int n)
{
    var sb = new StringBuilder($"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
    for (int i = 0; i < n; i++)
    {
        sb.Append(CultureInfo.InvariantCulture, $"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: {ns}}}\nspec: {{containers: [{{name: c, image: agnhost, ports: [{{containerPort: 80}}]}}]}}\n");
    }
    return sb.ToString();
}

void Trellis(params string[] a)
{
    using var p = Process.Start(new ProcessStartInfo(trellis, a) { RedirectStandardOutput = true, RedirectStandardError = true })!;
    string err = p.StandardError.ReadToEnd();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0)
    {
        throw new InvalidOperationException($"trellis {string.Join(' ', a)}: {err}");
    }
}

int Opt(string name, int def) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : def;
string OptS(string name, string def) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : def;

internal sealed record Run(double Up, double Up30, double T100, double CniMs);
