using System.Globalization;
using System.Text.Json.Nodes;
using Trellis.Cli.Cluster;
using Trellis.CniClient;
using Trellis.Core.Dns;
using Trellis.Core.Objects;
using Trellis.Netlink;
using Trellis.Store;

namespace Trellis.Cli.Lab;

/// <summary>
/// The lab's stand-in for the kubelet, one per node, running inside the node's netns. For each
/// pod bound to its node it does what kubelet + a CRI runtime do for networking: a pod netns,
/// CNI ADD through the node's conflist (results cached for DEL/CHECK as libcni does), the pod's
/// resolv.conf, its containers as processes in the netns, and status (podIP, Ready) back in the
/// store. A restarted kubelet re-adopts running pods from its records instead of restarting them.
/// </summary>
public sealed class Kubelet
{
    public const string IpAnnotation = "trellis.dev/ip";

    private readonly LabState _lab;
    private readonly LabStateNode _node;
    private readonly ObjectClient _client;
    private readonly string _trellis;
    private readonly CniInvoker _cni;
    private CniConfigList? _conflistCache;

    /// <summary>
    /// The node's conflist, read when first needed: trellisd writes it once the node's subnet is
    /// leased, and until then there is nothing to wire pods with (the kubelet reports the node not
    /// Ready meanwhile, as a kubelet does while the CNI config is missing).
    /// </summary>
    private CniConfigList Conflist => _conflistCache ??= TryLoadConflist() ?? throw new IOException($"no CNI configuration in {_node.CniConfDir} yet");
    private static readonly string[] s_conditionTypes = ["PodScheduled", "Initialized", "ContainersReady", "Ready"];
    private readonly Dictionary<string, PodRecord> _pods = [];
    private readonly Dictionary<string, (DateTimeOffset NotBefore, TimeSpan Backoff)> _retry = [];
    // The pod as last seen (for restart policy and ports) and the readiness last written, so the
    // periodic sync reads nothing from the store and writes only when something changed.
    private readonly Dictionary<string, PodView> _views = [];
    private readonly Dictionary<string, bool> _writtenReady = [];
    // Pods being stopped gracefully (deletionTimestamp set): their containers' stop runs in the
    // background; the periodic sync finishes the teardown once it is done.
    private readonly Dictionary<string, Termination> _terminating = [];
    private readonly TextWriter _log;
    private readonly ReadinessProbes _probes;

    private sealed record Termination(Task Stopped, CancellationTokenSource Force, DateTimeOffset Started);

    /// <summary>The grace period when the pod names none (spec.terminationGracePeriodSeconds' default).</summary>
    public const int DefaultGracePeriodSeconds = 30;

    public Kubelet(LabState lab, LabStateNode node, ObjectClient client, string binDir, TextWriter log)
    {
        _lab = lab;
        _node = node;
        _client = client;
        _log = log;
        _probes = new ReadinessProbes(log);
        _trellis = Path.Combine(binDir, "trellis");
        _cni = new CniInvoker([binDir, "/usr/lib/cni"], Path.Combine(PodRecord.Dir(lab.Name, node.Name), "cni-cache"));

    }

