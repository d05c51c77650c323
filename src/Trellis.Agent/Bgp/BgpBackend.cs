using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Trellis.Bgp;
using Trellis.Bgp.Fsm;
using Trellis.Bgp.Wire;
using Trellis.Core.Routing;
using Trellis.Netlink;

namespace Trellis.Agent.Bgp;

/// <summary>
/// trellisd's <c>bgp</c> backend (Calico's model, with our own speaker in place of BIRD): one speaker per node
/// on its underlay address, sessions as <see cref="BgpTopologyCompiler"/> says, this node's pod CIDR
/// originated, and the best learned routes kept in the kernel as <c>PREFIX via NEXTHOP dev eth0 proto 203</c>
/// by <see cref="BgpRouteReconciler"/>. A route loop runs apart from the store loop: routes change when
/// peers speak, not when Nodes change.
/// </summary>
/// <remarks>
/// Graceful restart, both halves: on start, protocol-203 routes already in the kernel mean a previous agent
/// ran here, so the speaker says "restarting, forwarding preserved" (RFC 4724) — peers keep our routes — and
/// deleting routes waits until every peer has sent its whole table (End-of-RIB) or the restart time is over,
/// so an agent restart never takes a route away. On SIGTERM the sessions are dropped without a Cease, as a
/// crash would, so peers keep forwarding to us until we are back; deleting the Node is what withdraws us.
/// </remarks>
internal sealed class BgpBackend : IAsyncDisposable
{
    private readonly string _node;
    private readonly string _device;
    private readonly string? _statusFile;
    private readonly Action<string> _log;
    private readonly RtNetlink _nl;
    private readonly BgpRouteReconciler _routes;
    private readonly SemaphoreSlim _changed = new(0, 1);
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private readonly bool _restarting;
    private readonly Task _loop;
    private BgpSpeaker? _speaker;
    private (uint Asn, IPAddress RouterId, int Port, TimeSpan Hold, TimeSpan Restart, IPAddress? ClusterId)? _speakerKey;
    private Dictionary<IPAddress, BgpPeerSpec> _peers = [];
    private IPNetwork? _originated;
    private (IPAddress Ip, IPNetwork Subnet, IPNetwork PodCidr)? _self;
    private BgpTopology? _topology;
    private bool _initialTablesIn;
    private string? _lastStatus;
    private DateTimeOffset _lastStatusWrite;
    private (IReadOnlyList<BgpPeerStatus> Statuses, int Installed)? _lastMetrics;

    public BgpBackend(string node, string device, string? statusFile, Action<string> log)
    {
        _node = node;
        _device = device;
        _statusFile = statusFile;
        _log = log;
        _nl = RtNetlink.Open();
        _routes = new BgpRouteReconciler(_nl, device);
        _restarting = _routes.Observe().Count > 0;
        if (_restarting)
        {
            _log("bgp: protocol-203 routes are in the kernel: restarting with forwarding preserved (graceful restart)");
        }
        _loop = Task.Run(() => RouteLoopAsync(_stop.Token));
    }

    /// <summary>Brings the speaker and its sessions in line with the topology; called on every store sync.</summary>
    public void Configure(BgpTopology topology, IPAddress selfIp, IPNetwork underlaySubnet, IPNetwork podCidr)
    {
        ArgumentNullException.ThrowIfNull(topology);
        lock (_lock)
        {
            _topology = topology;
            _self = (selfIp, underlaySubnet, podCidr);
            var key = (topology.Asn, selfIp, topology.ListenPort, topology.HoldTime, topology.GracefulRestartTime, topology.ClusterId);
            if (_speaker is null || !_speakerKey.Equals(key)) // Equals, not ==: tuple == compares IPAddress by reference
            {
                if (_speaker is { } old)
                {
                    _log($"bgp: speaker settings changed ({_speakerKey} -> {key}); restarting the speaker");
                    old.AbortAsync().AsTask().GetAwaiter().GetResult();
                }
                _speaker = new BgpSpeaker(new BgpSpeakerOptions
                {
                    Asn = topology.Asn,
                    RouterId = selfIp,
                    Listen = new IPEndPoint(selfIp, topology.ListenPort),
                    HoldTime = (ushort)Math.Clamp(topology.HoldTime.TotalSeconds, 0, ushort.MaxValue),
                    RestartTime = (ushort)Math.Clamp(topology.GracefulRestartTime.TotalSeconds, 1, 4095),
                    Restarting = _restarting && _speakerKey is null,
                    ForwardingPreserved = true,
                    Families = [AfiSafi.Ipv4Unicast],
                    RouteReflectorClusterId = topology.ClusterId is { } id ? OpenMessageRouterId(id) : null,
                    Log = line => _log("bgp: " + line),
                });
                _speaker.RoutesChanged += _ => Signal();
                _speakerKey = key;
                _peers = [];
                _originated = null;
                _speaker.Start();
            }
            var speaker = _speaker;
            var wanted = topology.Peers.ToDictionary(p => p.Address);
            foreach (var (address, old) in _peers)
            {
                if (!wanted.TryGetValue(address, out var now) || now != old)
                {
                    _log($"bgp: removing peer {address} ({old.Source})");
                    speaker.RemovePeer(address);
                }
            }
            foreach (var (address, spec) in wanted)
            {
                if (!_peers.TryGetValue(address, out var old) || old != spec)
                {
                    _log($"bgp: adding peer {address} AS {spec.Asn} ({spec.Source}{(spec.RouteReflectorClient ? ", route-reflector client" : "")})");
                    speaker.AddPeer(new BgpPeerConfig
                    {
                        Address = address,
                        Asn = spec.Asn,
                        Port = spec.Port,
                        Password = spec.Password,
                        LocalAddress = selfIp,
                        RouteReflectorClient = spec.RouteReflectorClient,
                    });
                }
            }
            _peers = wanted;
            if (_originated != podCidr)
            {
                if (_originated is { } was)
                {
                    speaker.Withdraw(was);
                }
                speaker.Announce(podCidr);
                _originated = podCidr;
            }
        }
        Signal();
    }

