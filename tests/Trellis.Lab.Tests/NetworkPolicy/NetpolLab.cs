using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Trellis.Lab.Tests.NetworkPolicy;

/// <summary>
/// The upstream e2e model in one 3-node lab, shared by every case: namespaces x, y, z (label ns: NAME) with
/// pods a, b, c (label pod: NAME) serving 80 and 81 on TCP, UDP and SCTP (ports named serve-80-tcp etc., one
/// container per port number as upstream has one per port), and a Service s-NS-POD per pod. Each namespace's
/// pods sit on three different nodes, so every case crosses nodes and stays on one.
/// </summary>
public sealed partial class NetpolLab : IDisposable
{
    /// <summary>How long a step's change may take to show in the matrix (upstream polls about as long).</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(10);

    private static readonly int[] s_ports = [80, 81];
    private static readonly string[] s_protocols = ["TCP", "UDP", "SCTP"];

    private readonly Dictionary<string, Dictionary<string, string>> _podLabels = [];
    private readonly Dictionary<string, Dictionary<string, string>> _nsLabels = [];

    public NetpolLab()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }
        try
        {
            var sw = Stopwatch.StartNew();
            Lab.Must("lab", "up", "--name", Lab.Name, "--nodes", "3");
            var manifests = new StringBuilder();
            foreach (string ns in TruthTable.Namespaces)
            {
                _nsLabels[ns] = BaseNamespaceLabels(ns);
                manifests.Append(NamespaceYaml(ns, _nsLabels[ns]));
            }
            foreach (string pod in TruthTable.Pods)
            {
                _podLabels[pod] = BasePodLabels(pod);
                manifests.Append(PodYaml(pod, _podLabels[pod])).Append(ServiceYaml(pod));
            }
            Lab.Apply(manifests.ToString());
            foreach (string ns in TruthTable.Namespaces)
            {
                foreach (var p in Lab.WaitReady(ns, TruthTable.PodNames.Length, 120))
                {
                    PodIps[$"{ns}/{p!["metadata"]!["name"]!.GetValue<string>()}"] = p["status"]!["podIP"]!.GetValue<string>();
                }
            }
            WaitBaseline([(80, "TCP"), (81, "TCP"), (80, "UDP")], TimeSpan.FromSeconds(60));
            SetupTime = sw.Elapsed;
        }
        catch
        {
            Lab.Dispose(); // xunit does not dispose a fixture whose constructor threw
            throw;
        }
    }

    public LabDriver Lab { get; } = new("np");

    public Dictionary<string, string> PodIps { get; } = [];

    public TimeSpan SetupTime { get; }

    /// <summary>Nodes in rotation per namespace: x/a node-1, x/b node-2, x/c node-3, y/a node-2, … z/c node-2.</summary>
    public static string NodeOf(string pod)
    {
        int ns = Array.IndexOf(TruthTable.Namespaces, pod[..1]), p = Array.IndexOf(TruthTable.PodNames, pod[2..]);
        return $"node-{(ns + p) % 3 + 1}";
    }

    public static Dictionary<string, string> BasePodLabels(string pod) => new() { ["pod"] = pod[2..] };

    public static Dictionary<string, string> BaseNamespaceLabels(string ns) => new() { ["ns"] = ns };

    public static string NamespaceYaml(string ns, IReadOnlyDictionary<string, string> labels) => $$"""
        apiVersion: v1
        kind: Namespace
        metadata: {name: {{ns}}, labels: {{Flow(labels)}}}
        ---

        """;

    /// <summary>The pod as upstream's model builds it; re-applied unchanged but for labels when labels change.</summary>
    public static string PodYaml(string pod, IReadOnlyDictionary<string, string> labels)
    {
        var sb = new StringBuilder($$"""
            apiVersion: v1
            kind: Pod
            metadata: {name: {{pod[2..]}}, namespace: {{pod[..1]}}, labels: {{Flow(labels)}}}
            spec:
              nodeName: {{NodeOf(pod)}}
              terminationGracePeriodSeconds: 0
              containers:

            """);
        foreach (int port in s_ports)
        {
            // No command: the lab kubelet runs the built-in serve-hostname on the declared ports (DESIGN.md §5).
            sb.Append(CultureInfo.InvariantCulture, $"  - name: cont-{port}\n    image: registry.k8s.io/e2e-test-images/agnhost:2.53\n    ports:\n");
            foreach (string proto in s_protocols)
            {
                sb.Append(CultureInfo.InvariantCulture, $"    - {{name: serve-{port}-{proto.ToLowerInvariant()}, containerPort: {port}, protocol: {proto}}}\n");
            }
        }
        return sb.Append("---\n").ToString();
    }

    public static string ServiceYaml(string pod)
    {
        var ports = s_ports.SelectMany(port => s_protocols.Select(proto =>
            $"{{name: service-port-{port}-{proto.ToLowerInvariant()}, port: {port}, protocol: {proto}, targetPort: {port}}}"));
        return $$"""
            apiVersion: v1
            kind: Service
            metadata: {name: s-{{pod[..1]}}-{{pod[2..]}}, namespace: {{pod[..1]}}}
            spec: {selector: {pod: {{pod[2..]}}}, ports: [{{string.Join(", ", ports)}}]}
            ---

            """;
    }

    private static string Flow(IReadOnlyDictionary<string, string> labels) =>
        "{" + string.Join(", ", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}: \"{l.Value}\"")) + "}";

    /// <summary>
    /// Runs one case: back to the baseline (no policies in x, y, z, model labels, everything connected on the
    /// case's ports), then each step's changes followed by its truth tables, each polled until it holds or
    /// <see cref="Settle"/> passes. Returns the failures of the first step that has any (later steps build on it).
    /// </summary>
    public IReadOnlyList<string> Run(NetpolCase c, Action<string> log)
    {
        var probes = c.Probes.Where(p => p.Protocol != "SCTP").ToList();
        var sw = Stopwatch.StartNew();
        Reset(probes);
        log($"baseline ({string.Join(", ", probes.Select(p => $"{p.Port}/{p.Protocol}"))}) in {sw.ElapsedMilliseconds} ms");
        for (int s = 0; s < c.Steps.Count; s++)
        {
            var step = c.Steps[s];
            log($"step {s + 1}/{c.Steps.Count}{(step.Note is null ? "" : ": " + step.Note)}");
            Change(step);
            // The step's tables are independent (other port or protocol): polled at once, as each takes a probe
            // timeout (1 s) per round whenever a pair is blocked.
            var checks = step.Expect.SelectMany(e => e.Protocols.Where(p => p != "SCTP").Select(proto => (Expect: e, Proto: proto, Table: e.Table())))
                .Select(x => Task.Run(() => Validate(x.Expect.Port, x.Proto, x.Table, log,
                    $"step {s + 1}, port {x.Expect.Port}/{x.Proto}{(x.Expect.Extra ? " (Trellis extra, not upstream)" : "")}")))
                .ToArray();
            var failures = checks.Select(t => t.Result).OfType<string>().ToList();
            if (failures.Count > 0)
            {
                return failures;
            }
        }
        log($"case done in {sw.ElapsedMilliseconds} ms");
        return [];
    }

    private void Change(NetpolStep step)
    {
        if (step.Apply is { } yaml)
        {
            Lab.Apply(IpTemplate().Replace(yaml, m => PodIps[m.Groups[1].Value]));
        }
        if (step.DeleteAllPolicies)
        {
            DeletePolicies();
        }
        var manifests = new StringBuilder();
        foreach (var (pod, labels) in step.LabelPod)
        {
            foreach (var (k, v) in labels)
            {
                _podLabels[pod][k] = v;
            }
            manifests.Append(PodYaml(pod, _podLabels[pod]));
        }
        foreach (var (ns, labels) in step.LabelNamespace)
        {
            foreach (var (k, v) in labels)
            {
                _nsLabels[ns][k] = v;
            }
            manifests.Append(NamespaceYaml(ns, _nsLabels[ns]));
        }
        if (manifests.Length > 0)
        {
            Lab.Apply(manifests.ToString());
        }
    }

    [GeneratedRegex(@"\{\{ip ([xyz]/[abc])\}\}")]
    private static partial Regex IpTemplate();

    /// <summary>Deletes every NetworkPolicy of the model namespaces and restores the model's labels.</summary>
    private void Reset(IReadOnlyList<(int Port, string Protocol)> probes)
    {
        DeletePolicies();
        var manifests = new StringBuilder();
        foreach (string ns in TruthTable.Namespaces.Where(ns => !Same(_nsLabels[ns], BaseNamespaceLabels(ns))))
        {
            _nsLabels[ns] = BaseNamespaceLabels(ns);
            manifests.Append(NamespaceYaml(ns, _nsLabels[ns]));
        }
        foreach (string pod in TruthTable.Pods.Where(p => !Same(_podLabels[p], BasePodLabels(p))))
        {
            _podLabels[pod] = BasePodLabels(pod);
            manifests.Append(PodYaml(pod, _podLabels[pod]));
        }
        if (manifests.Length > 0)
        {
            Lab.Apply(manifests.ToString());
        }
        WaitBaseline(probes, Settle * 2);

        static bool Same(Dictionary<string, string> a, Dictionary<string, string> b) => a.Count == b.Count && a.All(kv => b.GetValueOrDefault(kv.Key) == kv.Value);
    }

    private void DeletePolicies()
    {
        var items = JsonNode.Parse(Lab.Must("get", "netpol", "-A", "-o", "json"))!["items"]!.AsArray()
            .Where(p => TruthTable.Namespaces.Contains(p!["metadata"]!["namespace"]!.GetValue<string>()))
            .Select(p => (JsonNode)new JsonObject
            {
                ["apiVersion"] = "networking.k8s.io/v1",
                ["kind"] = "NetworkPolicy",
                ["metadata"] = new JsonObject { ["name"] = p!["metadata"]!["name"]!.GetValue<string>(), ["namespace"] = p["metadata"]!["namespace"]!.GetValue<string>() },
            }).ToArray();
        if (items.Length > 0)
        {
            var list = new JsonObject { ["apiVersion"] = "v1", ["kind"] = "List", ["items"] = new JsonArray(items) };
            var (exit, o, e) = Lab.RunWithStdin(list.ToJsonString(), "delete", "-f", "-");
            Assert.True(exit == 0, $"delete policies exited {exit}:\n{e}\n{o}");
        }
    }

    /// <summary>Polls (pod IPs only) until every pair connects on every given port and protocol.</summary>
    public void WaitBaseline(IReadOnlyList<(int Port, string Protocol)> probes, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var tables = probes.Select(p => Task.Run(() => (p, Table: ProbeTable(p.Port, p.Protocol, toService: false)))).ToArray();
            var bad = tables.Select(t => t.Result).Where(t => !t.Table.AllAllowed).ToList();
            if (bad.Count == 0)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"the baseline (no policies: everything connects) did not hold after {timeout.TotalSeconds:0}s:\n"
                    + string.Join("\n", bad.Select(b => $"port {b.p.Port}/{b.p.Protocol}:\n{TruthTable.Expected([]).Diff(b.Table)}")));
            }
            Thread.Sleep(100);
        }
    }

    /// <summary>
    /// Probes to pod IPs and, at the same time, to each pod's ClusterIP (as upstream probes through Services) until
    /// both match <paramref name="expected"/>; null when they do, else upstream's truth-table printout of the last try.
    /// </summary>
    private string? Validate(int port, string protocol, TruthTable expected, Action<string> log, string what)
    {
        var sw = Stopwatch.StartNew();
        for (int tries = 1; ; tries++)
        {
            var direct = Task.Run(() => ProbeTable(port, protocol, toService: false));
            var service = Task.Run(() => ProbeTable(port, protocol, toService: true));
            var (d, s) = (direct.Result, service.Result);
            bool directOk = expected.Mismatches(d).Count == 0, serviceOk = expected.Mismatches(s).Count == 0;
            if (directOk && serviceOk)
            {
                log($"  {what}: matched after {tries} probe round(s), {sw.ElapsedMilliseconds} ms");
                return null;
            }
            if (sw.Elapsed > Settle)
            {
                var sb = new StringBuilder($"{what}: the matrix did not match after {sw.Elapsed.TotalSeconds:0.0}s ({tries} probe rounds)\n");
                if (!directOk)
                {
                    sb.Append("to pod IPs:\n").Append(expected.Diff(d));
                }
                if (!serviceOk)
                {
                    sb.Append("to ClusterIPs (--to-service):\n").Append(expected.Diff(s));
                }
                log(sb.ToString());
                return sb.ToString();
            }
            Thread.Sleep(50);
        }
    }

    public TruthTable ProbeTable(int port, string protocol, bool toService)
    {
        string[] args = ["probe", "-n", string.Join(',', TruthTable.Namespaces), "--port", port.ToString(CultureInfo.InvariantCulture),
            "--protocol", protocol.ToLowerInvariant(), "-o", "json", .. (toService ? ["--to-service"] : Array.Empty<string>())];
        return TruthTable.Observed(JsonNode.Parse(Lab.Must(args))!);
    }

    public void Dispose()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }
        Lab.Dispose();
        var left = Lab.Leftovers();
        if (left.Count > 0)
        {
            throw new InvalidOperationException("lab down left: " + string.Join("\n", left));
        }
    }
}
