using System.Globalization;
using System.Text.Json.Nodes;
using Trellis.Cli.Cluster;
using Trellis.Core.Lab;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Lab;

/// <summary>`lab up` and `lab down`: build a lab from a config, and remove every trace of it.</summary>
public static class LabLifecycle
{
    public static string StoreDir(string lab) => $"/var/lib/trellis/{lab}";

    public static string StoreUrl(string lab) => $"sqlite://{StoreDir(lab)}/store.db";

    public static string NodeDir(string lab, string node) => $"{LabNames.RunDir(lab)}/nodes/{node}";

    /// <summary>Builds (or completes) the lab; returns its state. Idempotent: a running lab is left running.</summary>
    public static async Task<LabState> UpAsync(LabConfig config, string binDir, Action<string> progress, CancellationToken ct)
    {
        var existing = LabState.Load(config.Name);
        progress($"underlay {LabNames.UnderlayNetns(config.Name)} (bridge ul0, {config.OutsideIp}/{config.Underlay.PrefixLength}) and {config.Nodes.Count} node namespaces");
        LabNetwork.Build(config);
        var (storeUrl, members) = existing is not null ? (existing.Store, existing.EtcdMembers) : ChooseStore(config);
        if (members.Count > 0)
        {
            LabNetwork.AddUnderlayAddresses(config, members.Select(m => System.Net.IPAddress.Parse(m.Ip)));
        }

        Directory.CreateDirectory(StoreDir(config.Name));
        var nodes = new List<LabStateNode>();
        foreach (var n in config.Nodes)
        {
            string confDir = $"{NodeDir(config.Name, n.Name)}/net.d";
            Directory.CreateDirectory(confDir);
            // The conflist itself is trellisd's to write, once it holds the node's subnet lease.
            File.WriteAllText(ConflistTemplatePath(config.Name, n.Name), ConflistTemplate(config, n));
            nodes.Add(new LabStateNode(n.Name, n.Ip.ToString(), n.PodCidr.ToString(), LabNames.NodeNetns(config.Name, n.Name), confDir));
        }
        var state = new LabState
        {
            Name = config.Name,
            Store = storeUrl,
            EtcdMembers = members,
            Backend = config.Backend,
            UnderlayNetns = LabNames.UnderlayNetns(config.Name),
            OutsideIp = config.OutsideIp.ToString(),
            Underlay = config.Underlay.ToString(),
            ServiceCidr = config.ServiceCidr.ToString(),
            ClusterCidr = config.ClusterCidr.ToString(),
            NodeSubnetLength = config.NodeSubnetLength,
            DirectRouting = config.DirectRouting,
            MasqueradeAll = config.MasqueradeAll,
            NodePortAddresses = config.NodePortAddresses,
            DnsIp = config.DnsIp.ToString(),
            Domain = config.Domain,
            PodMtu = config.PodMtu,
            Nodes = nodes,
            Supervisor = existing?.Supervisor,
            CreatedAt = existing?.CreatedAt ?? DateTimeOffset.UtcNow,
        };
        state.Save();

        if (members.Count > 0)
        {
            StartEtcd(state, progress);
            await LabEtcd.WaitReadyAsync(state, TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
            progress($"etcd: {members.Count} members answer at {state.Store}");
        }

        await using (var labStore = LabEtcd.Open(state))
        {
            var client = new ObjectClient(labStore);
            // Before any object: admission allocates ClusterIPs, NodePorts and LB IPs from these settings.
            var network = config.ToClusterNetworkConfig();
            await ClusterConfigStore.SaveAsync(labStore, network, ct).ConfigureAwait(false);
            progress($"cluster store {state.Store}: network config ({ClusterNetworkConfigSummary(network)}), namespaces and Node objects");
            var admission = new Admission(client, TimeProvider.System);
            var docs = new List<ManifestDocument>();
            // Created when missing, never re-applied: a Node carries what its kubelet and trellisd
            // wrote (addresses, conditions, the VTEP annotation), which a re-apply would drop.
            foreach (var ns in new[] { "default", "kube-system" })
            {
                if (await client.GetAsync(Kinds.Namespace, null, ns, ct).ConfigureAwait(false) is null)
                {
                    docs.Add(Doc(new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = ns } }));
                }
            }
            foreach (var n in config.Nodes)
            {
                if (await client.GetAsync(Kinds.Node, null, n.Name, ct).ConfigureAwait(false) is null)
                {
                    docs.Add(Doc(NodeObject(n)));
                }
            }
            var (_, errors) = await admission.ApplyAsync(docs, ct).ConfigureAwait(false);
            if (errors.Count > 0)
            {
                throw new IOException("writing the lab's objects: " + string.Join("; ", errors));
            }
            // Cluster DNS after the namespaces it lives in; created when missing (a deleted DNS pod comes back with the next `lab up`).
            var dns = new List<ManifestDocument>();
            foreach (var o in ClusterDnsObjects(state, binDir))
            {
                var kind = o["kind"]!.GetValue<string>() == "Service" ? Kinds.Service : Kinds.Pod;
                if (await client.GetAsync(kind, "kube-system", o["metadata"]!["name"]!.GetValue<string>(), ct).ConfigureAwait(false) is null)
                {
                    dns.Add(Doc(o));
                }
            }
            (_, errors) = await admission.ApplyAsync(dns, ct).ConfigureAwait(false);
            if (errors.Count > 0)
            {
                throw new IOException("writing the cluster DNS objects: " + string.Join("; ", errors));
            }
            progress($"cluster DNS: Service kube-system/kube-dns at {state.DnsIp} and {ClusterDnsPodCount} trellis-dns pods (upstream {state.OutsideIp}:53, the outside host's resolver)");
        }

