using System.Text.Json.Nodes;

namespace Trellis.Lab.Tests;

[CollectionDefinition("lab", DisableParallelization = true)]
public sealed class LabTestGroup;

[Collection("lab")]
public sealed class LabEndToEndTests
{
    private const string Manifest = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: e2e}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: a1, namespace: e2e, labels: {side: a}}
        spec:
          nodeName: node-1
          containers:
          - name: web
            image: registry.k8s.io/e2e-test-images/agnhost:2.52
            ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}, {containerPort: 81, protocol: SCTP}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: a2, namespace: e2e, labels: {side: a}}
        spec:
          nodeName: node-1
          containers:
          - name: web
            image: agnhost
            ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: a3, namespace: e2e, labels: {side: a}, annotations: {trellis.dev/ip: 10.244.1.50}}
        spec:
          nodeName: node-1
          containers:
          - name: web
            image: agnhost
            ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: b1, namespace: e2e, labels: {side: b}}
        spec:
          nodeName: node-2
          containers:
          - name: web
            image: agnhost
            ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: b2, namespace: e2e, labels: {side: b}}
        spec:
          nodeName: node-2
          containers:
          - name: web
            image: agnhost
            ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]
        """;

    [LabFact]
    public void Up_apply_connect_delete_and_down_leaves_nothing()
    {
        IReadOnlyList<int> pids;
        var lab = new LabDriver();
        try
        {
            lab.Must("lab", "up", "--name", lab.Name, "--nodes", "2");
            var status = JsonNode.Parse(lab.Must("lab", "status", "--name", lab.Name, "-o", "json"))!;
            Assert.Equal(lab.Name, status["name"]!.GetValue<string>());
            Assert.Equal(2, status["nodes"]!.AsArray().Count);
            Assert.All(status["nodes"]!.AsArray(), n => Assert.True(n!["ready"]!.GetValue<bool>()));
            Assert.Equal("172.30.0.1", status["outside"]!["ip"]!.GetValue<string>());

            // Idempotent: a second `lab up` finds everything in place and changes nothing.
            var supervisorBefore = JsonNode.Parse(File.ReadAllText($"/run/trellis/{lab.Name}/lab.json"))!["supervisor"]!["pid"]!.GetValue<int>();
            Assert.Contains("already running", lab.Must("lab", "up", "--name", lab.Name, "--nodes", "2"), StringComparison.Ordinal);
            Assert.Equal(supervisorBefore, JsonNode.Parse(File.ReadAllText($"/run/trellis/{lab.Name}/lab.json"))!["supervisor"]!["pid"]!.GetValue<int>());

            // Store discovery: --store and $TRELLIS_STORE find it without naming the lab.
            string url = status["store"]!.GetValue<string>();
            var (code, nsOut, nsErr) = Cni.Tests.Infrastructure.Sh.Run(LabDriver.Trellis, "get", "ns", "--store", url, "-o", "json");
            Assert.True(code == 0, nsErr);
            Assert.Contains("kube-system", nsOut, StringComparison.Ordinal);
            var (missing, _, missingErr) = Cni.Tests.Infrastructure.Sh.Run(LabDriver.Trellis, "get", "ns", "--lab", "nosuchlab");
            Assert.Equal(2, missing);
            Assert.Contains("no lab named 'nosuchlab'", missingErr, StringComparison.Ordinal);

            lab.Apply(Manifest);
            var pods = lab.WaitReady("e2e", 5);
            lab.WaitRoutes();
            var ips = pods.ToDictionary(p => p!["metadata"]!["name"]!.GetValue<string>(), p => p!["status"]!["podIP"]!.GetValue<string>());
            Assert.Equal("10.244.1.50", ips["a3"]);
            Assert.StartsWith("10.244.1.", ips["a1"], StringComparison.Ordinal);
            Assert.StartsWith("10.244.2.", ips["b1"], StringComparison.Ordinal);
            Assert.Equal(5, ips.Values.Distinct().Count());

            foreach (var proto in new[] { "tcp", "udp" })
            {
                var probe = JsonNode.Parse(lab.Must("probe", "-n", "e2e", "--protocol", proto, "-o", "json"))!;
                var results = probe["results"]!.AsArray();
                Assert.Equal(20, results.Count); // every ordered pair of 5 pods is reported
                // Same node through the bridge, across nodes through trellisd's VXLAN routes: every pair.
                Assert.All(results, r => Assert.True(r!["connected"]!.GetValue<bool>(), $"{proto} {r!["from"]} -> {r["to"]}"));
            }

            string resolv = lab.Must("exec", "e2e/a1", "--", "cat", "/etc/resolv.conf");
            Assert.Contains("search e2e.svc.cluster.local svc.cluster.local cluster.local", resolv, StringComparison.Ordinal);
            Assert.Contains("nameserver 10.96.0.10", resolv, StringComparison.Ordinal);
            Assert.Contains("options ndots:5", resolv, StringComparison.Ordinal);
            Assert.Contains("inet 10.244.1.50/24", lab.Must("exec", "e2e/a3", "--", "ip", "-4", "addr", "show", "eth0"), StringComparison.Ordinal);

            var sideB = JsonNode.Parse(lab.Must("get", "pods", "-n", "e2e", "-l", "side=b", "-o", "json"))!["items"]!.AsArray();
            Assert.Equal(["b1", "b2"], sideB.Select(p => p!["metadata"]!["name"]!.GetValue<string>()).Order());

            // Labels of a running pod may change (its spec may not); the pod keeps running.
            string relabel = Manifest.Split("---")[5].Replace("labels: {side: b}", "labels: {side: b, tier: web}", StringComparison.Ordinal);
            Assert.Contains("pod/b2 configured", lab.Apply(relabel), StringComparison.Ordinal);
            Assert.Equal("b2", JsonNode.Parse(lab.Must("get", "po", "-n", "e2e", "-l", "tier=web", "-o", "json"))!["items"]![0]!["metadata"]!["name"]!.GetValue<string>());
            Assert.Equal(ips["b2"], JsonNode.Parse(lab.Must("get", "po", "b2", "-n", "e2e", "-o", "json"))!["status"]!["podIP"]!.GetValue<string>());

            // Deleting a pod frees its address on its node.
            string ipamDir = $"/var/lib/trellis/{lab.Name}/ipam/node-1/trellis";
            Assert.True(File.Exists(Path.Combine(ipamDir, ips["a2"])));
            lab.RunWithStdin("apiVersion: v1\nkind: Pod\nmetadata: {name: a2, namespace: e2e}\n", "delete", "-f", "-");
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (File.Exists(Path.Combine(ipamDir, ips["a2"])) && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(100);
            }
            Assert.False(File.Exists(Path.Combine(ipamDir, ips["a2"])), "a2's address is still reserved");
            Assert.Equal(4, lab.Pods("e2e").Count);
            pids = lab.RecordedPids();
            Assert.True(pids.Count >= 1 + 3 + 4, $"expected supervisor, 3 daemons and 4 pod processes among {pids.Count} recorded PIDs");
        }
        finally
        {
            lab.Dispose();
        }
        Assert.Empty(lab.Leftovers());
        Assert.All(pids, pid => Assert.False(Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal), $"process {pid} survived lab down"));
    }

    [LabFact]
    public void A_killed_kubelet_restarts_and_readopts_pods_that_kept_serving()
    {
        using var lab = new LabDriver();
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "1");
        lab.Apply("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: k}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: p1, namespace: k}
            spec: {containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: p2, namespace: k}
            spec: {containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}
            """);
        lab.WaitReady("k", 2);
        var before = PodPids(lab);
        int kubelet = KubeletPid(lab);

        Assert.Equal(0, Cni.Tests.Infrastructure.Sh.Run("kill", "-9", kubelet.ToString(System.Globalization.CultureInfo.InvariantCulture)).Exit);
        // The pods do not depend on their kubelet: they keep serving while it is gone.
        var probe = JsonNode.Parse(lab.Must("probe", "-n", "k", "-o", "json"))!["results"]!.AsArray();
        Assert.All(probe, r => Assert.True(r!["connected"]!.GetValue<bool>()));

        var deadline = DateTime.UtcNow.AddSeconds(20);
        int restarted;
        while ((restarted = KubeletPid(lab)) == kubelet && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }
        Assert.NotEqual(kubelet, restarted);
        Thread.Sleep(500);
        Assert.Equal(before, PodPids(lab)); // re-adopted, not restarted
        Assert.Equal(2, lab.WaitReady("k", 2).Count);

        // And it works: a new pod starts, a deleted one goes.
        lab.Apply("apiVersion: v1\nkind: Pod\nmetadata: {name: p3, namespace: k}\nspec: {containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}\n");
        lab.WaitReady("k", 3);
        lab.RunWithStdin("apiVersion: v1\nkind: Pod\nmetadata: {name: p1, namespace: k}\n", "delete", "-f", "-");
        deadline = DateTime.UtcNow.AddSeconds(20);
        while (PodPids(lab).Count != 2 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }
        Assert.Equal(2, PodPids(lab).Count);
    }

    [LabFact]
    public void A_pod_whose_network_cannot_be_set_up_stays_pending_with_the_reason_and_leaks_nothing()
    {
        using var lab = new LabDriver();
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "1");
        string ipam = $"/var/lib/trellis/{lab.Name}/ipam/node-1/trellis";
        // What the lab's own pods (cluster DNS) hold: the failed pod must add nothing to it.
        HashSet<string> PodNetns() => Cni.Tests.Infrastructure.Sh.Must("ip", "netns", "list").Split('\n').Where(l => l.StartsWith($"trl-{lab.Name}-p-", StringComparison.Ordinal)).Select(l => l.Split(' ')[0]).ToHashSet();
        HashSet<string> Reserved() => Directory.Exists(ipam) ? Directory.EnumerateFiles(ipam).Where(f => System.Net.IPAddress.TryParse(Path.GetFileName(f), out _)).ToHashSet() : [];
        var netnsBefore = PodNetns();
        var reservedBefore = Reserved();
        // An address outside the node's range: CNI ADD fails, the kubelet undoes it and retries with backoff.
        lab.Apply("apiVersion: v1\nkind: Pod\nmetadata: {name: stuck, annotations: {trellis.dev/ip: 10.99.0.5}}\nspec: {containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}\n");
        JsonNode? ready = null;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            var pod = JsonNode.Parse(lab.Must("get", "po", "stuck", "-o", "json"))!;
            ready = pod["status"]?["conditions"]?.AsArray().FirstOrDefault(c => c!["type"]!.GetValue<string>() == "Ready");
            if (ready?["message"] is not null)
            {
                Assert.Equal("Pending", pod["status"]!["phase"]!.GetValue<string>());
                break;
            }
            Thread.Sleep(100);
        }
        Assert.NotNull(ready?["message"]);
        Assert.Contains("10.99.0.5", ready!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("False", ready["status"]!.GetValue<string>());
        // Undone between attempts: no pod namespace, no reserved address (polled: a retry may be mid-flight).
        bool Clean() => PodNetns().SetEquals(netnsBefore) && Reserved().SetEquals(reservedBefore);
        deadline = DateTime.UtcNow.AddSeconds(5);
        while (!Clean() && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(50);
        }
        Assert.True(Clean(), "a failed pod left its namespace or address behind");
    }

    private static int KubeletPid(LabDriver lab)
    {
        var procs = JsonNode.Parse(File.ReadAllText($"/run/trellis/{lab.Name}/procs.json"))!["procs"]!.AsArray();
        return procs.First(p => p!["role"]!.GetValue<string>() == "kubelet")!["pid"]!.GetValue<int>();
    }

    private static SortedSet<int> PodPids(LabDriver lab)
    {
        var set = new SortedSet<int>();
        foreach (var f in Directory.EnumerateFiles($"/run/trellis/{lab.Name}/kubelet", "*.json", SearchOption.AllDirectories))
        {
            if (JsonNode.Parse(File.ReadAllText(f))!["namespace"]?.GetValue<string>() == "kube-system")
            {
                continue; // the lab's cluster DNS pods
            }
            foreach (var c in JsonNode.Parse(File.ReadAllText(f))!["containers"]!.AsArray())
            {
                set.Add(c!["pid"]!.GetValue<int>());
            }
        }
        return set;
    }
}
