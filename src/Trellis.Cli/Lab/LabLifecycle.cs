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

        Directory.CreateDirectory(StoreDir(config.Name));
        var nodes = new List<LabStateNode>();
        foreach (var n in config.Nodes)
        {
            string confDir = $"{NodeDir(config.Name, n.Name)}/net.d";
            Directory.CreateDirectory(confDir);
            File.WriteAllText($"{confDir}/10-trellis.conflist", Conflist(config, n));
            nodes.Add(new LabStateNode(n.Name, n.Ip.ToString(), n.PodCidr.ToString(), LabNames.NodeNetns(config.Name, n.Name), confDir));
        }
        var state = new LabState
        {
            Name = config.Name,
            Store = existing?.Store ?? StoreUrl(config.Name),
            Backend = config.Backend,
            UnderlayNetns = LabNames.UnderlayNetns(config.Name),
            OutsideIp = config.OutsideIp.ToString(),
            Underlay = config.Underlay.ToString(),
            ServiceCidr = config.ServiceCidr.ToString(),
            ClusterCidr = config.ClusterCidr.ToString(),
            DnsIp = config.DnsIp.ToString(),
            Domain = config.Domain,
            PodMtu = config.PodMtu,
            Nodes = nodes,
            Supervisor = existing?.Supervisor,
            CreatedAt = existing?.CreatedAt ?? DateTimeOffset.UtcNow,
        };
        state.Save();

        await using (var store = ClusterStore.Open(state.Store))
        {
            var client = new ObjectClient(store);
            progress($"cluster store {state.Store}: namespaces and Node objects");
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
        }

        if (state.Supervisor is null || !Procs.IsAlive(state.Supervisor))
        {
            var sup = Procs.SpawnDetached("supervisor", [Path.Combine(binDir, "trellis"), "lab", "supervise", "--name", config.Name],
                $"{LabNames.LogDir(config.Name)}/supervisor.log");
            state = state with { Supervisor = sup };
            state.Save();
            progress($"supervisor started (pid {sup.Pid}): controller and {config.Nodes.Count} kubelets");
        }
        else
        {
            progress($"supervisor already running (pid {state.Supervisor.Pid})");
        }
        return state;
    }

    public static async Task WaitNodesReadyAsync(LabState state, TimeSpan timeout, CancellationToken ct)
    {
        await using var store = ClusterStore.Open(state.Store);
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
        ["spec"] = new JsonObject
        {
            ["podCIDR"] = n.PodCidr.ToString(),
            ["podCIDRs"] = new JsonArray(n.PodCidr.ToString()),
        },
        ["status"] = new JsonObject
        {
            ["addresses"] = new JsonArray(
                new JsonObject { ["type"] = "InternalIP", ["address"] = n.Ip.ToString() },
                new JsonObject { ["type"] = "Hostname", ["address"] = n.Name }),
        },
    };

    /// <summary>The node's CNI configuration (DESIGN.md §1's keys). A static range per node until trellisd leases them.</summary>
    public static string Conflist(LabConfig config, LabNode n) => $$$"""
        {
          "cniVersion": "{{{(config.CniPlugin == "reference" ? "1.0.0" : "1.1.0")}}}",
          "cniVersions": [{{{(config.CniPlugin == "reference" ? "\"1.0.0\"" : "\"1.0.0\", \"1.1.0\"")}}}],
          "name": "trellis",
          "plugins": [
            {
              "type": "{{{(config.CniPlugin == "reference" ? "bridge" : "trellis-cni")}}}",
              "bridge": "trellis0",
              "isGateway": true,
              "mtu": {{{config.PodMtu.ToString(CultureInfo.InvariantCulture)}}},
              "hairpinMode": true,
              "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "{{{n.PodCidr}}}", "gateway": "{{{LabConfig.Gateway(n.PodCidr)}}}"}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": "{{{StoreDir(config.Name)}}}/ipam/{{{n.Name}}}"
              }
            }
          ]
        }
        """;
}
