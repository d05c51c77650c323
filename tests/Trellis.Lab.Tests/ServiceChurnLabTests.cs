using System.Diagnostics;
using Trellis.Cni.Tests.Infrastructure;
using static Trellis.Lab.Tests.ServiceLab;

namespace Trellis.Lab.Tests;

/// <summary>
/// Services while things change: endpoints deleted and recreated under load, UDP clients that keep their
/// source port moved off a deleted endpoint at once (conntrack cleanup), an agent restart that interrupts
/// nothing, and the proxy options masqueradeAll / nodePortAddresses.
/// </summary>
[Collection("lab")]
public sealed class ServiceChurnLabTests
{
    private const string Ns = "churn";

    private static void Up(LabDriver lab, string? extraConfig = null, int nodes = 2)
    {
        string config = Path.Combine(Path.GetTempPath(), $"{lab.Name}.yaml");
        File.WriteAllText(config, $"""
            apiVersion: trellis.dev/v1alpha1
            kind: Lab
            nodes: {nodes}
            {extraConfig}
            """);
        try
        {
            lab.Must("lab", "up", "--name", lab.Name, "--config", config);
        }
        finally
        {
            File.Delete(config);
        }
    }

    private static string Workload(string[] webNodes) => $"""
        apiVersion: v1
        kind: Namespace
        metadata: {"{"}name: {Ns}{"}"}
        ---
        {string.Concat(webNodes.Select((n, i) => WebPod(Ns, $"web-{i + 1}", n, 8080)))}
        {ClientPod(Ns, "client", "node-1")}
        """ + "\n" + """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: churn}
        spec: {type: NodePort, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP, targetPort: dns}]}
        """;

    [LabFact]
    public void Under_endpoint_churn_no_connection_reaches_a_deleted_pod_once_its_removal_has_synced_and_UDP_moves_at_once()
    {
        using var lab = new LabDriver("c");
        Up(lab);
        lab.Apply(Workload(["node-1", "node-2"]));
        lab.WaitReady(Ns, 3);
        string ip = ClusterIp(lab, Ns, "web");
        Eventually(lab, "churn/client", $"{ip}:80", s => s.Exit == 0);

        // UDP "resolver": one source port, kept, so its conntrack entry (and its DNAT) stays.
        var pinned = Eventually(lab, "churn/client", $"{ip}:53", x => x.Exit == 0, "udp");
        pinned = Connect(lab, "churn/client", $"{ip}:53", "udp", sourcePort: 40053);
        Assert.Equal(0, pinned.Exit);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(pinned.Name, Connect(lab, "churn/client", $"{ip}:53", "udp", sourcePort: 40053).Name); // same entry, same endpoint
        }
        string victim = pinned.Name!;
        string survivor = victim == "web-1" ? "web-2" : "web-1";
        string victimIp = PodIp(lab, Ns, victim);

