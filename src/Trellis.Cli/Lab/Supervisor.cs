using System.Globalization;
using System.Runtime.InteropServices;
using Trellis.Core.Lab;

namespace Trellis.Cli.Lab;

/// <summary>
/// One per lab: starts the lab's daemons (the lab's etcd members, when it has them, and the
/// controller inside the underlay netns; a kubelet and trellisd inside each node's netns) detached with their own log files, and
/// restarts any that exits with exponential backoff (1 s doubling to 30 s, reset after a minute
/// of good health), as systemd would on a real node. The running set is written to procs.json.
/// </summary>
public sealed class Supervisor
{
    private static readonly TimeSpan s_maxBackoff = TimeSpan.FromSeconds(30);
    private readonly LabState _lab;
    private readonly string _trellis;
    private readonly TextWriter _log;
    private readonly List<Slot> _slots = [];
    private volatile bool _reload;
    private static readonly string[] s_directRouting = ["--direct-routing"];
    private static readonly string[] s_masqueradeAll = ["--masquerade-all"];

    public Supervisor(LabState lab, string binDir, TextWriter log)
    {
        _lab = lab;
        _trellis = Path.Combine(binDir, "trellis");
        _log = log;
        foreach (var m in lab.EtcdMembers)
        {
            // Restarted on the same data dir: the member rejoins with its raft log.
            _slots.Add(new Slot("etcd", LabEtcd.SlotNode(m), LabEtcd.Argv(lab, m)));
        }
        // In the underlay, where the lab's etcd members are (it only talks to the store).
        _slots.Add(new Slot("controller", null,
            ["nsenter", "--net=" + LabNetwork.NetnsPath(lab.UnderlayNetns), "--", _trellis, "lab", "controller", "--name", lab.Name]));
        // The outside host's resolver, the cluster DNS pods' upstream (DESIGN.md §5).
        _slots.Add(new Slot("dns-stub", null,
            ["nsenter", "--net=" + LabNetwork.NetnsPath(lab.UnderlayNetns), "--", _trellis, "lab", "dns-stub", "--name", lab.Name]));
        AddNodeSlots(lab);
    }

    /// <summary>A kubelet and a trellisd for each node that has none yet (all of them at start; a node added by a later `lab up` then).</summary>
    private void AddNodeSlots(LabState lab)
    {
        string binDir = Path.GetDirectoryName(_trellis)!;
        foreach (var n in lab.Nodes.Where(n => !_slots.Any(s => s.Node == n.Name && s.Role == "kubelet")))
        {
            // nsenter execs the kubelet after joining the node's netns, so the recorded PID is the kubelet's
            // and every thread the runtime starts lives in that netns.
            _slots.Add(new Slot("kubelet", n.Name,
                ["nsenter", "--net=" + LabNetwork.NetnsPath(n.Netns), "--", _trellis, "lab", "kubelet", "--name", lab.Name, "--node", n.Name]));
            // The node agent: cross-node routes and the node's nftables table. A short resync: the lab is where drift is made on purpose.
            _slots.Add(new Slot("trellisd", n.Name,
                ["nsenter", "--net=" + LabNetwork.NetnsPath(n.Netns), "--", Path.Combine(binDir, "trellisd"), "--store", lab.Store, "--node", n.Name,
                 "--underlay", "eth0", "--backend", lab.Backend, "--cluster-cidr", lab.ClusterCidr, "--resync", "2s",
                 "--lease-subnet-length", lab.NodeSubnetLength.ToString(System.Globalization.CultureInfo.InvariantCulture), "--prefer-subnet", n.PodCidr,
                 "--cni-conf", Path.Combine(n.CniConfDir, "10-trellis.conflist"), "--cni-template", LabLifecycle.ConflistTemplatePath(lab.Name, n.Name),
                 "--service-cidr", lab.ServiceCidr,
                 // kube-proxy's metrics port, inside the node's netns: curl http://<node ip>:10249/metrics
                 "--metrics", "0.0.0.0:10249",
                 .. (lab.DirectRouting ? s_directRouting : []),
                 .. (lab.Backend == "bgp" ? ["--bgp-status", Path.Combine(LabLifecycle.NodeDir(lab.Name, n.Name), "bgp.json")] : Array.Empty<string>()),
                 .. (lab.MasqueradeAll ? s_masqueradeAll : []),
                 .. (lab.NodePortAddresses.Count > 0 ? ["--nodeport-addresses", string.Join(',', lab.NodePortAddresses)] : Array.Empty<string>())]));
        }
    }

