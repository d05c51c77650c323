using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Trellis.Cli.Cluster;
using Trellis.Cli.Lab;
using Trellis.Cli.Workload;
using Trellis.Core.Lab;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Commands;

/// <summary>`trellis lab …`: up, down, status, and the lab's own daemons (supervise, kubelet, controller).</summary>
internal static class LabCommands
{
    public static Command Create()
    {
        var lab = new Command("lab", "a cluster network of real namespaces on this machine");
        lab.Subcommands.Add(Up());
        lab.Subcommands.Add(Down());
        lab.Subcommands.Add(Status());
        lab.Subcommands.Add(Daemon("supervise", "(internal) run the lab's daemons with restarts", (state, node, ct) =>
            new Supervisor(state, BinDir, Console.Out).RunAsync(ct)));
        lab.Subcommands.Add(Daemon("controller", "(internal) the lab's scheduler, EndpointSlice controller and LoadBalancer announcer", async (state, node, ct) =>
        {
            await using var store = ClusterStore.Open(state.Store);
            var client = new ObjectClient(store);
            using var endpoints = new EndpointSliceController(client, Console.Out);
            // As kube-controller-manager runs its controllers: side by side, one failing does not stop the others.
            await Task.WhenAll(
                KeepRunningAsync("scheduler", () => new Scheduler(client, Console.Out).RunAsync(ct), ct),
                KeepRunningAsync("endpointslice", () => endpoints.RunAsync(ct), ct),
                KeepRunningAsync("lb-announcer", () => new LoadBalancerAnnouncer(endpoints, Console.Out).RunAsync(ct), ct),
                KeepRunningAsync("allocation-repair", () => RepairAllocationsAsync(store, ct), ct)).ConfigureAwait(false);
            return 0;
        }));
        lab.Subcommands.Add(Daemon("dns-stub", "(internal) the outside host's resolver: a fixed zone `test` on port 53 of the underlay", async (state, node, ct) =>
        {
            await LabDnsStub.RunAsync(state, Console.Out, ct).ConfigureAwait(false);
            return 0;
        }));
        lab.Subcommands.Add(Daemon("kubelet", "(internal) the lab's kubelet for one node", async (state, node, ct) =>
        {
            var n = state.Nodes.FirstOrDefault(x => x.Name == node) ?? throw new UsageException($"--node: '{node}' is not a node of lab '{state.Name}'");
            await using var store = ClusterStore.Open(state.Store);
            await new Kubelet(state, n, new ObjectClient(store), BinDir, Console.Out).RunAsync(ct).ConfigureAwait(false);
            return 0;
        }, withNode: true));
        return lab;
    }