        if (state.Supervisor is null || !Procs.IsAlive(state.Supervisor))
        {
            var sup = Procs.SpawnDetached("supervisor", [Path.Combine(binDir, "trellis"), "lab", "supervise", "--name", config.Name],
                $"{LabNames.LogDir(config.Name)}/supervisor.log");
            state = state with { Supervisor = sup };
            state.Save();
            progress($"supervisor started (pid {sup.Pid}): {(members.Count > 0 ? "etcd, " : "")}controller and {config.Nodes.Count} kubelets");
        }
        else
        {
            progress($"supervisor already running (pid {state.Supervisor.Pid})");
            Procs.Signal(state.Supervisor, 1 /* SIGHUP: reload the state, e.g. new nodes */);
        }
        return state;
    }

    /// <summary>`sqlite` (the default), `etcd` (the lab's own 3 members on the underlay) or a store URL taken as given.</summary>
    private static (string Url, IReadOnlyList<LabEtcdMember> Members) ChooseStore(LabConfig config)
    {
        switch (config.Store)
        {
            case "sqlite":
                return (StoreUrl(config.Name), []);
            case "etcd":
                var (members, error) = LabEtcd.Plan(config);
                if (error is not null)
                {
                    throw new IOException(error);
                }
                return (LabEtcd.Url(members), members);
            default:
                return (config.Store, []);
        }
    }

    /// <summary>
    /// Starts the members the supervisor is not running yet (it adopts them from procs.json when it
    /// starts), so the store answers before the lab's objects are written and its daemons start.
    /// </summary>
    private static void StartEtcd(LabState state, Action<string> progress)
    {
        if (state.Supervisor is not null && Procs.IsAlive(state.Supervisor))
        {
            return;
        }
        var procs = LabProcs.Load(state.Name).Procs.Where(Procs.IsAlive).ToList();
        foreach (var m in state.EtcdMembers)
        {
            string node = LabEtcd.SlotNode(m);
            if (procs.Any(p => p.Role == "etcd" && p.Node == node))
            {
                continue;
            }
            Directory.CreateDirectory(m.DataDir);
            var p = Procs.SpawnDetached("etcd", LabEtcd.Argv(state, m), $"{LabNames.LogDir(state.Name)}/etcd-{node}.log", node);
            procs.Add(p);
            new LabProcs(procs).Save(state.Name);
            progress($"etcd member {m.Name} on {m.Ip} started (pid {p.Pid})");
        }
    }

    public const int ClusterDnsPodCount = 2;

    /// <summary>
    /// What a cluster's DNS add-on is (CoreDNS's manifests, as kubeadm deploys them): the Service kube-system/kube-dns
    /// at the lab's DNS address with ports dns/53/UDP, dns-tcp/53/TCP and metrics/9153/TCP selecting
    /// <c>k8s-app: kube-dns</c>, and two trellis-dns pods on different nodes (the first two) with dnsPolicy Default
    /// and a readiness probe on /ready, which answers only once the first full snapshot of the store is loaded.
    /// </summary>
    public static IReadOnlyList<JsonObject> ClusterDnsObjects(LabState state, string binDir)
    {
        ArgumentNullException.ThrowIfNull(state);
        var objects = new List<JsonObject>
        {
            new()
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Service",
                ["metadata"] = new JsonObject
                {
                    ["name"] = "kube-dns",
                    ["namespace"] = "kube-system",
                    ["labels"] = new JsonObject { ["k8s-app"] = "kube-dns", ["kubernetes.io/name"] = "TrellisDNS" },
                },
                ["spec"] = new JsonObject
                {
                    ["clusterIP"] = state.DnsIp,
                    ["selector"] = new JsonObject { ["k8s-app"] = "kube-dns" },
                    ["ports"] = new JsonArray(
                        new JsonObject { ["name"] = "dns", ["port"] = 53, ["protocol"] = "UDP", ["targetPort"] = 53 },
                        new JsonObject { ["name"] = "dns-tcp", ["port"] = 53, ["protocol"] = "TCP", ["targetPort"] = 53 },
                        new JsonObject { ["name"] = "metrics", ["port"] = 9153, ["protocol"] = "TCP", ["targetPort"] = 9153 }),
                },
            },
        };
        for (int i = 0; i < ClusterDnsPodCount && state.Nodes.Count > 0; i++)
        {
            var node = state.Nodes[i % state.Nodes.Count];
            objects.Add(new JsonObject
            {
                ["apiVersion"] = "v1",
                ["kind"] = "Pod",
                ["metadata"] = new JsonObject
                {
                    ["name"] = $"trellis-dns-{i + 1}",
                    ["namespace"] = "kube-system",
                    ["labels"] = new JsonObject { ["k8s-app"] = "kube-dns" },
                },
                ["spec"] = new JsonObject
                {
                    ["nodeName"] = node.Name,
                    // As CoreDNS: the DNS pods resolve through the node's resolver, never through themselves.
                    ["dnsPolicy"] = "Default",
                    ["terminationGracePeriodSeconds"] = 5,
                    ["containers"] = new JsonArray(new JsonObject
                    {
                        ["name"] = "trellis-dns",
                        ["image"] = "trellis-dns",
                        ["command"] = new JsonArray(
                            Path.Combine(binDir, "trellis-dns"), "--store", state.Store, "--listen", "0.0.0.0:53", "--domain", state.Domain,
                            "--upstream", $"{state.OutsideIp}:53", "--health", "0.0.0.0:8080", "--metrics", "0.0.0.0:9153"),
                        ["ports"] = new JsonArray(
                            new JsonObject { ["name"] = "dns", ["containerPort"] = 53, ["protocol"] = "UDP" },
                            new JsonObject { ["name"] = "dns-tcp", ["containerPort"] = 53, ["protocol"] = "TCP" },
                            new JsonObject { ["name"] = "metrics", ["containerPort"] = 9153, ["protocol"] = "TCP" }),
                        // The kubelet's default period is 10 s; the lab's clients should not wait that long for a new DNS pod.
                        ["readinessProbe"] = new JsonObject
                        {
                            ["httpGet"] = new JsonObject { ["path"] = "/ready", ["port"] = 8080, ["scheme"] = "HTTP" },
                            ["periodSeconds"] = 1,
                            ["timeoutSeconds"] = 1,
                            ["failureThreshold"] = 3,
                        },
                    }),
                },
            });
        }
        return objects;
    }

    /// <summary>Waits until the cluster DNS pods are Ready; false on timeout.</summary>
    public static async Task<bool> WaitClusterDnsReadyAsync(LabState state, TimeSpan timeout, CancellationToken ct)
    {
        await using var store = LabEtcd.Open(state);
        var client = new ObjectClient(store);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var (pods, _) = await client.ListAsync(Kinds.Pod, "kube-system", ct).ConfigureAwait(false);
            if (pods.Count(p => new PodView(p.Json) is { IsReady: true } v && v.Metadata.Labels.TryGetValue("k8s-app", out var app) && app == "kube-dns") >= ClusterDnsPodCount)
            {
                return true;
            }
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    public static async Task WaitNodesReadyAsync(LabState state, TimeSpan timeout, CancellationToken ct)
    {
        await using var store = LabEtcd.Open(state);
        var client = new ObjectClient(store);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var (nodes, _) = await client.ListAsync(Kinds.Node, null, ct).ConfigureAwait(false);
            int ready = nodes.Count(n => NodeReady(n.Json));
            if (ready >= state.Nodes.Count)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"only {ready} of {state.Nodes.Count} nodes became Ready within {timeout.TotalSeconds:0}s (see {LabNames.LogDir(state.Name)}/)");
            }
            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    public static bool NodeReady(JsonObject node) =>
        node["status"]?["conditions"] is JsonArray conds
        && conds.Any(c => c?["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True");

    /// <summary>Stops every process and removes every namespace, mount and file the lab made.</summary>
    public static void Down(string lab, Action<string> progress)
    {
        var state = LabState.Load(lab);
        if (state?.Supervisor is { } sup)
        {
            // The supervisor first, so it does not restart what is being stopped next.
            Procs.Stop(sup, TimeSpan.FromSeconds(5));
        }
        foreach (var p in LabProcs.Load(lab).Procs)
        {
            Procs.Stop(p, TimeSpan.FromSeconds(3));
        }
        var nodes = state?.Nodes.Select(n => n.Name).ToList() ?? [];
        string kubeletDir = $"{LabNames.RunDir(lab)}/kubelet";
        if (Directory.Exists(kubeletDir))
        {
            nodes.AddRange(Directory.EnumerateDirectories(kubeletDir).Select(d => Path.GetFileName(d)!));
        }
        int containers = 0;
        foreach (var node in nodes.Distinct())
        {
            foreach (var rec in PodRecord.LoadAll(lab, node))
            {
                foreach (var c in rec.Containers)
                {
                    Procs.Stop(c, TimeSpan.FromSeconds(2));
                    containers++;
                }
            }
        }
        progress($"stopped {(state?.Supervisor is null ? 0 : 1)} supervisor, {LabProcs.Load(lab).Procs.Count} daemons, {containers} pod processes");
        var netns = new List<string>();
        if (state is not null)
        {
            netns.Add(state.UnderlayNetns);
            netns.AddRange(state.Nodes.Select(n => n.Netns));
        }
        LabNetwork.Destroy(lab, netns);
        progress("removed the lab's network namespaces");
        foreach (var dir in new[] { LabNames.RunDir(lab), LabNames.LogDir(lab), StoreDir(lab) })
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        // The parents too, when this was the last lab: a machine is left as it was found.
        foreach (var parent in new[] { "/run/trellis", "/var/log/trellis", "/var/lib/trellis" })
        {
            if (Directory.Exists(parent) && !Directory.EnumerateFileSystemEntries(parent).Any())
            {
                Directory.Delete(parent);
            }
        }
        progress("removed its state, logs and store");
    }

    private static string ClusterNetworkConfigSummary(Trellis.Core.Cluster.ClusterNetworkConfig c) =>
        $"services {string.Join(",", c.ServiceCidrs)}, node ports {c.NodePortMin}-{c.NodePortMax}, "
        + (c.LoadBalancerPools.Count == 0 ? "no load-balancer pool" : $"load-balancer pool {string.Join(",", c.LoadBalancerPools)}");

    private static ManifestDocument Doc(JsonObject o) => new("lab up", 1, 1, null, o);

    private static JsonObject NodeObject(LabNode n) => new()
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Node",
        ["metadata"] = new JsonObject
        {
            ["name"] = n.Name,
            ["labels"] = new JsonObject { ["kubernetes.io/hostname"] = n.Name, ["kubernetes.io/os"] = "linux" },
        },
        // No spec.podCIDR: trellisd leases one (preferring the lab's planned subnet) and records it.
        ["status"] = new JsonObject
        {
            ["addresses"] = new JsonArray(
                new JsonObject { ["type"] = "InternalIP", ["address"] = n.Ip.ToString() },
                new JsonObject { ["type"] = "Hostname", ["address"] = n.Name }),
        },
    };

    public static string ConflistTemplatePath(string lab, string node) => $"{NodeDir(lab, node)}/conflist.template";

    /// <summary>
    /// The node's CNI configuration (DESIGN.md §1's keys) with the subnet, gateway and MTU left as
    /// placeholders that trellisd fills from its lease.
    /// </summary>
    public static string ConflistTemplate(LabConfig config, LabNode n) => $$$"""
        {
          "cniVersion": "{{{(config.CniPlugin == "reference" ? "1.0.0" : "1.1.0")}}}",
          "cniVersions": [{{{(config.CniPlugin == "reference" ? "\"1.0.0\"" : "\"1.0.0\", \"1.1.0\"")}}}],
          "name": "trellis",
          "plugins": [
            {
              "type": "{{{(config.CniPlugin == "reference" ? "bridge" : "trellis-cni")}}}",
              "bridge": "trellis0",
              "isGateway": true,
              "mtu": {{MTU}},
              "hairpinMode": true,
              "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "{{SUBNET}}", "gateway": "{{GATEWAY}}"}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": "{{{StoreDir(config.Name)}}}/ipam/{{{n.Name}}}"
              }
            }
          ]
        }
        """;
}