    public async Task<int> RunAsync(CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        // `lab up` sends SIGHUP after adding nodes: reload the state now rather than at the next poll.
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; _reload = true; });
        // Daemons of a previous supervisor (killed, not stopped) are adopted, not duplicated.
        foreach (var old in LabProcs.Load(_lab.Name).Procs)
        {
            if (_slots.FirstOrDefault(s => s.Role == old.Role && s.Node == old.Node) is { } slot && Procs.IsAlive(old))
            {
                slot.Current = old;
                slot.StartedAt = DateTimeOffset.UtcNow;
            }
        }
        var stateCheckedAt = DateTimeOffset.UtcNow;
        while (!stop.IsCancellationRequested)
        {
            bool changed = false;
            if (_reload || DateTimeOffset.UtcNow - stateCheckedAt > TimeSpan.FromSeconds(1))
            {
                _reload = false;
                // `lab up --nodes N+1` on a running lab adds nodes to the state: give them daemons.
                stateCheckedAt = DateTimeOffset.UtcNow;
                if (LabState.Load(_lab.Name) is { } current)
                {
                    AddNodeSlots(current);
                }
            }
            foreach (var s in _slots)
            {
                if (s.Current is { } cur && Procs.IsAlive(cur))
                {
                    if (DateTimeOffset.UtcNow - s.StartedAt > TimeSpan.FromMinutes(1))
                    {
                        s.Backoff = TimeSpan.Zero;
                    }
                    continue;
                }
                if (s.Current is { } dead)
                {
                    Procs.TryReap(dead.Pid);
                    Log($"{s.Name} (pid {dead.Pid}) exited; restarting in {s.Backoff.TotalSeconds:0}s");
                    s.NotBefore = DateTimeOffset.UtcNow + s.Backoff;
                    s.Backoff = s.Backoff == TimeSpan.Zero ? TimeSpan.FromSeconds(1) : TimeSpan.FromTicks(Math.Min(s.Backoff.Ticks * 2, s_maxBackoff.Ticks));
                    s.Current = null;
                    changed = true;
                }
                if (DateTimeOffset.UtcNow >= s.NotBefore)
                {
                    s.Current = Procs.SpawnDetached(s.Role, s.Argv, $"{LabNames.LogDir(_lab.Name)}/{s.Name}.log", s.Node);
                    s.StartedAt = DateTimeOffset.UtcNow;
                    Log($"started {s.Name} (pid {s.Current.Pid})");
                    changed = true;
                }
            }
            if (changed)
            {
                new LabProcs(_slots.Where(s => s.Current is not null).Select(s => s.Current!).ToList()).Save(_lab.Name);
            }
            try
            {
                await Task.Delay(_reload ? 0 : 100, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        Log("stopping daemons");
        foreach (var s in _slots.Where(s => s.Current is not null))
        {
            Procs.Stop(s.Current!, TimeSpan.FromSeconds(3));
            Procs.TryReap(s.Current!.Pid);
        }
        new LabProcs([]).Save(_lab.Name);
        return 0;
    }

    private void Log(string message) =>
        _log.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} supervisor: {message}");

    private sealed class Slot(string role, string? node, IReadOnlyList<string> argv)
    {
        public string Role { get; } = role;
        public string? Node { get; } = node;
        public IReadOnlyList<string> Argv { get; } = argv;
        public string Name => Node is null ? Role : $"{Role}-{Node}";
        public ProcRecord? Current { get; set; }
        public DateTimeOffset StartedAt { get; set; }
        public DateTimeOffset NotBefore { get; set; }
        public TimeSpan Backoff { get; set; }
    }
}
