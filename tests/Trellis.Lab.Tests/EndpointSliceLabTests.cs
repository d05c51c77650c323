using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;
using Trellis.Store;

namespace Trellis.Lab.Tests;

/// <summary>One two-node lab for the controller process's EndpointSlice and LoadBalancer work; `lab down` must leave nothing.</summary>
public sealed class EndpointSliceLab : IDisposable
{
    public EndpointSliceLab()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }
        try
        {
            Lab.Must("lab", "up", "--name", Lab.Name, "--nodes", "2");
            var status = JsonNode.Parse(Lab.Must("lab", "status", "-o", "json"))!;
            StoreUrl = status["store"]!.GetValue<string>();
            UnderlayNetns = status["outside"]!["netns"]!.GetValue<string>();
        }
        catch
        {
            Lab.Dispose(); // xunit does not dispose a fixture whose constructor threw
            throw;
        }
    }

    public LabDriver Lab { get; } = new("e");

    public string StoreUrl { get; } = "";

    public string UnderlayNetns { get; } = "";

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

[Collection("lab")]
public sealed class EndpointSliceLabTests(EndpointSliceLab fixture) : IClassFixture<EndpointSliceLab>
{
    private LabDriver Lab => fixture.Lab;

    private JsonArray Slices(string ns) => (JsonArray)JsonNode.Parse(Lab.Must("get", "endpointslices", "-n", ns, "-o", "json"))!["items"]!;

    private static IEnumerable<JsonNode> Endpoints(JsonArray slices, string service) =>
        slices.Where(s => s!["metadata"]!["labels"]?["kubernetes.io/service-name"]?.GetValue<string>() == service)
            .SelectMany(s => s!["endpoints"]?.AsArray() ?? [])!;