    /// <summary>
    /// The API server's repair controllers for ClusterIPs and NodePorts: every minute, allocation keys whose
    /// Service is gone or no longer uses them (an apply that crashed between allocating and writing) are
    /// released, and missing ones restored.
    /// </summary>
    private static async Task RepairAllocationsAsync(Trellis.Store.IClusterStore store, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var report = await AllocationRepair.RunOnceAsync(store, ct: ct).ConfigureAwait(false);
                if (!report.IsClean)
                {
                    Console.Out.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} allocation-repair: removed [{string.Join(", ", report.Removed)}] restored [{string.Join(", ", report.Restored)}] conflicts [{string.Join(", ", report.Conflicts)}]");
                }
            }
            catch (Trellis.Store.StoreException e)
            {
                Console.Out.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} allocation-repair: store: {e.Message}; retrying");
            }
            await Task.Delay(TimeSpan.FromMinutes(1), ct).ConfigureAwait(false);
        }
    }

    /// <summary>Runs one controller loop, restarting it after an unexpected failure (logged) until cancellation.</summary>
    private static async Task KeepRunningAsync(string name, Func<Task> run, CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(500);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Run(run, ct).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // a controller's bug must not take its siblings down; it is logged and restarted
            catch (Exception e)
#pragma warning restore CA1031
            {
                Console.Out.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {name}: failed: {e}; restarting in {backoff.TotalSeconds:0.0}s");
                await Task.Delay(backoff, ct).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

    public static string BinDir => Path.GetDirectoryName(Environment.ProcessPath)!;

    private static Option<string> NameOption() => new("--name") { Description = "lab name", DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TRELLIS_LAB") is { Length: > 0 } l ? l : LabConfig.DefaultName };

    private static Command Up()
    {
        var name = NameOption();
        var nodes = new Option<int?>("--nodes") { Description = "number of nodes (default 3)" };
        var backend = new Option<string?>("--backend") { Description = "vxlan | host-gw | bgp" };
        var store = new Option<string?>("--store") { Description = "sqlite | etcd | URL" };
        var config = new Option<string?>("--config") { Description = "lab.yaml" };
        var demo = new Option<bool>("--demo") { Description = "deploy the demo in namespace demo (the default when no --nodes/--config is given)" };
        var cniPlugin = new Option<string?>("--cni-plugin") { Description = "trellis-cni (default) or reference (Debian's bridge + host-local, for side-by-side measurements)", Hidden = true };
        var cmd = new Command("up", "build the lab (idempotent) and show it working") { name, nodes, backend, store, config, demo, cniPlugin };
        cmd.SetAction(async (pr, ct) =>
        {
            var cfg = new LabConfig();
            if (pr.GetValue(config) is { } file)
            {
                if (!File.Exists(file))
                {
                    throw new UsageException($"--config: {file} does not exist");
                }
                var (parsed, errors) = LabConfigFile.Parse(File.ReadAllText(file), file, cfg);
                if (errors.Count > 0)
                {
                    throw new UsageException(string.Join("\n", errors));
                }
                cfg = parsed;
            }
            if (pr.GetResult(name) is { Implicit: false } || pr.GetValue(config) is null)
            {
                cfg = cfg with { Name = pr.GetValue(name)! };
            }
            if (pr.GetValue(nodes) is int n)
            {
                cfg = cfg with { NodeCount = n, ExplicitNodes = [] };
            }
            if (pr.GetValue(backend) is { } b)
            {
                cfg = cfg with { Backend = b };
            }
            if (pr.GetValue(cniPlugin) is { } cp)
            {
                cfg = cfg with { CniPlugin = cp };
            }
            bool bare = pr.GetValue(nodes) is null && pr.GetValue(config) is null;
            cfg = cfg with { Demo = pr.GetValue(demo) || bare || cfg.Demo };
            if (pr.GetValue(store) is { } s)
            {
                cfg = cfg with { Store = s };
            }
            if (cfg.Store is not ("sqlite" or "etcd"))
            {
                // An existing cluster's URL, stored as given (checked here, so a typo fails before anything is built).
                if (!cfg.Store.StartsWith("etcd://", StringComparison.OrdinalIgnoreCase) && !cfg.Store.StartsWith("etcd+unix://", StringComparison.OrdinalIgnoreCase)
                    && !cfg.Store.StartsWith("sqlite://", StringComparison.OrdinalIgnoreCase))
                {
                    throw new UsageException($"--store: '{cfg.Store}' is not sqlite, etcd or a store URL (etcd://HOST:PORT,…, etcd+unix:///path, sqlite:///abs/path)");
                }
                try
                {
                    if (!cfg.Store.StartsWith("sqlite://", StringComparison.OrdinalIgnoreCase))
                    {
                        // Parses the URL; an etcd store sends nothing until its first call.
                        await ClusterStore.Open(cfg.Store).DisposeAsync().ConfigureAwait(false);
                    }
                }
                catch (ArgumentException e)
                {
                    throw new UsageException("--store: " + e.Message);
                }
            }
            else if (cfg.Store == "etcd" && LabEtcd.Plan(cfg).Error is { } room)
            {
                throw new UsageException("lab config: " + room);
            }
            if (cfg.Validate() is { Count: > 0 } problems)
            {
                throw new UsageException(string.Join("\n", problems.Select(p => "lab config: " + p)));
            }
            if (!Environment.IsPrivilegedProcess)
            {
                Console.Error.WriteLine("lab up: needs root (network namespaces)");
                return 1;
            }
            var sw = System.Diagnostics.Stopwatch.StartNew();
            void Progress(string m) => Console.WriteLine($"[{sw.Elapsed.TotalSeconds,5:0.0}s] {m}");
            var state = await LabLifecycle.UpAsync(cfg, BinDir, Progress, ct).ConfigureAwait(false);
            await LabLifecycle.WaitNodesReadyAsync(state, TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
            Progress($"{state.Nodes.Count} nodes Ready");
            if (await LabLifecycle.WaitClusterDnsReadyAsync(state, TimeSpan.FromSeconds(30), ct).ConfigureAwait(false))
            {
                Progress($"cluster DNS Ready at {state.DnsIp}");
            }
            else
            {
                // Not fatal: the rest of the lab works without names; the pods' logs say why.
                Console.Error.WriteLine($"lab up: cluster DNS is not Ready after 30s (see {LabNames.LogDir(state.Name)}/pods/kube-system_trellis-dns-*.log)");
            }
            if (cfg.Demo)
            {
                await DemoAsync(state, Progress, ct).ConfigureAwait(false);
            }
            Console.WriteLine();
            Console.Write(await StatusTableAsync(state, ct).ConfigureAwait(false));
            if (cfg.Demo)
            {
                await using var st = LabEtcd.Open(state);
                // Routes between nodes appear as each trellisd publishes its VTEP and its peers react:
                // give that a few seconds before showing the matrix as it is.
                IReadOnlyList<ProbeResult> results = [];
                for (var until = DateTime.UtcNow.AddSeconds(8); ;)
                {
                    results = await Probe.RunAsync(state, new ObjectClient(st), ["demo"], 80, "tcp", false, TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                    if (results.All(r => r.Connected) || DateTime.UtcNow > until)
                    {
                        break;
                    }
                    await Task.Delay(250, ct).ConfigureAwait(false);
                }
                Console.WriteLine();
                Console.Write(Probe.ToTable(results, 80, "tcp", !Console.IsOutputRedirected));
                await DemoServicesAsync(state, new ObjectClient(st), ct).ConfigureAwait(false);
            }
            Console.WriteLine($"\nlab '{state.Name}' is up in {sw.Elapsed.TotalSeconds:0.0}s. Try: ./trellis get pods -A -o wide   ./trellis probe   ./trellis lab down");
            return 0;
        });
        return cmd;
    }

    private static async Task DemoAsync(LabState state, Action<string> progress, CancellationToken ct)
    {
        await using var store = LabEtcd.Open(state);
        var client = new ObjectClient(store);
        var docs = Manifests.ParseDocuments(DemoManifest(state), "demo");
        var (_, errors) = await new Admission(client, TimeProvider.System).ApplyAsync(docs, ct).ConfigureAwait(false);
        if (errors.Count > 0)
        {
            throw new IOException("demo: " + string.Join("; ", errors));
        }
        int want = docs.Count(d => d.Json["kind"]?.ToString() == "Pod");
        progress($"demo: {want} pods applied in namespace demo; waiting for them to be Ready");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var (pods, _) = await client.ListAsync(Kinds.Pod, "demo", ct).ConfigureAwait(false);
            int ready = pods.Count(p => new PodView(p.Json).IsReady);
            if (ready >= want)
            {
                progress($"demo: {ready} pods Ready");
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"demo: only {ready} of {want} pods Ready after 60s (see {LabNames.LogDir(state.Name)}/)");
            }
            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The demo's Service, seen working: the same matrix through its ClusterIP (each connection DNATed by the
    /// source node's trellis-proxy table to one of the pods), then its NodePort from the outside netns.
    /// </summary>
    private static async Task DemoServicesAsync(LabState state, ObjectClient client, CancellationToken ct)
    {
        var svc = await client.GetAsync(Kinds.Service, "demo", "web", ct).ConfigureAwait(false);
        if (svc is null)
        {
            return;
        }
        var view = new ServiceView(svc.Json);
        var ports = view.Ports;
        int nodePort = ports.Count > 0 ? ports[0].NodePort ?? 0 : 0;
        IReadOnlyList<ProbeResult> results = [];
        for (var until = DateTime.UtcNow.AddSeconds(8); ;)
        {
            results = await Probe.RunAsync(state, client, ["demo"], 80, "tcp", true, TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            if (results.All(r => r.Connected) || DateTime.UtcNow > until)
            {
                break;
            }
            await Task.Delay(250, ct).ConfigureAwait(false);
        }
        Console.WriteLine($"\nthrough Service demo/web (ClusterIP {view.ClusterIP}):");
        Console.Write(Probe.ToTable(results, 80, "tcp", !Console.IsOutputRedirected));
        if (nodePort > 0)
        {
            Console.WriteLine($"\nfrom outside the cluster ({state.OutsideIp}) to NodePort {nodePort} of each node:");
            foreach (var n in state.Nodes)
            {
                var psi = new System.Diagnostics.ProcessStartInfo("ip", ["netns", "exec", state.UnderlayNetns, Path.Combine(BinDir, "trellis"), "connect", $"{n.Ip}:{nodePort}", "--timeout", "1s"])
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                };
                using var p = System.Diagnostics.Process.Start(psi)!;
                string answer = (await p.StandardOutput.ReadToEndAsync(ct).ConfigureAwait(false)).Trim();
                await p.WaitForExitAsync(ct).ConfigureAwait(false);
                Console.WriteLine($"  {n.Ip}:{nodePort} ({n.Name}) -> {(p.ExitCode == 0 ? "answered by " + answer : "no answer (exit " + p.ExitCode + ")")}");
            }
        }
    }

    /// <summary>Two agnhost-style pods per node (no command: serve-hostname on their declared ports), and a NodePort Service over them.</summary>
    public static string DemoManifest(LabState state)
    {
        var sb = new StringBuilder("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n");
        int i = 0;
        foreach (var n in state.Nodes)
        {
            foreach (var suffix in new[] { "a", "b" })
            {
                i++;
                sb.Append(CultureInfo.InvariantCulture, $"""
                    ---
                    apiVersion: v1
                    kind: Pod
                    metadata:
                      name: web-{i}
                      namespace: demo
                      labels: {"{"}app: web, node: {n.Name}{"}"}
                    spec:
                      nodeName: {n.Name}
                      containers:
                      - name: agnhost
                        image: registry.k8s.io/e2e-test-images/agnhost:2.52
                        ports:
                        - {"{"}name: http, containerPort: 80, protocol: TCP{"}"}
                        - {"{"}name: dns, containerPort: 80, protocol: UDP{"}"}

                    """);
            }
        }
        sb.Append("""
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              namespace: demo
            spec:
              type: NodePort
              selector: {app: web}
              ports:
              - {name: http, port: 80, targetPort: http, nodePort: 30080}
              - {name: dns, port: 53, protocol: UDP, targetPort: dns, nodePort: 30080}

            """);
        return sb.ToString();
    }

    private static Command Down()
    {
        var name = NameOption();
        var cmd = new Command("down", "remove every namespace, process, mount and file of the lab") { name };
        cmd.SetAction(pr =>
        {
            string lab = pr.GetValue(name)!;
            if (!LabNames.IsValidLabName(lab))
            {
                throw new UsageException($"--name: '{lab}' is not a lab name");
            }
            LabLifecycle.Down(lab, m => Console.WriteLine(m));
            Console.WriteLine($"lab '{lab}' is down");
            return 0;
        });
        return cmd;
    }

    private static Command Status()
    {
        var name = NameOption();
        var output = new Option<string?>("-o", "--output") { Description = "json" };
        var cmd = new Command("status", "the lab's nodes, store and health") { name, output };
        cmd.SetAction(async (pr, ct) =>
        {
            string lab = pr.GetValue(name)!;
            var state = LabState.Load(lab) ?? throw new UsageException($"--name: no lab named '{lab}' is running");
            string? o = pr.GetValue(output);
            if (o is not null && o != "json")
            {
                throw new UsageException($"-o: '{o}' is not supported here (json)");
            }
            if (o == "json")
            {
                Console.WriteLine(await StatusJsonAsync(state, ct).ConfigureAwait(false));
            }
            else
            {
                Console.Write(await StatusTableAsync(state, ct).ConfigureAwait(false));
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>Per node: Ready (its kubelet is alive and says so) and the pod CIDR its trellisd leased ("-" until then).</summary>
    private static async Task<Dictionary<string, (bool Ready, string PodCidr)>> NodeFactsAsync(LabState state, CancellationToken ct)
    {
        await using var store = LabEtcd.Open(state);
        var (nodes, _) = await new ObjectClient(store).ListAsync(Kinds.Node, null, ct).ConfigureAwait(false);
        var alive = LabProcs.Load(state.Name).Procs.Where(p => p.Role == "kubelet" && Procs.IsAlive(p)).Select(p => p.Node).ToHashSet();
        return nodes.ToDictionary(n => new NodeView(n.Json).Name, n =>
        {
            var view = new NodeView(n.Json);
            return (LabLifecycle.NodeReady(n.Json) && alive.Contains(view.Name), view.PodCIDRs.Count > 0 ? view.PodCIDRs[0] : "-");
        });
    }

    private static async Task<string> StatusTableAsync(LabState state, CancellationToken ct)
    {
        var facts = await NodeFactsAsync(state, ct).ConfigureAwait(false);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"lab {state.Name}   store {state.Store}   backend {state.Backend}   outside {state.OutsideIp} ({state.UnderlayNetns})\n");
        var rows = state.Nodes.Select(n => new[] { n.Name, n.Ip, facts.TryGetValue(n.Name, out var f) ? f.PodCidr : "-", n.Netns, facts.TryGetValue(n.Name, out var g) && g.Ready ? "True" : "False" }).ToList();
        string[] header = ["NODE", "IP", "POD-CIDR", "NETNS", "READY"];
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        foreach (var r in rows.Prepend(header))
        {
            sb.Append(string.Join("   ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd()).Append('\n');
        }
        return sb.ToString();
    }

    private static async Task<string> StatusJsonAsync(LabState state, CancellationToken ct)
    {
        var facts = await NodeFactsAsync(state, ct).ConfigureAwait(false);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("name", state.Name);
            w.WriteString("store", state.Store);
            w.WriteString("backend", state.Backend);
            w.WriteStartObject("outside");
            w.WriteString("netns", state.UnderlayNetns);
            w.WriteString("ip", state.OutsideIp);
            w.WriteEndObject();
            w.WriteStartArray("nodes");
            foreach (var n in state.Nodes)
            {
                w.WriteStartObject();
                w.WriteString("name", n.Name);
                w.WriteString("ip", n.Ip);
                w.WriteString("podCIDR", facts.TryGetValue(n.Name, out var f) ? f.PodCidr : "-");
                w.WriteString("netns", n.Netns);
                w.WriteBoolean("ready", facts.TryGetValue(n.Name, out var r) && r.Ready);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("serviceCIDR", state.ServiceCidr);
            w.WriteString("dnsIP", state.DnsIp);
            w.WriteString("domain", state.Domain);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static Command Daemon(string verb, string description, Func<LabState, string?, CancellationToken, Task<int>> run, bool withNode = false)
    {
        var name = NameOption();
        var node = new Option<string>("--node") { Description = "node name", Required = withNode };
        var cmd = new Command(verb, description) { name };
        if (withNode)
        {
            cmd.Options.Add(node);
        }
        cmd.Hidden = true;
        cmd.SetAction(async (pr, ct) =>
        {
            var state = LabState.Load(pr.GetValue(name)!) ?? throw new UsageException($"--name: no lab named '{pr.GetValue(name)}'");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            try
            {
                return await run(state, withNode ? pr.GetValue(node) : null, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return 0;
            }
        });
        return cmd;
    }
}