        // …then delete that endpoint while a client keeps connecting over TCP.
        var answers = new List<(DateTime Start, Seen Seen)>();
        using var stop = new CancellationTokenSource();
        var load = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var start = DateTime.UtcNow;
                var seen = Connect(lab, "churn/client", $"{ip}:80");
                lock (answers)
                {
                    answers.Add((start, seen));
                }
            }
        });
        Thread.Sleep(1000);
        var del = lab.RunWithStdin($"apiVersion: v1\nkind: Pod\nmetadata: {{name: {victim}, namespace: {Ns}}}\n", "delete", "-f", "-", "--grace-period", "0", "--force");
        Assert.True(del.Exit == 0, del.Err);
        // The removal has synced on the client's node when the victim's address has left its proxy table.
        WaitTable(lab, "node-1", t => !t.Contains(victimIp, StringComparison.Ordinal), $"dropped {victimIp}");
        var synced = DateTime.UtcNow;

        // The UDP client with the same source port now reaches the survivor: its stale entry was deleted.
        // (The agent deletes the stale entries right after the nft transaction that removed the endpoint, so
        // allow that sync a moment to finish; without the cleanup the entry would live for the UDP stream
        // timeout, 120 s, as long as the client keeps sending.)
        var movedBy = DateTime.UtcNow.AddSeconds(3);
        Seen moved;
        while (!((moved = Connect(lab, "churn/client", $"{ip}:53", "udp", timeout: "300ms", sourcePort: 40053)) is { Exit: 0 } m && m.Name == survivor))
        {
            Assert.True(DateTime.UtcNow < movedBy, $"UDP after the endpoint went: {moved}");
        }

        // Keep the load running on the survivor alone for a while, then recreate the victim (same name,
        // new pod) and let the load see it come back.
        Thread.Sleep(1500);
        var recreated = DateTime.UtcNow;
        lab.Apply(WebPod(Ns, victim, victim == "web-1" ? "node-1" : "node-2", 8080));
        lab.WaitReady(Ns, 3);
        Eventually(lab, "churn/client", $"{ip}:80", s => s.Name == victim, seconds: 20);
        Thread.Sleep(500);
        stop.Cancel();
        load.Wait();

        lock (answers)
        {
            // Between the sync of the removal and the recreation, nothing may reach the deleted pod, and
            // every connection is answered (by the survivor).
            var window = answers.Where(a => a.Start > synced && a.Start < recreated).ToList();
            Assert.True(window.Count >= 3, $"only {window.Count} connections between the sync and the recreation");
            Assert.All(window, a => Assert.True(a.Seen.Exit == 0 && a.Seen.Name == survivor, $"after the sync: {a.Seen}"));
            Assert.Contains(answers, a => a.Start < synced && a.Seen.Name == victim);
        }
    }

    [LabFact]
    public void A_terminating_endpoint_serves_only_while_no_ready_endpoint_exists()
    {
        using var lab = new LabDriver("c");
        Up(lab);
        // "old" ignores SIGTERM (as a server draining its connections would), so it stays serving through its grace period.
        string oldPod = $$$"""
            apiVersion: v1
            kind: Namespace
            metadata: {name: churn}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: old, namespace: churn, labels: {app: web}}
            spec:
              nodeName: node-2
              terminationGracePeriodSeconds: 30
              containers:
              - name: c
                image: agnhost
                command: [sh, -c, "trap '' TERM; exec {{{LabDriver.Trellis}}} serve-hostname --name old --port 8080 --report-client"]
                ports: [{name: http, containerPort: 8080}]
            ---
            """ + "\n" + ClientPod(Ns, "client", "node-1") + """
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: churn}
            spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
            """;
        lab.Apply(oldPod);
        lab.WaitReady(Ns, 2);
        string ip = ClusterIp(lab, Ns, "web");
        Eventually(lab, "churn/client", $"{ip}:80", s => s.Name == "old");
        var del = lab.RunWithStdin("apiVersion: v1\nkind: Pod\nmetadata: {name: old, namespace: churn}\n", "delete", "-f", "-", "--wait=false");
        Assert.True(del.Exit == 0, del.Err);
        // Terminating but serving, and no ready endpoint left: kube-proxy falls back to it.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!lab.Must("get", "endpointslices", "-n", Ns, "-o", "json").Contains("\"terminating\": true", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the slice never showed the endpoint terminating");
            Thread.Sleep(100);
        }
        Thread.Sleep(500);
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal("old", Connect(lab, "churn/client", $"{ip}:80").Name);
        }
        // Once a ready endpoint exists, the terminating one gets no new connection.
        lab.Apply(WebPod(Ns, "new", "node-1", 8080));
        Eventually(lab, "churn/client", $"{ip}:80", s => s.Name == "new", seconds: 20);
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal("new", Connect(lab, "churn/client", $"{ip}:80").Name);
        }
    }

    [LabFact]
    public void An_agent_restart_interrupts_no_Service_traffic()
    {
        using var lab = new LabDriver("c");
        Up(lab);
        lab.Apply(Workload(["node-2"]));
        lab.WaitReady(Ns, 2);
        string ip = ClusterIp(lab, Ns, "web");
        Eventually(lab, "churn/client", $"{ip}:80", s => s.Exit == 0);
        var results = new List<Seen>();
        using var stop = new CancellationTokenSource();
        var load = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var s = Connect(lab, "churn/client", $"{ip}:80");
                lock (results)
                {
                    results.Add(s);
                }
            }
        });
        Thread.Sleep(800);
        int old = DaemonPid(lab, "trellisd", "node-1");
        Kill(old);
        // The supervisor restarts it; its first sync replaces the table's contents atomically.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DaemonPid(lab, "trellisd", "node-1") == old)
        {
            Assert.True(DateTime.UtcNow < deadline, "trellisd was not restarted");
            Thread.Sleep(200);
        }
        string log = Directory.GetFiles($"/var/log/trellis/{lab.Name}", "*trellisd*node-1*.log").Single();
        while (File.ReadAllText(log).Split('\n').Count(l => l.Contains("full sync (initial list)", StringComparison.Ordinal)) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the restarted trellisd never synced:\n" + File.ReadAllText(log));
            Thread.Sleep(200);
        }
        Thread.Sleep(1500);
        stop.Cancel();
        load.Wait();
        lock (results)
        {
            Assert.True(results.Count >= 10, $"only {results.Count} connections");
            Assert.All(results, s => Assert.True(s.Exit == 0 && s.Name == "web-1", s.ToString()));
        }
    }

    [LabFact]
    public void MasqueradeAll_and_nodePortAddresses_change_what_kube_proxy_would_change()
    {
        using var lab = new LabDriver("c");
        Up(lab, """
            proxy:
              masqueradeAll: true
              nodePortAddresses: [10.244.0.0/16]
            """);
        lab.Apply(Workload(["node-2"]));
        lab.WaitReady(Ns, 2);
        string ip = ClusterIp(lab, Ns, "web");
        // masqueradeAll: even a pod's connection to a ClusterIP is masqueraded.
        var s = Eventually(lab, "churn/client", $"{ip}:80", x => x.Exit == 0);
        Assert.NotEqual(PodIp(lab, Ns, "client"), s.ClientIp);
        int nodePort = Service(lab, Ns, "web")["spec"]!["ports"]![0]!["nodePort"]!.GetValue<int>();
        // nodePortAddresses 10.244.0.0/16: the NodePort is on the node's pod-network addresses, not on its primary one.
        string client = PodIp(lab, Ns, "client");
        string gateway = client[..client.LastIndexOf('.')] + ".1";
        Eventually(lab, "churn/client", $"{gateway}:{nodePort}", x => x.Exit == 0);
        Assert.NotEqual(0, Connect(lab, "outside", $"172.30.0.11:{nodePort}").Exit);
    }
}