    public async Task RunAsync(CancellationToken ct)
    {
        foreach (var r in PodRecord.LoadAll(_lab.Name, _node.Name))
        {
            _pods[r.Uid] = r;
            if (r.PodIp is null)
            {
                // Its setup was interrupted: undo what was made; the pod is set up afresh below.
                Log($"found {r.Namespace}/{r.Name} half set up; undoing it");
                await TeardownAsync(r, ct).ConfigureAwait(false);
                continue;
            }
            Log($"re-adopted {r.Namespace}/{r.Name} ({(r.Containers.All(Procs.IsAlive) ? "running" : "some containers gone")})");
        }
        while (TryLoadConflist() is null)
        {
            await Task.Delay(200, ct).ConfigureAwait(false);
        }
        await SetNodeReadyAsync(ct).ConfigureAwait(false);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var (pods, rev) = await _client.ListAsync(Kinds.Pod, null, ct).ConfigureAwait(false);
                var mine = pods.Where(p => new PodView(p.Json).NodeName == _node.Name).ToList();
                foreach (var uid in _pods.Keys.Except(mine.Select(p => new PodView(p.Json).Metadata.Uid ?? "")).ToList())
                {
                    await TeardownAsync(_pods[uid], ct).ConfigureAwait(false);
                }
                foreach (var p in mine)
                {
                    var view = new PodView(p.Json);
                    if (view.IsTerminating)
                    {
                        await BeginTerminationAsync(view, ct).ConfigureAwait(false);
                    }
                    else
                    {
                        await EnsureAsync(view, ct).ConfigureAwait(false);
                    }
                }
                await WatchLoopAsync(rev, ct).ConfigureAwait(false);
            }
            catch (StoreCompactedException)
            {
                Log("watch fell behind compaction: relisting");
            }
            catch (StoreException e) when (!ct.IsCancellationRequested)
            {
                Log($"store: {e.Message}; retrying");
                await Task.Delay(500, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task WatchLoopAsync(long rev, CancellationToken ct)
    {
        using var resync = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
        var watch = _client.WatchAsync(Kinds.Pod, rev, ct).GetAsyncEnumerator(ct);
        try
        {
            Task<bool>? next = null;
            Task<bool>? tick = null;
            while (!ct.IsCancellationRequested)
            {
                next ??= watch.MoveNextAsync().AsTask();
                tick ??= resync.WaitForNextTickAsync(ct).AsTask();
                var done = await Task.WhenAny(next, tick).ConfigureAwait(false);
                if (done == next)
                {
                    if (!await next.ConfigureAwait(false))
                    {
                        return;
                    }
                    var e = watch.Current;
                    next = null;
                    var pod = new PodView(e.Stored.Json);
                    string uid = pod.Metadata.Uid ?? "";
                    if (e.Type == WatchEventType.Delete)
                    {
                        _retry.Remove(uid);
                        if (_terminating.TryGetValue(uid, out var t))
                        {
                            // Force-deleted while stopping gracefully: no more grace.
                            await t.Force.CancelAsync().ConfigureAwait(false);
                        }
                        else if (_pods.TryGetValue(uid, out var rec))
                        {
                            await TeardownAsync(rec, ct).ConfigureAwait(false);
                        }
                    }
                    else if (pod.IsTerminating)
                    {
                        if (pod.NodeName == _node.Name)
                        {
                            await BeginTerminationAsync(pod, ct).ConfigureAwait(false);
                        }
                    }
                    else if (pod.NodeName == _node.Name)
                    {
                        if (_pods.ContainsKey(uid))
                        {
                            _views[uid] = pod; // labels and status change; the spec does not
                        }
                        await EnsureAsync(pod, ct).ConfigureAwait(false);
                    }
                }
                else
                {
                    await tick.ConfigureAwait(false);
                    tick = null;
                    await SyncStatusAsync(ct).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            await watch.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Starts the pod when it is new here; otherwise nothing (status is handled by the periodic sync).</summary>
    private async Task EnsureAsync(PodView pod, CancellationToken ct)
    {
        string uid = pod.Metadata.Uid ?? "";
        if (uid.Length == 0 || _pods.ContainsKey(uid) || (_retry.TryGetValue(uid, out var r) && DateTimeOffset.UtcNow < r.NotBefore))
        {
            return;
        }
        string netns = Core.Lab.LabNames.PodNetns(_lab.Name, pod.Namespace ?? "default", pod.Name, uid);
        var record = new PodRecord { Uid = uid, Namespace = pod.Namespace ?? "default", Name = pod.Name, Netns = netns };
        // Recorded before anything is made, so a crash at any point leaves something to clean up.
        record.Save(_lab.Name, _node.Name);
        _pods[uid] = record;
        _views[uid] = pod;
        _writtenReady.Remove(uid);
        try
        {
            LabNetwork.EnsureNetns(netns);
            using (var ns = NetNs.Open(LabNetwork.NetnsPath(netns)))
            using (var nl = RtNetlink.OpenIn(ns))
            {
                nl.LinkSetUp(nl.LinkGetByName("lo")!.Index);
            }
            WriteResolvConf(pod, netns);
            var rt = Attachment(pod, netns);
            var cniClock = System.Diagnostics.Stopwatch.StartNew();
            var result = _cni.Add(Conflist, rt);
            double cniMs = cniClock.Elapsed.TotalMilliseconds;
            string ip = result["ips"]![0]!["address"]!.GetValue<string>().Split('/')[0];
            var procs = pod.Containers.Select(c => StartContainer(pod, c, netns)).ToList();
            record = record with { PodIp = ip, Containers = procs };
            record.Save(_lab.Name, _node.Name);
            _pods[uid] = record;
            Log(string.Create(CultureInfo.InvariantCulture, $"started {pod} in {netns}: {ip} (cni add {cniMs:0.0} ms)"));
            await WriteStatusAsync(pod, record, ready: false, reason: null, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is CniClientException or IOException or NetlinkException)
        {
            // As the kubelet does with a failed sandbox: undo, report, and try again with backoff.
            var backoff = _retry.TryGetValue(uid, out var prev) ? TimeSpan.FromTicks(Math.Min(prev.Backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks)) : TimeSpan.FromSeconds(1);
            _retry[uid] = (DateTimeOffset.UtcNow + backoff, backoff);
            Log($"pod {pod}: {e.Message} (retrying in {backoff.TotalSeconds:0}s)");
            await WriteStatusAsync(pod, record with { PodIp = null }, ready: false, reason: e.Message, ct).ConfigureAwait(false);
            await TeardownAsync(_pods[uid], ct).ConfigureAwait(false);
            return;
        }
        _retry.Remove(uid);
    }

    private CniConfigList? TryLoadConflist()
    {
        if (!Directory.Exists(_node.CniConfDir))
        {
            return null;
        }
        string? file = Directory.EnumerateFiles(_node.CniConfDir, "*.conflist").Order(StringComparer.Ordinal).FirstOrDefault();
        return file is null ? null : CniConfigList.Load(file);
    }

    private static CniRuntimeConf Attachment(PodView pod, string netns)
    {
        var args = new List<KeyValuePair<string, string>>
        {
            new("IgnoreUnknown", "1"),
            new("K8S_POD_NAMESPACE", pod.Namespace ?? "default"),
            new("K8S_POD_NAME", pod.Name),
            new("K8S_POD_INFRA_CONTAINER_ID", pod.Metadata.Uid ?? ""),
            new("K8S_POD_UID", pod.Metadata.Uid ?? ""),
        };
        if (pod.Metadata.Annotation(IpAnnotation) is { Length: > 0 } ip)
        {
            args.Add(new("IP", ip));
        }
        return new CniRuntimeConf(pod.Metadata.Uid ?? "", LabNetwork.NetnsPath(netns), "eth0") { Args = args };
    }

    private ProcRecord StartContainer(PodView pod, ContainerView c, string netns)
    {
        var argv = new List<string> { "ip", "netns", "exec", netns };
        if (c.Command.Count > 0)
        {
            argv.AddRange(c.Command);
            argv.AddRange(c.Args);
        }
        else if (c.Ports.Count > 0)
        {
            // No command (an image such as agnhost): serve the declared ports like serve-hostname.
            argv.AddRange([_trellis, "serve-hostname", "--name", pod.Name, "--port"]);
            argv.AddRange(c.Ports.Select(p => $"{p.ContainerPort}/{p.Protocol.ToLowerInvariant()}"));
        }
        else
        {
            argv.AddRange(["sleep", "infinity"]);
        }
        var env = new Dictionary<string, string>
        {
            ["POD_NAME"] = pod.Name,
            ["POD_NAMESPACE"] = pod.Namespace ?? "default",
        };
        foreach (var e in c.Json["env"] as JsonArray ?? [])
        {
            if (e?["name"]?.GetValue<string>() is { } n && e["value"] is JsonValue v)
            {
                env[n] = v.ToString();
            }
        }
        string log = $"{Core.Lab.LabNames.LogDir(_lab.Name)}/pods/{pod.Namespace}_{pod.Name}_{c.Name}.log";
        return Procs.SpawnDetached("container:" + c.Name, argv, log, _node.Name, env);
    }

    /// <summary>
    /// /etc/netns/&lt;pod netns&gt;/resolv.conf, which `ip netns exec` bind-mounts over /etc/resolv.conf, as the
    /// kubelet computes it (<see cref="PodResolvConf"/>). The node's own resolver is the lab's outside host (the
    /// upstream stub there): nothing is ever taken from this machine's resolv.conf (DESIGN.md §5).
    /// </summary>
    private void WriteResolvConf(PodView pod, string netns)
    {
        var node = new ResolverConfig([_lab.OutsideIp], [], []);
        var config = PodResolvConf.For(pod, [_lab.DnsIp], _lab.Domain, node);
        string dir = "/etc/netns/" + netns;
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "resolv.conf"), config.Format());
    }

    /// <summary>
    /// Graceful deletion, as the kubelet's killPod: SIGTERM to every container (its process group),
    /// SIGKILL to what is left when the grace period (metadata.deletionGracePeriodSeconds, else
    /// spec.terminationGracePeriodSeconds, else 30 s) ends; then CNI DEL and the netns go, and the
    /// Pod object is deleted (compare-and-swap on its uid), which is what ends a graceful delete.
    /// The stop runs in the background so other pods are served meanwhile.
    /// </summary>
    private async Task BeginTerminationAsync(PodView pod, CancellationToken ct)
    {
        string uid = pod.Metadata.Uid ?? "";
        if (uid.Length == 0 || _terminating.ContainsKey(uid))
        {
            return;
        }
        _retry.Remove(uid);
        if (!_pods.TryGetValue(uid, out var rec))
        {
            // Never started here (or already torn down): nothing to stop, the object can go.
            await DeletePodObjectAsync(pod.Namespace ?? "default", pod.Name, uid, ct).ConfigureAwait(false);
            return;
        }
        _views[uid] = pod;
        long grace = pod.Json["metadata"]?["deletionGracePeriodSeconds"] is JsonValue g && g.TryGetValue(out long gl) ? gl
            : pod.Json["spec"]?["terminationGracePeriodSeconds"] is JsonValue s && s.TryGetValue(out long sl) ? sl
            : DefaultGracePeriodSeconds;
        // The grace runs from when this kubelet saw the deletion (whole-second timestamps, and
        // deletionTimestamp's meaning differs between "requested at" and "due at"); a kubelet
        // restarted meanwhile gives the pod its grace again, which errs on the side of the pod.
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(Math.Clamp(grace, 0, 24 * 3600));
        var force = new CancellationTokenSource();
        var containers = rec.Containers;
        var stopped = Task.Run(() => StopGracefullyAsync(containers, deadline, force.Token), CancellationToken.None);
        _terminating[uid] = new Termination(stopped, force, DateTimeOffset.UtcNow);
        Log($"stopping {pod} (grace {grace}s)");
    }

    private static async Task StopGracefullyAsync(IReadOnlyList<ProcRecord> containers, DateTimeOffset deadline, CancellationToken force)
    {
        foreach (var p in containers)
        {
            Procs.SignalGroup(p, 15);
        }
        while (containers.Any(Procs.IsAlive) && DateTimeOffset.UtcNow < deadline && !force.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(20, force).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        foreach (var p in containers)
        {
            Procs.SignalGroup(p, 9);
        }
        for (var until = DateTimeOffset.UtcNow.AddSeconds(2); containers.Any(Procs.IsAlive) && DateTimeOffset.UtcNow < until;)
        {
            await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task FinishTerminationAsync(string uid, Termination t, CancellationToken ct)
    {
        _terminating.Remove(uid);
        t.Force.Dispose();
        if (!_pods.TryGetValue(uid, out var rec))
        {
            return;
        }
        await TeardownAsync(rec, ct).ConfigureAwait(false);
        await DeletePodObjectAsync(rec.Namespace, rec.Name, uid, ct).ConfigureAwait(false);
        Log(string.Create(CultureInfo.InvariantCulture, $"{rec.Namespace}/{rec.Name} terminated after {(DateTimeOffset.UtcNow - t.Started).TotalSeconds:0.0}s"));
    }

    /// <summary>Deletes the Pod object if it is still the one with <paramref name="uid"/> (a new pod of the same name is left alone).</summary>
    private async Task DeletePodObjectAsync(string ns, string name, string uid, CancellationToken ct)
    {
        for (int attempt = 0; attempt < 20; attempt++)
        {
            var current = await _client.GetAsync(Kinds.Pod, ns, name, ct).ConfigureAwait(false);
            if (current is null || new PodView(current.Json).Metadata.Uid != uid)
            {
                return;
            }
            try
            {
                await _client.DeleteAsync(current, ct).ConfigureAwait(false);
                return;
            }
            catch (StoreConflictException)
            {
                // Written meanwhile (a status update): read again.
            }
            catch (StoreNotFoundException)
            {
                return;
            }
        }
    }

    private async Task TeardownAsync(PodRecord rec, CancellationToken ct)
    {
        if (_terminating.Remove(rec.Uid, out var t))
        {
            await t.Force.CancelAsync().ConfigureAwait(false);
            t.Force.Dispose();
        }
        // The whole process group of each container, so a shell's children do not outlive the pod.
        await StopGracefullyAsync(rec.Containers, DateTimeOffset.UtcNow.AddSeconds(2), CancellationToken.None).ConfigureAwait(false);
        foreach (var p in rec.Containers)
        {
            Procs.TryReap(p.Pid);
        }
        try
        {
            _cni.Del(Conflist, new CniRuntimeConf(rec.Uid, LabNetwork.NetnsPath(rec.Netns), "eth0"));
        }
        catch (Exception e) when (e is CniClientException or IOException)
        {
            Log($"DEL {rec.Namespace}/{rec.Name}: {e.Message}");
        }
        LabNetwork.DeleteNetns(rec.Netns);
        rec.Delete(_lab.Name, _node.Name);
        _pods.Remove(rec.Uid);
        _views.Remove(rec.Uid);
        _writtenReady.Remove(rec.Uid);
        _probes.Forget(rec.Uid);
        Log($"removed {rec.Namespace}/{rec.Name}");
    }

    /// <summary>Readiness (processes up, declared ports listening) and restarts of exited containers.</summary>
    private async Task SyncStatusAsync(CancellationToken ct)
    {
        foreach (var (uid, t) in _terminating.Where(kv => kv.Value.Stopped.IsCompleted).ToList())
        {
            await FinishTerminationAsync(uid, t, ct).ConfigureAwait(false);
        }
        foreach (var (uid, (notBefore, _)) in _retry.ToList())
        {
            if (DateTimeOffset.UtcNow < notBefore)
            {
                continue;
            }
            var (pods, _) = await _client.ListAsync(Kinds.Pod, null, ct).ConfigureAwait(false);
            var pod = pods.Select(p => new PodView(p.Json)).FirstOrDefault(p => p.Metadata.Uid == uid && p.NodeName == _node.Name);
            if (pod is null)
            {
                _retry.Remove(uid);
            }
            else
            {
                await EnsureAsync(pod, ct).ConfigureAwait(false);
            }
        }
        foreach (var rec in _pods.Values.ToList())
        {
            if (rec.PodIp is null)
            {
                continue;
            }
            if (!_views.TryGetValue(rec.Uid, out var pod))
            {
                // Re-adopted after a restart and not seen since: read it once.
                var current = await _client.GetAsync(Kinds.Pod, rec.Namespace, rec.Name, ct).ConfigureAwait(false);
                if (current is null || new PodView(current.Json).Metadata.Uid != rec.Uid)
                {
                    continue; // deleted: the watch tears it down
                }
                _views[rec.Uid] = pod = new PodView(current.Json);
            }
            // A terminating pod's containers are not restarted; its readiness keeps following them
            // (as the kubelet's probes keep running), so its endpoint stays "serving" until they stop.
            var record = _terminating.ContainsKey(rec.Uid) ? rec : RestartExited(pod, rec);
            bool ready = IsReady(pod, record);
            if (_writtenReady.TryGetValue(rec.Uid, out bool written) && written == ready)
            {
                continue;
            }
            await WriteStatusAsync(pod, record, ready, null, ct).ConfigureAwait(false);
            _writtenReady[rec.Uid] = ready;
        }
    }

    private PodRecord RestartExited(PodView pod, PodRecord rec)
    {
        var procs = rec.Containers.ToList();
        bool changed = false;
        for (int i = 0; i < procs.Count; i++)
        {
            if (!Procs.IsAlive(procs[i]))
            {
                Procs.TryReap(procs[i].Pid);
                if (pod.RestartPolicy != "Never" && pod.Containers.FirstOrDefault(c => "container:" + c.Name == procs[i].Role) is { } c)
                {
                    procs[i] = StartContainer(pod, c, rec.Netns);
                    changed = true;
                    Log($"restarted {pod}/{c.Name}");
                }
            }
        }
        if (!changed)
        {
            return rec;
        }
        var updated = rec with { Containers = procs };
        updated.Save(_lab.Name, _node.Name);
        _pods[rec.Uid] = updated;
        return updated;
    }

    /// <summary>
    /// Processes up, and each container ready: by its readinessProbe when it has one (<see cref="ReadinessProbes"/>),
    /// else, for a container without a command, its declared ports listening.
    /// </summary>
    private bool IsReady(PodView pod, PodRecord rec)
    {
        if (rec.Containers.Count == 0 || !rec.Containers.All(Procs.IsAlive))
        {
            return false;
        }
        bool probesReady = true;
        foreach (var c in pod.Containers.Where(c => c.HasReadinessProbe))
        {
            // Every probe is asked (not short-circuited), so each keeps its own schedule.
            if (rec.Containers.FirstOrDefault(p => p.Role == "container:" + c.Name) is { } proc)
            {
                probesReady &= _probes.IsReady(pod, rec, c, proc, rec.Netns);
            }
        }
        if (!probesReady)
        {
            return false;
        }
        var wanted = pod.Containers.Where(c => c.Command.Count == 0 && !c.HasReadinessProbe)
            .SelectMany(c => c.Ports)
            .Where(p => p.Protocol is "TCP" or "UDP") // SCTP: this kernel has no SCTP sockets (DESIGN.md §7)
            .Select(p => (p.ContainerPort, p.Protocol))
            .ToList();
        if (wanted.Count == 0)
        {
            return true;
        }
        var listening = Listening.Ports(rec.Containers[0].Pid);
        return wanted.All(listening.Contains);
    }

    private Task<bool> WriteStatusAsync(PodView pod, PodRecord rec, bool ready, string? reason, CancellationToken ct) =>
        _client.UpdateLoopAsync(Kinds.Pod, rec.Namespace, rec.Name, json =>
        {
            if (json["metadata"]?["uid"]?.GetValue<string>() != rec.Uid)
            {
                return false;
            }
            var status = json["status"] as JsonObject ?? [];
            string phase = reason is null ? (rec.PodIp is null ? "Pending" : "Running") : "Pending";
            string? oldReason = new PodView(json).Conditions.FirstOrDefault(c => c.Type == "Ready")?.Message;
            bool same = status["phase"]?.GetValue<string>() == phase
                && status["podIP"]?.GetValue<string>() == rec.PodIp
                && new PodView(json).IsReady == ready
                && oldReason == reason;
            if (same)
            {
                return false;
            }
            string now = Timestamps.Format(DateTimeOffset.UtcNow);
            var newStatus = new JsonObject
            {
                ["phase"] = phase,
                ["hostIP"] = _node.Ip,
                ["hostIPs"] = new JsonArray(new JsonObject { ["ip"] = _node.Ip }),
            };
            if (rec.PodIp is not null)
            {
                newStatus["podIP"] = rec.PodIp;
                newStatus["podIPs"] = new JsonArray(new JsonObject { ["ip"] = rec.PodIp });
            }
            newStatus["startTime"] = status["startTime"]?.DeepClone() ?? now;
            var conditions = new JsonArray();
            foreach (var type in s_conditionTypes)
            {
                bool value = type is "PodScheduled" or "Initialized" || ready;
                var cond = new JsonObject { ["type"] = type, ["status"] = value ? "True" : "False", ["lastTransitionTime"] = now };
                if (!value && reason is not null)
                {
                    cond["reason"] = "NetworkSetupFailed";
                    cond["message"] = reason;
                }
                conditions.Add((JsonNode)cond);
            }
            newStatus["conditions"] = conditions;
            json["status"] = newStatus;
            return true;
        }, ct);

    private Task<bool> SetNodeReadyAsync(CancellationToken ct) =>
        _client.UpdateLoopAsync(Kinds.Node, null, _node.Name, json =>
        {
            string now = Timestamps.Format(DateTimeOffset.UtcNow);
            var status = json["status"] as JsonObject ?? [];
            json["status"] = status;
            status["conditions"] = new JsonArray(new JsonObject
            {
                ["type"] = "Ready",
                ["status"] = "True",
                ["reason"] = "KubeletReady",
                ["message"] = "lab kubelet is posting ready status",
                ["lastHeartbeatTime"] = now,
                ["lastTransitionTime"] = now,
            });
            status["nodeInfo"] = new JsonObject { ["kubeletVersion"] = "trellis-lab", ["kernelVersion"] = Environment.OSVersion.Version.ToString() };
            // Status is the kubelet's to write (admission strips it from manifests), addresses included.
            status["addresses"] = new JsonArray(
                new JsonObject { ["type"] = "InternalIP", ["address"] = _node.Ip },
                new JsonObject { ["type"] = "Hostname", ["address"] = _node.Name });
            return true;
        }, ct);

    private void Log(string message) =>
        _log.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} kubelet {_node.Name}: {message}");
}
