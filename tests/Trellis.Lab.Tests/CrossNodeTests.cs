using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>trellisd in the lab: pods on different nodes talk without NAT, over VXLAN or host-gw; drift is repaired; an agent restart interrupts nothing.</summary>
[Collection("lab")]
public sealed class CrossNodeTests
{
    private const string Pods = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: x}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p1, namespace: x}
        spec: {nodeName: node-1, containers: [{name: c, image: agnhost, ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p2, namespace: x}
        spec: {nodeName: node-2, containers: [{name: c, image: agnhost, ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]}]}
        """;

    [LabFact]
    public void Host_gw_routes_pods_across_nodes_via_the_node_addresses()
    {
        using var lab = new LabDriver();
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "2", "--backend", "host-gw");
        lab.Apply(Pods);
        var pods = lab.WaitReady("x", 2);
        lab.WaitRoutes();
        lab.WaitRoutes(protocol: "udp");
        Ping(lab, "x/p1", "p2");
        // No NAT between pods on host-gw either: the tracked flow carries p1's own address both ways.
        string p1Ip = pods.First(p => p!["metadata"]!["name"]!.GetValue<string>() == "p1")!["status"]!["podIP"]!.GetValue<string>();
        string p2Ip = pods.First(p => p!["metadata"]!["name"]!.GetValue<string>() == "p2")!["status"]!["podIP"]!.GetValue<string>();
        Assert.Equal("p2\n", lab.Must("exec", "x/p1", "--", LabDriver.Trellis, "connect", $"{p2Ip}:80"));
        string tracked = Sh.Must("ip", "netns", "exec", $"trl-{lab.Name}-node-1", "conntrack", "-L", "-p", "tcp", "-d", p2Ip);
        Assert.Contains($"src={p2Ip} dst={p1Ip}", tracked, StringComparison.Ordinal);
        string routes = Sh.Must("ip", "-n", $"trl-{lab.Name}-node-1", "route", "show", "proto", "201");
        Assert.Contains("10.244.2.0/24 via 172.30.0.12 dev eth0", routes, StringComparison.Ordinal);
        Assert.DoesNotContain("trellis.1", Sh.Must("ip", "-n", $"trl-{lab.Name}-node-1", "link"), StringComparison.Ordinal);
    }

    [LabFact]
    public void Vxlan_pods_see_each_others_real_addresses_drift_is_repaired_and_an_agent_restart_interrupts_nothing()
    {
        using var lab = new LabDriver();
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "2");
        lab.Apply(Pods);
        var pods = lab.WaitReady("x", 2);
        lab.WaitRoutes();
        string node1 = $"trl-{lab.Name}-node-1";
        Ping(lab, "x/p1", "p2");
        Ping(lab, "x/p2", "p1");
        Assert.Contains("10.244.2.0/24 via 10.244.2.0 dev trellis.1 proto 201 onlink", Sh.Must("ip", "-n", node1, "route"), StringComparison.Ordinal);

        string p1Ip = pods.First(p => p!["metadata"]!["name"]!.GetValue<string>() == "p1")!["status"]!["podIP"]!.GetValue<string>();
        string p2Ip = pods.First(p => p!["metadata"]!["name"]!.GetValue<string>() == "p2")!["status"]!["podIP"]!.GetValue<string>();
        // No NAT between pods: the connection tracked on p1's node has p1's own address both ways
        // (a masqueraded flow would have the node's address as the reply's destination).
        Assert.Equal("p2\n", lab.Must("exec", "x/p1", "--", LabDriver.Trellis, "connect", $"{p2Ip}:80"));
        string tracked = Sh.Must("ip", "netns", "exec", node1, "conntrack", "-L", "-p", "tcp", "-d", p2Ip);
        Assert.Contains($"src={p1Ip} dst={p2Ip}", tracked, StringComparison.Ordinal);
        Assert.Contains($"src={p2Ip} dst={p1Ip}", tracked, StringComparison.Ordinal);

        // Leaving the cluster CIDR (to the underlay, the lab's outside world), pod traffic is masqueraded
        // to the node's address by the trellis-node table.
        using (var outside = new KilledOnDispose(System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(
            "ip", ["netns", "exec", $"trl-{lab.Name}-ul", LabDriver.Trellis, "serve-hostname", "--name", "outside", "--port", "8088"]) { RedirectStandardError = true })!))
        {
            outside.Process.StandardError.ReadLine();
            Assert.Equal("outside\n", lab.Must("exec", "x/p1", "--", LabDriver.Trellis, "connect", "172.30.0.1:8088"));
        }
        string egress = Sh.Must("ip", "netns", "exec", node1, "conntrack", "-L", "-p", "tcp", "-d", "172.30.0.1");
        Assert.Contains($"src={p1Ip} dst=172.30.0.1", egress, StringComparison.Ordinal);
        Assert.Contains("src=172.30.0.1 dst=172.30.0.11", egress, StringComparison.Ordinal);

        // Drift: a route deleted by hand is back within the resync period.
        Sh.Must("ip", "-n", node1, "route", "del", "10.244.2.0/24");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!Sh.Must("ip", "-n", node1, "route").Contains("10.244.2.0/24", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }
        Assert.Contains("10.244.2.0/24", Sh.Must("ip", "-n", node1, "route"), StringComparison.Ordinal);

        // An agent killed outright: its routes stay, traffic keeps flowing, the supervisor restarts it.
        int agent = JsonNode.Parse(File.ReadAllText($"/run/trellis/{lab.Name}/procs.json"))!["procs"]!.AsArray()
            .First(p => p!["role"]!.GetValue<string>() == "trellisd" && p["node"]!.GetValue<string>() == "node-1")!["pid"]!.GetValue<int>();
        // Its lease outlives it: the restarted agent renews the same subnet and rewrites the same CNI config.
        string conflist = $"/run/trellis/{lab.Name}/nodes/node-1/net.d/10-trellis.conflist";
        string before = File.ReadAllText(conflist);
        Assert.Contains("\"subnet\": \"10.244.1.0/24\"", before, StringComparison.Ordinal);
        File.Delete(conflist);
        // Continuous cross-node traffic (fresh TCP connections back to back) across the kill and the restart.
        var psi = new System.Diagnostics.ProcessStartInfo(LabDriver.Trellis, ["exec", "x/p1", "--", "sh", "-c",
            $"ok=0; fail=0; end=$(( $(date +%s) + 4 )); while [ $(date +%s) -lt $end ]; do if {LabDriver.Trellis} connect {p2Ip}:80 --timeout 1s >/dev/null 2>&1; then ok=$((ok+1)); else fail=$((fail+1)); fi; done; echo $ok $fail"])
        {
            RedirectStandardOutput = true,
        };
        psi.Environment["TRELLIS_LAB"] = lab.Name;
        using var traffic = System.Diagnostics.Process.Start(psi)!;
        Thread.Sleep(1000);
        Sh.Must("kill", "-9", agent.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var counts = traffic.StandardOutput.ReadToEnd().Trim().Split(' ').Select(int.Parse).ToArray();
        traffic.WaitForExit();
        Assert.True(counts[0] > 50, $"only {counts[0]} connections in 4 s: the loop did not run");
        Assert.Equal(0, counts[1]); // connections lost while trellisd was killed and restarted
        deadline = DateTime.UtcNow.AddSeconds(15);
        while (File.ReadAllText($"/var/log/trellis/{lab.Name}/trellisd-node-1.log").Split("published VTEP").Length < 2 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }
        lab.WaitRoutes();
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (!File.Exists(conflist) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }
        Assert.Equal(before, File.ReadAllText(conflist));
        Assert.Equal("10.244.1.0/24", JsonNode.Parse(lab.Must("get", "no", "node-1", "-o", "json"))!["spec"]!["podCIDR"]!.GetValue<string>());
    }

    /// <summary>ICMP across nodes: one echo from a pod to another pod's address.</summary>
    private static void Ping(LabDriver lab, string from, string toPod)
    {
        string ip = JsonNode.Parse(lab.Must("get", "po", toPod, "-n", "x", "-o", "json"))!["status"]!["podIP"]!.GetValue<string>();
        var (exit, o, e) = lab.Run("exec", from, "--", "ping", "-c", "1", "-W", "2", ip);
        Assert.True(exit == 0, $"ping {from} -> {ip}: {o}{e}");
    }
}