    private static uint OpenMessageRouterId(IPAddress id) => Trellis.Bgp.Wire.OpenMessage.RouterIdOf(id);

    private void Signal()
    {
        try
        {
            _changed.Release();
        }
        catch (SemaphoreFullException)
        {
            // a sync is already pending
        }
    }

    private async Task RouteLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _changed.WaitAsync(TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
                // Debounce: a full table arrives as many UPDATEs; install it in a few large steps, not 1000 small ones.
                await Task.Delay(20, ct).ConfigureAwait(false);
                SyncRoutes();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // the route loop must outlive a bad sync; the next one retries
            catch (Exception e)
#pragma warning restore CA1031
            {
                _log("bgp: route sync failed: " + e);
            }
        }
    }

    private void SyncRoutes()
    {
        BgpSpeaker? speaker;
        (IPAddress Ip, IPNetwork Subnet, IPNetwork PodCidr)? self;
        BgpTopology? topology;
        lock (_lock)
        {
            speaker = _speaker;
            self = _self;
            topology = _topology;
        }
        if (speaker is null || self is not { } s || topology is null)
        {
            return;
        }
        var statuses = speaker.Peers();
        var learned = new List<BgpLearnedRoute>();
        foreach (var peer in statuses)
        {
            foreach (var r in speaker.RoutesFrom(peer.Address))
            {
                learned.Add(new BgpLearnedRoute(r.Prefix, r.NextHop, peer.Address, r.Attributes.PathAsns.Count(), r.Attributes.LocalPref ?? 100));
            }
        }
        var compilation = BgpRouteCompiler.Compile(s.Ip, s.Subnet, s.PodCidr, _device, learned);
        if (!_initialTablesIn)
        {
            // Graceful restart (receiving side of our own restart): keep what the kernel has until the
            // peers have told us everything, or the restart time is over.
            bool complete = statuses.All(p => p.State == BgpState.Established && p.EndOfRibReceived);
            if (complete || DateTimeOffset.UtcNow - _started > topology.GracefulRestartTime)
            {
                _initialTablesIn = true;
                _log($"bgp: initial tables {(complete ? "complete (End-of-RIB from every peer)" : "not complete, restart time over")}; removing routes no peer has");
            }
        }
        var result = _routes.Sync(compilation.Routes, allowDelete: _initialTablesIn || !_restarting);
        foreach (var line in result.Changes)
        {
            _log("bgp: route " + line);
        }
        lock (_lock)
        {
            _lastMetrics = (statuses, result.Installed);
        }
        WriteStatus(speaker, statuses, topology, compilation, result, s.Ip);
    }

    /// <summary>
    /// The BGP gauges for trellisd's <c>/metrics</c>: peer statuses as of the last route sync (at most a
    /// second old), uptime against the clock now. Nothing before the speaker's first sync.
    /// </summary>
    public void WriteMetrics(StringBuilder text)
    {
        (IReadOnlyList<BgpPeerStatus> Statuses, int Installed)? snapshot;
        lock (_lock)
        {
            snapshot = _lastMetrics;
        }
        if (snapshot is { } m)
        {
            Metrics.BgpMetrics.Write(text, _node, m.Statuses, m.Installed, DateTimeOffset.UtcNow);
        }
    }

    private void WriteStatus(BgpSpeaker speaker, IReadOnlyList<BgpPeerStatus> statuses, BgpTopology topology, BgpRouteCompilation compilation, BgpRouteSyncResult result, IPAddress self)
    {
        if (_statusFile is null)
        {
            return;
        }
        var now = DateTimeOffset.UtcNow;
        Dictionary<IPAddress, BgpPeerSpec> specs;
        lock (_lock)
        {
            specs = _peers;
        }
        string body = BgpStatusJson.Write(_node, speaker.Options, self, topology, statuses, specs, compilation, result, now);
        // Timestamps aside, rewrite only on change, or every 5 s so "updated" shows the agent is alive.
        string withoutTime = BgpStatusJson.StripVolatile(body);
        if (withoutTime == _lastStatus && now - _lastStatusWrite < TimeSpan.FromSeconds(5))
        {
            return;
        }
        _lastStatus = withoutTime;
        _lastStatusWrite = now;
        Directory.CreateDirectory(Path.GetDirectoryName(_statusFile)!);
        AtomicWrite(_statusFile, body);
        AtomicWrite(Path.ChangeExtension(_statusFile, ".prom"), BgpStatusJson.Metrics(_node, statuses, result, now));
    }

    private static void AtomicWrite(string path, string text)
    {
        // Readers see the old file or the new one, never half of one.
        File.WriteAllText(path + ".tmp", text);
        File.Move(path + ".tmp", path, overwrite: true);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        BgpSpeaker? speaker;
        lock (_lock)
        {
            speaker = _speaker;
            _speaker = null;
        }
        if (speaker is not null)
        {
            // No Cease: peers keep our routes for the restart time (graceful restart), the kernel keeps theirs.
            await speaker.AbortAsync().ConfigureAwait(false);
        }
        _nl.Dispose();
        _stop.Dispose();
        _changed.Dispose();
    }

    internal static string Format(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    internal static AddressFamily Family => AddressFamily.InterNetwork;
}
