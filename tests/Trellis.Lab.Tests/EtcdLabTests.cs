using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>`lab up --store etcd`: a 3-member etcd inside the lab's underlay carries the cluster, survives losing its leader, and goes with `lab down`.</summary>
[Collection("lab")]
public sealed class EtcdLabTests
{
    private const string Pods = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: x}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p1, namespace: x}
        spec: {nodeName: node-1, containers: [{name: c, image: agnhost, ports: [{containerPort: 80, protocol: TCP}]}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p2, namespace: x}
        spec: {nodeName: node-2, containers: [{name: c, image: agnhost, ports: [{containerPort: 80, protocol: TCP}]}]}
        """;

    private const string ThirdPod = """
        apiVersion: v1
        kind: Pod
        metadata: {name: p3, namespace: x}
        spec: {nodeName: node-2, containers: [{name: c, image: agnhost, ports: [{containerPort: 80, protocol: TCP}]}]}
        """;

    private const string Url = "etcd://172.30.0.2:2379,172.30.0.3:2379,172.30.0.4:2379";

    [LabFact]
    public void A_lab_on_its_own_etcd_keeps_working_when_the_leader_is_killed_and_leaves_nothing_behind()
    {
        Assert.True(File.Exists("/usr/bin/etcd"), "etcd is not installed: run scripts/install-deps.sh");
        string name;
        using (var lab = new LabDriver("e"))
        {
            name = lab.Name;
            lab.Must("lab", "up", "--name", lab.Name, "--nodes", "2", "--store", "etcd");
            var status = JsonNode.Parse(lab.Must("lab", "status", "-o", "json"))!;
            Assert.Equal(Url, status["store"]!.GetValue<string>());
            Assert.All(status["nodes"]!.AsArray(), n => Assert.True(n!["ready"]!.GetValue<bool>(), $"{n["name"]} is not ready"));
            Assert.Equal(2, status["nodes"]!.AsArray().Count);
            Assert.Equal(3, EtcdProcs(lab.Name).Count);

            lab.Apply(Pods);
            lab.WaitReady("x", 2);
            lab.WaitRoutes();

            // The leader (as the members themselves report it) is SIGKILLed; the other two elect a new one.
            var (leaderPid, leaderIp) = Leader(lab.Name);
            Assert.Equal(0, Sh.Run("kill", "-9", leaderPid.ToString(System.Globalization.CultureInfo.InvariantCulture)).Exit);
            Assert.Equal(2, lab.Pods("x").Count);
            lab.Apply(ThirdPod);
            lab.WaitReady("x", 3, seconds: 30);
            lab.WaitRoutes();

            // The supervisor restarts the killed member on its data dir; it rejoins the cluster.
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (!EtcdProcs(lab.Name).Any(p => p.Pid != leaderPid && p.Cmd.Contains($"http://{leaderIp}:2379", StringComparison.Ordinal)))
            {
                Assert.True(DateTime.UtcNow < deadline, "the killed etcd member was not restarted");
                Thread.Sleep(100);
            }

            lab.Must("lab", "down", "--name", lab.Name);
            Assert.Empty(lab.Leftovers());
        }
        Assert.Empty(EtcdProcs(name));
    }

    /// <summary>
    /// Every member frozen (SIGSTOP: the supervisor sees them alive and restarts nothing) for 30 s:
    /// running pods keep talking — the data path does not depend on the store —, the agents and
    /// kubelets ride out the outage and work again when it ends, and no subnet lease is lost or duplicated.
    /// </summary>
    [LabFact]
    public void All_of_etcd_down_for_30_seconds_interrupts_no_pod_and_loses_no_lease()
    {
        using var lab = new LabDriver();
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "2", "--store", "etcd");
        lab.Apply("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: e}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: a, namespace: e}
            spec: {nodeName: node-1, containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: b, namespace: e}
            spec: {nodeName: node-2, containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}
            """);
        var pods = lab.WaitReady("e", 2);
        lab.WaitRoutes();
        var ip = pods.ToDictionary(p => p!["metadata"]!["name"]!.GetValue<string>(), p => p!["status"]!["podIP"]!.GetValue<string>());
        // The pods' namespaces, found now: during the outage nothing can be looked up in the store.
        var netns = Sh.Must("ip", "netns", "list").Split('\n').Select(l => l.Split(' ')[0]).ToList();
        string NetnsOf(string pod) => netns.First(n => n.StartsWith($"trl-{lab.Name}-p-e-{pod}-", StringComparison.Ordinal));
        var leasesBefore = Leases(lab.Name);
        Assert.Equal(2, leasesBefore.Count);

        var members = EtcdProcs(lab.Name).Select(p => p.Pid).ToList();
        Assert.Equal(3, members.Count);
        foreach (var pid in members)
        {
            Sh.Must("kill", "-STOP", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        try
        {
            var until = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < until)
            {
                foreach (var (from, to) in new[] { ("a", "b"), ("b", "a") })
                {
                    var (exit, o, err) = Sh.Run("ip", "netns", "exec", NetnsOf(from), LabDriver.Trellis, "connect", $"{ip[to]}:80", "--timeout", "1s");
                    Assert.True(exit == 0 && o.Trim() == to, $"{from} -> {to} during the etcd outage: exit {exit} {o}{err}");
                }
                Thread.Sleep(2000);
            }
        }
        finally
        {
            foreach (var pid in members)
            {
                Sh.Run("kill", "-CONT", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        // Back: the control plane works again (a new pod starts and connects across nodes) and the leases are the same two.
        lab.Apply("apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: e}\nspec: {nodeName: node-2, containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}\n");
        lab.WaitReady("e", 3, seconds: 60);
        lab.WaitRoutes();
        Assert.Equal(leasesBefore, Leases(lab.Name));
    }

    /// <summary>The subnet lease keys in etcd, asked with etcdctl inside the underlay.</summary>
    private static List<string> Leases(string lab)
    {
        var (exit, o, e) = Sh.Run("ip", "netns", "exec", $"trl-{lab}-ul", "etcdctl", "--endpoints", "172.30.0.2:2379,172.30.0.3:2379,172.30.0.4:2379",
            "get", "--prefix", "/trellis/leases/subnets/", "--keys-only");
        Assert.True(exit == 0, e);
        return o.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Running etcd processes whose command line mentions the lab (its data dirs do).</summary>
    private static List<(int Pid, string Cmd)> EtcdProcs(string lab)
    {
        var found = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }
            try
            {
                string cmd = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                if (cmd.StartsWith("etcd ", StringComparison.Ordinal) && cmd.Contains($"/{lab}/", StringComparison.Ordinal) && stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z')
                {
                    found.Add((pid, cmd));
                }
            }
            catch (IOException)
            {
            }
        }
        return found;
    }

    /// <summary>The leader's PID and address, asked of the members with etcdctl inside the underlay.</summary>
    private static (int Pid, string Ip) Leader(string lab)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var (exit, o, e) = Sh.Run("ip", "netns", "exec", $"trl-{lab}-ul", "etcdctl", "--endpoints", "172.30.0.2:2379,172.30.0.3:2379,172.30.0.4:2379", "endpoint", "status", "-w", "json");
            if (exit == 0)
            {
                foreach (var s in JsonNode.Parse(o)!.AsArray())
                {
                    if (s!["Status"]!["header"]!["member_id"]!.GetValue<ulong>() == s["Status"]!["leader"]!.GetValue<ulong>())
                    {
                        string ip = s["Endpoint"]!.GetValue<string>().Split(':')[0];
                        return (EtcdProcs(lab).Single(p => p.Cmd.Contains($"http://{ip}:2379", StringComparison.Ordinal)).Pid, ip);
                    }
                }
            }
            Assert.True(DateTime.UtcNow < deadline, $"no etcd leader: {e}{o}");
            Thread.Sleep(200);
        }
    }
}
