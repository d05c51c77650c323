using System.Globalization;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;
using static Trellis.Lab.Tests.ServiceLab;

namespace Trellis.Lab.Tests;

/// <summary>
/// Seeing NetworkPolicy: `trellis policy explain` names the policy and rule that decided, agreeing with real
/// packets, and trellisd's /metrics counts allowed packets per policy and dropped ones per pod.
/// </summary>
[Collection("lab")]
public sealed class PolicyToolsLabTests
{
    private const string Manifests = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: p}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: good, namespace: p, labels: {role: good}}
        spec: {nodeName: node-1, containers: [{name: c, image: agnhost, ports: [{name: http, containerPort: 80}]}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: bad, namespace: p, labels: {role: bad}}
        spec: {nodeName: node-1, containers: [{name: c, image: agnhost, ports: [{name: http, containerPort: 80}]}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: db, namespace: p, labels: {role: db}}
        spec: {nodeName: node-2, containers: [{name: c, image: agnhost, ports: [{name: http, containerPort: 80}, {name: other, containerPort: 81}]}]}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: allow-good, namespace: p}
        spec:
          podSelector: {matchLabels: {role: db}}
          ingress:
          - from: [{podSelector: {matchLabels: {role: good}}}]
            ports: [{port: http}]
        """;

    [LabFact]
    public void Explain_names_the_deciding_policy_agrees_with_real_packets_and_metrics_count_both_ways()
    {
        using var lab = new LabDriver("p");
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "2");
        lab.Apply(Manifests);
        lab.WaitReady("p", 3);
        string db = PodIp(lab, "p", "db");

        string allowed = lab.Must("policy", "explain", "p/good", "p/db", "--port", "80", "--protocol", "tcp");
        Assert.Contains("allowed", allowed, StringComparison.Ordinal);
        Assert.Contains("p/allow-good", allowed, StringComparison.Ordinal);
        var denied = JsonNode.Parse(lab.Must("policy", "explain", "p/bad", "p/db", "--port", "80", "-o", "json"))!;
        Assert.False(denied["allowed"]!.GetValue<bool>());
        Assert.Equal("Denied", denied["ingress"]!["outcome"]!.GetValue<string>());
        Assert.Contains("p/allow-good", denied["ingress"]!["deciding"]!.ToJsonString(), StringComparison.Ordinal);
        // The named port "http" is 80 on db: port 81 is not allowed, even for "good".
        Assert.False(JsonNode.Parse(lab.Must("policy", "explain", "p/good", "p/db", "--port", "81", "-o", "json"))!["allowed"]!.GetValue<bool>());
        Assert.Equal(2, lab.Run("policy", "explain", "p/nobody", "p/db").Exit);

        // Real packets say the same.
        Eventually(lab, "p/good", $"{db}:80", s => s.Exit == 0);
        Eventually(lab, "p/bad", $"{db}:80", s => s.Exit == 3);
        Assert.Equal(3, Connect(lab, "p/good", $"{db}:81").Exit);
        for (int i = 0; i < 3; i++)
        {
            Connect(lab, "p/good", $"{db}:80");
            Connect(lab, "p/bad", $"{db}:80", timeout: "300ms");
        }

        // db's node counts them: packets allowed by p/allow-good, packets dropped for p/db.
        string metrics = Sh.Must("ip", "netns", "exec", NodeNetns(lab, "node-2"), "timeout", "5", "bash", "-c",
            "exec 3<>/dev/tcp/127.0.0.1/10249; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3");
        Assert.True(Value(metrics, "trellis_policy_allowed_packets_total", "policy=\"allow-good\"") > 0, metrics);
        Assert.True(Value(metrics, "trellis_policy_dropped_packets_total", "pod=\"db\"") > 0, metrics);
    }

    /// <summary>The sum of a metric's samples whose labels contain <paramref name="label"/>.</summary>
    private static double Value(string metrics, string name, string label) =>
        metrics.Split('\n')
            .Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(label, StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
}
