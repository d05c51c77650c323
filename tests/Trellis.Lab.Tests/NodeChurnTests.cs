using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>A node joins a running lab and another is removed: every node's routes follow, checked on every node.</summary>
[Collection("lab")]
public sealed class NodeChurnTests
{
    private static string Pod(string name, string node) =>
        $"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: churn}}\nspec: {{nodeName: {node}, containers: [{{name: c, image: agnhost, ports: [{{containerPort: 80}}]}}]}}\n";

    [LabFact]
    public void A_joining_node_gets_routes_everywhere_and_a_removed_one_loses_them_everywhere()
    {
        using var lab = new LabDriver();
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "2");
        lab.Apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: churn}\n" + Pod("p1", "node-1") + Pod("p2", "node-2"));
        lab.WaitReady("churn", 2);

        // Join: the same `lab up` with one more node; the supervisor starts its kubelet and trellisd.
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "3");
        lab.Apply(Pod("p3", "node-3"));
        lab.WaitReady("churn", 3);
        lab.WaitRoutes();
        var subnets = Enumerable.Range(1, 3).ToDictionary(i => i, i => JsonNode.Parse(lab.Must("get", "no", $"node-{i}", "-o", "json"))!["spec"]!["podCIDR"]!.GetValue<string>());
        for (int i = 1; i <= 3; i++)
        {
            string routes = Routes(lab, i);
            foreach (var (j, subnet) in subnets.Where(s => s.Key != i))
            {
                Assert.Contains($"{subnet} via", routes, StringComparison.Ordinal);
            }
        }

        // Removal: the Node object goes; the other nodes drop its route, neighbour and FDB entry.
        lab.RunWithStdin("apiVersion: v1\nkind: Node\nmetadata: {name: node-3}\n", "delete", "-f", "-");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((Routes(lab, 1).Contains(subnets[3], StringComparison.Ordinal) || Routes(lab, 2).Contains(subnets[3], StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }
        foreach (int i in new[] { 1, 2 })
        {
            Assert.DoesNotContain(subnets[3], Routes(lab, i), StringComparison.Ordinal);
            Assert.DoesNotContain("172.30.0.13", Sh.Must("ip", "netns", "exec", $"trl-{lab.Name}-node-{i}", "bridge", "fdb", "show", "dev", "trellis.1"), StringComparison.Ordinal);
            Assert.Contains(subnets[i == 1 ? 2 : 1], Routes(lab, i), StringComparison.Ordinal);
        }
    }

    private static string Routes(LabDriver lab, int node) => Sh.Must("ip", "-n", $"trl-{lab.Name}-node-{node}", "route", "show", "proto", "201");
}