    private static T WaitFor<T>(Func<T?> probe, int seconds, string what)
        where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            if (probe() is { } v)
            {
                return v;
            }
            Assert.True(DateTime.UtcNow < deadline, $"timed out after {seconds}s waiting for {what}");
            Thread.Sleep(100);
        }
    }

    private static string Pod(string name, string ns, string node, string labels = "app: web") =>
        $$"""

        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: {{name}}, namespace: {{ns}}, labels: { {{labels}} } }
        spec:
          nodeName: {{node}}
          containers:
          - {name: c, image: agnhost, ports: [{name: http, containerPort: 80, protocol: TCP}]}

        """;

    [LabFact]
    public async Task Slices_follow_pod_readiness_and_deletion_and_go_with_their_service()
    {
        // Watch pods and slices from the test itself, so the controller's delay is measured on one clock
        // (polling every millisecond, so the test's own watch adds no 25 ms granularity of its own).
        await using var store = ClusterStore.Open(fixture.StoreUrl, new ClusterStoreOptions { WatchPollInterval = TimeSpan.FromMilliseconds(1) });
        long from = await store.CurrentRevisionAsync();
        using var stopWatch = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var readyAt = new Dictionary<string, long>();
        var inSliceAt = new Dictionary<string, long>();
        var clock = Stopwatch.StartNew();
        var live = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in store.WatchAsync("/registry/", from, stopWatch.Token))
                {
                    if (e.Type != WatchEventType.Put)
                    {
                        continue;
                    }
                    var o = JsonNode.Parse(e.Item.Value)!;
                    long now = clock.ElapsedTicks;
                    if (e.Item.Key == "/registry/namespaces/eps")
                    {
                        live.TrySetResult();
                    }
                    lock (readyAt)
                    {
                        if (e.Item.Key.StartsWith("/registry/pods/eps/", StringComparison.Ordinal)
                            && o["status"]?["conditions"] is JsonArray c && c.Any(x => x!["type"]!.GetValue<string>() == "Ready" && x["status"]!.GetValue<string>() == "True"))
                        {
                            readyAt.TryAdd(o["metadata"]!["name"]!.GetValue<string>(), now);
                        }
                        if (e.Item.Key.StartsWith("/registry/endpointslices/eps/", StringComparison.Ordinal))
                        {
                            foreach (var ep in o["endpoints"]?.AsArray() ?? [])
                            {
                                if (ep!["conditions"]?["ready"]?.GetValue<bool>() == true)
                                {
                                    inSliceAt.TryAdd(ep["targetRef"]!["name"]!.GetValue<string>(), now);
                                }
                            }
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        });

        // The namespace first: once the watcher has seen it, it is live (not replaying a burst of history).
        Lab.Apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: eps}\n");
        await live.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Lab.Apply("""
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: eps}
            spec:
              selector: {app: web}
              ports: [{name: http, port: 8080, targetPort: http, protocol: TCP}]
            """ + Pod("w1", "eps", "node-1") + Pod("w2", "eps", "node-2"));
        Lab.WaitReady("eps", 2);
        var eps = WaitFor(() => Endpoints(Slices("eps"), "web").ToList() is { Count: 2 } l && l.All(e => e!["conditions"]!["ready"]!.GetValue<bool>()) ? l : null, 10, "two ready endpoints");
        var slice = Slices("eps").Single(s => s!["metadata"]!["labels"]!["kubernetes.io/service-name"]!.GetValue<string>() == "web")!;
        Assert.Equal("endpointslice-controller.k8s.io", slice["metadata"]!["labels"]!["endpointslice.kubernetes.io/managed-by"]!.GetValue<string>());
        Assert.StartsWith("web-", slice["metadata"]!["name"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("Service", slice["metadata"]!["ownerReferences"]![0]!["kind"]!.GetValue<string>());
        Assert.Equal(80, slice["ports"]![0]!["port"]!.GetValue<int>()); // the named targetPort, resolved on the pod
        Assert.Equal(["node-1", "node-2"], eps.Select(e => e["nodeName"]!.GetValue<string>()).Order());
        await Task.Delay(300);
        await stopWatch.CancelAsync();
        await watcher;
        var delays = readyAt.Where(r => inSliceAt.ContainsKey(r.Key)).Select(r => (inSliceAt[r.Key] - r.Value) * 1000.0 / Stopwatch.Frequency).ToList();
        Assert.Equal(2, delays.Count);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"pod Ready -> endpoint ready in its slice: {string.Join(", ", delays.Select(d => d.ToString("0.0", CultureInfo.InvariantCulture)))} ms"));
        Assert.All(delays, d => Assert.True(d < 1000, $"{d} ms from Ready to the slice"));

        // A pod going away leaves the slice (the slice keeps its name).
        string name = slice["metadata"]!["name"]!.GetValue<string>();
        Lab.RunWithStdin("apiVersion: v1\nkind: Pod\nmetadata: {name: w2, namespace: eps}\n", "delete", "-f", "-");
        WaitFor(() => Endpoints(Slices("eps"), "web").ToList() is { Count: 1 } l && l[0]!["targetRef"]!["name"]!.GetValue<string>() == "w1" ? l : null, 40, "w2 to leave the slice");
        Assert.Equal(name, Slices("eps").Single()!["metadata"]!["name"]!.GetValue<string>());

        // A slice deleted by hand comes back (drift repaired from the watch, not only at the resync).
        Lab.RunWithStdin($"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}, namespace: eps}}\n", "delete", "-f", "-");
        WaitFor(() => Endpoints(Slices("eps"), "web").Count() == 1 ? "" : null, 10, "the slice to be recreated");

        // The Service goes: its managed slices go with it.
        Lab.RunWithStdin("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: eps}\n", "delete", "-f", "-");
        WaitFor(() => Slices("eps").Count == 0 ? "" : null, 10, "the slices of the deleted Service to go");
    }

    [LabFact]
    public void A_user_slice_of_a_selector_less_service_is_left_alone()
    {
        Lab.Apply("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: manual}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: ext, namespace: manual}
            spec:
              ports: [{port: 80}]
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: ext-1
              namespace: manual
              labels: {kubernetes.io/service-name: ext}
            addressType: IPv4
            endpoints: [{addresses: [172.30.0.1]}]
            ports: [{port: 80, protocol: TCP}]
            """);
        string before = Lab.Must("get", "endpointslices", "-n", "manual", "-o", "json");
        // Touch the Service (an event the controller reconciles) and give it time to act.
        Lab.Apply("apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: manual, labels: {touched: \"yes\"}}\nspec:\n  ports: [{port: 80}]\n");
        Thread.Sleep(1500);
        Assert.Equal(before, Lab.Must("get", "endpointslices", "-n", "manual", "-o", "json"));
        var items = Slices("manual");
        Assert.Equal("ext-1", Assert.Single(items)!["metadata"]!["name"]!.GetValue<string>());
    }

    [LabFact]
    public async Task A_terminating_pod_stays_serving_until_its_grace_period_ends_then_is_gone_with_its_veth_and_ip()
    {
        Lab.Apply("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: grace}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: slow, namespace: grace}
            spec:
              selector: {app: slow}
              ports: [{port: 80}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: stubborn, namespace: grace, labels: {app: slow}}
            spec:
              nodeName: node-1
              terminationGracePeriodSeconds: 30
              containers:
              - name: c
                image: busybox
                command: ["sh", "-c", "trap '' TERM; sleep 1000"]
            """);
        var pod = Lab.WaitReady("grace", 1).Single()!;
        string ip = pod["status"]!["podIP"]!.GetValue<string>();
        string uid = pod["metadata"]!["uid"]!.GetValue<string>();
        WaitFor(() => Endpoints(Slices("grace"), "slow").Any(e => e["conditions"]!["ready"]!.GetValue<bool>()) ? "" : null, 10, "the pod's endpoint");
        string nodeNs = $"trl-{Lab.Name}-node-1";
        int vethsBefore = Veths(nodeNs);

        // What the API server does on a graceful delete (the lab's admission will do the same).
        const int Grace = 4;
        await using (var store = ClusterStore.Open(fixture.StoreUrl))
        {
            await MarkDeletedAsync(store, "/registry/pods/grace/stubborn", uid, Grace);
        }
        var marked = Stopwatch.StartNew();
        var ep = WaitFor(() => Endpoints(Slices("grace"), "slow").FirstOrDefault(e => e["conditions"]!["terminating"]!.GetValue<bool>()), 5, "terminating=true");
        Assert.False(ep["conditions"]!["ready"]!.GetValue<bool>());
        Assert.True(ep["conditions"]!["serving"]!.GetValue<bool>()); // the process ignores SIGTERM: still up

        // Until the grace period ends the pod keeps its endpoint (serving, terminating) and its network.
        while (marked.Elapsed < TimeSpan.FromSeconds(Grace - 1.5))
        {
            var now = Endpoints(Slices("grace"), "slow").ToList();
            Assert.True(now.Count == 1 && now[0]["conditions"]!["serving"]!.GetValue<bool>() && now[0]["conditions"]!["terminating"]!.GetValue<bool>(),
                $"at {marked.Elapsed.TotalSeconds:0.0}s: {string.Join(",", now.Select(n => n.ToJsonString()))}");
            Thread.Sleep(250);
        }
        Assert.Equal(vethsBefore, Veths(nodeNs));

        // Then SIGKILL, CNI DEL, and the Pod object is removed by the kubelet.
        WaitFor(() => Lab.Pods("grace").Count == 0 ? "" : null, Grace + 10, "the pod object to be deleted by the kubelet");
        Assert.True(marked.Elapsed > TimeSpan.FromSeconds(Grace - 1), $"the pod went after {marked.Elapsed.TotalSeconds:0.0}s, before its grace period of {Grace}s");
        WaitFor(() => !Endpoints(Slices("grace"), "slow").Any() ? "" : null, 5, "the endpoint to go");
        Assert.Equal(vethsBefore - 1, Veths(nodeNs));
        Assert.DoesNotContain(Directory.EnumerateFiles($"/var/lib/trellis/{Lab.Name}", "*", SearchOption.AllDirectories), f => Path.GetFileName(f) == ip);
        Assert.DoesNotContain(Sh.Must("ip", "netns", "list").Split('\n'), l => l.Contains(uid[..8], StringComparison.Ordinal) && l.Contains("grace", StringComparison.Ordinal));
        // Its processes, the shell and the sleep it started, are gone (the SIGKILL went to the process group).
        Assert.DoesNotContain(Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)), d =>
        {
            try
            {
                string cmd = File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ');
                return cmd.Contains("trap '' TERM; sleep 1000", StringComparison.Ordinal)
                    || (cmd.StartsWith("sleep 1000", StringComparison.Ordinal) && Environ(d).Contains("POD_NAME=stubborn", StringComparison.Ordinal));
            }
            catch (IOException)
            {
                return false;
            }
        });
    }

    [LabFact]
    public void A_LoadBalancer_ingress_ip_is_routed_from_the_outside_netns_via_the_right_nodes_and_unrouted_after_delete()
    {
        Lab.Apply("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: lb}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: cluster, namespace: lb}
            spec:
              type: LoadBalancer
              selector: {app: lbweb}
              ports: [{port: 80, targetPort: 80}]
            status:
              loadBalancer:
                ingress: [{ip: 172.30.0.240}]
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: local, namespace: lb}
            spec:
              type: LoadBalancer
              externalTrafficPolicy: Local
              selector: {app: lbweb}
              ports: [{port: 80, targetPort: 80}]
            status:
              loadBalancer:
                ingress: [{ip: 172.30.0.241}]
            """ + Pod("only-on-2", "lb", "node-2", "app: lbweb"));
        Lab.WaitReady("lb", 1);
        string routes = WaitFor(() => LbRoutes() is var r && r.Contains("172.30.0.240", StringComparison.Ordinal) && r.Contains("172.30.0.241", StringComparison.Ordinal) ? r : null, 10, "both LB routes");
        // Cluster: ECMP via every Ready node; Local: only via node-2, which holds the endpoint.
        Assert.Contains("172.30.0.240 \n\tnexthop via 172.30.0.11 dev ul0 weight 1 \n\tnexthop via 172.30.0.12 dev ul0 weight 1", routes, StringComparison.Ordinal);
        Assert.Contains("172.30.0.241 via 172.30.0.12", routes, StringComparison.Ordinal);

        // A route deleted by hand is put back by the periodic pass.
        Sh.Must("ip", "-n", fixture.UnderlayNetns, "route", "del", "172.30.0.240/32", "proto", "202");
        WaitFor(() => LbRoutes().Contains("172.30.0.240", StringComparison.Ordinal) ? "" : null, 15, "the deleted route to come back");

        Lab.RunWithStdin("apiVersion: v1\nkind: Service\nmetadata: {name: cluster, namespace: lb}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: local, namespace: lb}\n", "delete", "-f", "-");
        WaitFor(() => LbRoutes().Trim().Length == 0 ? "" : null, 10, "the LB routes to be withdrawn");
    }

    private string LbRoutes() => Sh.Must("ip", "-n", fixture.UnderlayNetns, "route", "show", "proto", "202");

    private static int Veths(string netns) => Sh.Must("ip", "-n", netns, "-o", "link", "show", "type", "veth").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;

    private static string Environ(string procDir)
    {
        try
        {
            return Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(procDir, "environ"))).Replace('\0', '\n');
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static async Task MarkDeletedAsync(IClusterStore store, string key, string uid, int grace)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            var item = await store.GetAsync(key) ?? throw new InvalidOperationException(key + " is gone");
            var o = JsonNode.Parse(item.Value)!.AsObject();
            Assert.Equal(uid, o["metadata"]!["uid"]!.GetValue<string>());
            o["metadata"]!["deletionTimestamp"] = DateTime.UtcNow.AddSeconds(grace).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            o["metadata"]!["deletionGracePeriodSeconds"] = grace;
            try
            {
                await store.UpdateAsync(key, Encoding.UTF8.GetBytes(o.ToJsonString()), item.ModRevision);
                return;
            }
            catch (StoreConflictException)
            {
            }
        }
        throw new InvalidOperationException("could not mark " + key + " deleted");
    }
}
