using System.Diagnostics;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>directRouting from lab.yaml, and an agent that cannot get a subnet saying why in its Node's status.</summary>
[Collection("lab")]
public sealed class AgentEdgeTests
{
    [LabFact]
    public void Direct_routing_uses_plain_routes_to_nodes_on_the_same_l2_subnet()
    {
        using var lab = new LabDriver();
        string config = Path.Combine(Path.GetTempPath(), $"{lab.Name}.yaml");
        File.WriteAllText(config, $"apiVersion: trellis.dev/v1alpha1\nkind: Lab\nname: {lab.Name}\nnodes: 2\nbackend: vxlan\ndirectRouting: true\n");
        try
        {
            lab.Must("lab", "up", "--config", config);
        }
        finally
        {
            File.Delete(config);
        }
        lab.Apply("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: d}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: p1, namespace: d}
            spec: {nodeName: node-1, containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: p2, namespace: d}
            spec: {nodeName: node-2, containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}
            """);
        lab.WaitReady("d", 2);
        lab.WaitRoutes();
        Assert.Contains("10.244.2.0/24 via 172.30.0.12 dev eth0", Sh.Must("ip", "-n", $"trl-{lab.Name}-node-1", "route", "show", "proto", "201"), StringComparison.Ordinal);
        Assert.Equal("vxlan+directRouting", JsonNode.Parse(lab.Must("get", "no", "node-1", "-o", "json"))!["metadata"]!["annotations"]!["trellis.dev/backend"]!.GetValue<string>());
    }

    [LabFact]
    public void An_agent_with_no_subnet_left_says_why_in_the_node_status_instead_of_crash_looping()
    {
        using var lab = new LabDriver();
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "1");
        lab.Apply("apiVersion: v1\nkind: Node\nmetadata: {name: node-x}\n");
        // A netns of the lab's (removed by lab down) with an address, for an agent whose cluster CIDR
        // is already covered by node-1's lease: 10.244.1.0/24 in /25s leaves nothing to lease.
        string ns = $"trl-{lab.Name}-x";
        Sh.Must("ip", "netns", "add", ns);
        Sh.Must("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p");
        Sh.Must("ip", "-n", ns, "addr", "add", "10.99.0.2/24", "dev", "eth0");
        Sh.Must("ip", "-n", ns, "link", "set", "eth0", "up");
        string store = JsonNode.Parse(lab.Must("lab", "status", "--name", lab.Name, "-o", "json"))!["store"]!.GetValue<string>();
        using var agent = new KilledOnDispose(Process.Start(new ProcessStartInfo("ip",
            ["netns", "exec", ns, Path.Combine(Repo.BinDir, "trellisd"), "--store", store, "--node", "node-x", "--cluster-cidr", "10.244.1.0/24", "--lease-subnet-length", "25", "--underlay", "eth0"])
        { RedirectStandardOutput = true })!);
        JsonNode? condition = null;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (condition is null && DateTime.UtcNow < deadline)
        {
            condition = JsonNode.Parse(lab.Must("get", "no", "node-x", "-o", "json"))!["status"]?["conditions"]?.AsArray()
                .FirstOrDefault(c => c!["type"]!.GetValue<string>() == "NetworkUnavailable");
            Thread.Sleep(100);
        }
        Assert.NotNull(condition);
        Assert.Equal(("True", "NoSubnetLease"), (condition!["status"]!.GetValue<string>(), condition["reason"]!.GetValue<string>()));
        Assert.Contains("/25", condition["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Thread.Sleep(1500);
        Assert.False(agent.Process.HasExited, "the agent must keep running and retrying, not crash-loop");
        Assert.Null(JsonNode.Parse(lab.Must("get", "no", "node-x", "-o", "json"))!["spec"]?["podCIDR"]);
    }
}
