using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Core.Policies;
using Xunit.Abstractions;

namespace Trellis.Core.Tests.Policies;

/// <summary>The packet path does not grow with the number of policies; compile time of 1,000 × 1,000 printed.</summary>
public class PolicyScaleTests(ITestOutputHelper output)
{
    [Fact]
    public void Chains_on_the_packet_path_do_not_depend_on_the_number_of_policies()
    {
        var counts = new List<string>();
        foreach (int policies in (int[])[0, 1, 10, 1000])
        {
            var snapshot = Snapshot(1000, policies);
            var sw = Stopwatch.StartNew();
            var index = new PolicyIndex(snapshot);
            var indexed = sw.Elapsed;
            var ruleset = PolicyCompiler.Compile(index, "node-1");
            counts.Add(string.Create(CultureInfo.InvariantCulture,
                $"{policies} policies: index {indexed.TotalMilliseconds:F0} ms, compile {(sw.Elapsed - indexed).TotalMilliseconds:F0} ms, {ruleset.Sets.Values.Sum(s => s.Elements.Count)} elements, {ruleset.Chains.Count} chains"));
            // forward, egress-check and ingress-check are all a packet walks (plus one counter chain).
            Assert.Equal(6, ruleset.Chains["forward"].Rules.Count);
            Assert.Equal(4, ruleset.Chains["egress-check"].Rules.Count);
            Assert.Equal(4, ruleset.Chains["ingress-check"].Rules.Count);
            Assert.All(ruleset.Chains.Values.Where(c => PolicyNames.IsCounterChain(c.Name)), c => Assert.Single(c.Rules));
        }
        output.WriteLine(string.Join("\n", counts));
    }

    internal static PolicySnapshot Snapshot(int pods, int policies)
    {
        var nodes = Enumerable.Range(1, 4).Select(i => PolicyHarness.Node($"node-{i}", $"10.244.{i}.0/24")).ToList();
        var namespaces = Enumerable.Range(0, 10).Select(i => PolicyHarness.Namespace($"ns{i}", new() { ["team"] = $"t{i % 3}" })).ToList();
        var podViews = Enumerable.Range(0, pods).Select(i => PolicyHarness.Pod($"ns{i % 10}", $"p{i}", $"10.244.{i % 4 + 1}.{2 + i / 4}", $"node-{i % 4 + 1}",
            new() { ["app"] = $"app{i % 50}" }, [$"http:{8000 + i % 7}/TCP"])).ToList();
        var policyViews = Enumerable.Range(0, policies).Select(i => new NetworkPolicyView((JsonObject)JsonNode.Parse($$"""
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np{{i}}", "namespace": "ns{{i % 10}}"},
             "spec": {"podSelector": {"matchLabels": {"app": "app{{i % 50}}"} },
               "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "t{{i % 3}}"} }, "podSelector": {"matchLabels": {"app": "app{{(i + 2) % 50}}"} } }],
                            "ports": [{"port": {{80 + i % 5}} }, {"port": "http"}, {"protocol": "UDP", "port": 5000, "endPort": 5010}]},
                           {"from": [{"ipBlock": {"cidr": "172.16.{{i % 200}}.0/24", "except": ["172.16.{{i % 200}}.128/25"]} }]}],
               "egress": [{"to": [{"namespaceSelector": {} }], "ports": [{"protocol": "UDP", "port": 53}]},
                          {"to": [{"podSelector": {"matchLabels": {"app": "app{{(i + 3) % 50}}"} } }], "ports": [{"port": "http"}]}]} }
            """)!)).ToList();
        return new PolicySnapshot { Nodes = nodes, Namespaces = namespaces, Pods = podViews, Policies = policyViews };
    }
}
