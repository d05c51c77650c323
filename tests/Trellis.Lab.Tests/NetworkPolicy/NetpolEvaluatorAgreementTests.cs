using System.Net;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Core.Policies;

namespace Trellis.Lab.Tests.NetworkPolicy;

/// <summary>
/// Every truth table of the case data, SCTP included, against Trellis' reference evaluator (PolicyEvaluator,
/// written from the API independently of these tables): the hand-translated upstream expectations and the
/// evaluator must agree before either is trusted against the lab. No lab needed.
/// </summary>
public sealed class NetpolEvaluatorAgreementTests
{
    public static TheoryData<string> Ids => [.. NetpolCase.All.Select(c => c.Id)];

    [Theory]
    [MemberData(nameof(Ids))]
    public void ExpectedTablesAreTheEvaluatorsVerdicts(string id)
    {
        var c = NetpolCase.ById(id);
        var ips = TruthTable.Pods.Select((p, i) => (p, ip: $"10.244.{NetpolLab.NodeOf(p)[5..]}.{10 + i}")).ToDictionary(x => x.p, x => x.ip);
        var podLabels = TruthTable.Pods.ToDictionary(p => p, NetpolLab.BasePodLabels);
        var nsLabels = TruthTable.Namespaces.ToDictionary(n => n, NetpolLab.BaseNamespaceLabels);
        var policies = new Dictionary<string, JsonObject>();
        var problems = new List<string>();
        for (int s = 0; s < c.Steps.Count; s++)
        {
            var step = c.Steps[s];
            if (step.Apply is { } yaml)
            {
                foreach (var (pod, ip) in ips)
                {
                    yaml = yaml.Replace("{{ip " + pod + "}}", ip, StringComparison.Ordinal);
                }
                foreach (var obj in Manifests.Parse(yaml, c.File))
                {
                    policies[$"{obj["metadata"]!["namespace"]}/{obj["metadata"]!["name"]}"] = obj;
                }
            }
            if (step.DeleteAllPolicies)
            {
                policies.Clear();
            }
            foreach (var (pod, labels) in step.LabelPod)
            {
                foreach (var (k, v) in labels)
                {
                    podLabels[pod][k] = v;
                }
            }
            foreach (var (ns, labels) in step.LabelNamespace)
            {
                foreach (var (k, v) in labels)
                {
                    nsLabels[ns][k] = v;
                }
            }
            var index = new PolicyIndex(new PolicySnapshot
            {
                Namespaces = [.. TruthTable.Namespaces.Select(n => new NamespaceView(Object(NetpolLab.NamespaceYaml(n, WithName(n, nsLabels[n])))))],
                Pods = [.. TruthTable.Pods.Select(p => new PodView(WithIp(Object(NetpolLab.PodYaml(p, podLabels[p])), ips[p])))],
                Policies = [.. policies.Values.Select(p => new NetworkPolicyView(p))],
            });
            foreach (var expect in step.Expect)
            {
                var table = expect.Table();
                foreach (string proto in expect.Protocols)
                {
                    foreach (string from in TruthTable.Pods)
                    {
                        foreach (string to in TruthTable.Pods.Where(t => t != from))
                        {
                            bool verdict = PolicyEvaluator.Evaluate(index, IPAddress.Parse(ips[from]), IPAddress.Parse(ips[to]), proto, expect.Port).Allowed;
                            if (verdict != table[from, to])
                            {
                                problems.Add($"step {s + 1} {expect.Port}/{proto} {from} -> {to}: table says {table[from, to]}, evaluator {verdict}");
                            }
                        }
                    }
                }
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));

        static JsonObject Object(string yaml) => Manifests.Parse(yaml, "model").Single();

        // What admission adds to every namespace.
        static Dictionary<string, string> WithName(string ns, Dictionary<string, string> labels) =>
            new(labels) { [NamespaceView.NameLabel] = ns };

        static JsonObject WithIp(JsonObject pod, string ip)
        {
            pod["status"] = new JsonObject { ["phase"] = "Running", ["podIP"] = ip, ["podIPs"] = new JsonArray(new JsonObject { ["ip"] = ip }) };
            return pod;
        }
    }
}
