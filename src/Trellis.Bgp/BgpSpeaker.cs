using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Trellis.Bgp.Fsm;
using Trellis.Bgp.Session;
using Trellis.Bgp.Wire;

namespace Trellis.Bgp;

/// <summary>
/// A BGP-4 speaker: a listener, one FSM per configured peer, each peer's Adj-RIB-In, and the prefixes
/// this node originates (its Adj-RIB-Out, the same for every peer). It does not re-advertise learned
/// routes: a Trellis node originates its own pod CIDRs and installs what it learns.
/// </summary>
public sealed class BgpSpeaker : IAsyncDisposable
{
    private readonly ConcurrentDictionary<IPAddress, BgpPeer> _peers = new();
    private readonly ConcurrentDictionary<IPNetwork, IPAddress?> _originated = new();
    private readonly BgpLocalSettings _local;
    private readonly RouteReflector? _reflector;
    private Socket? _listener;
    private Task? _acceptLoop;

    public BgpSpeaker(BgpSpeakerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Asn == 0)
        {
            throw new ArgumentException("asn: must not be 0", nameof(options));
        }
        if (options.RouterId.AddressFamily != AddressFamily.InterNetwork || options.RouterId.Equals(IPAddress.Any))
        {
            throw new ArgumentException("routerId: must be a non-zero IPv4 address", nameof(options));
        }
        if (options.HoldTime is 1 or 2)
        {
            throw new ArgumentException("holdTime: must be 0 or at least 3 seconds", nameof(options));
        }
        Options = options;
        var gr = options.GracefulRestart
            ? new GracefulRestartCapability(options.Restarting, Notification: false, options.RestartTime, [.. options.Families.Select(f => new GracefulRestartFamily(f, options.ForwardingPreserved))])
            : null;
        _local = new BgpLocalSettings(options.Asn, OpenMessage.RouterIdOf(options.RouterId), options.HoldTime, options.Families, gr);
        if (options.RouteReflectorClusterId is { } clusterId)
        {
            _reflector = new RouteReflector(this, clusterId);
        }
    }

    public BgpSpeakerOptions Options { get; }

    /// <summary>Raised after a peer's Adj-RIB-In changed: new or replaced routes, and withdrawn prefixes.</summary>
    public event Action<BgpRoutesChanged>? RoutesChanged;

    /// <summary>The listening port actually bound (useful with port 0 in tests).</summary>
    public int ListenPort => (_listener?.LocalEndPoint as IPEndPoint)?.Port ?? 0;

    public void Start()
    {
        if (Options.Listen is { } listen)
        {
            var listener = CreateSocket(listen.AddressFamily);
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            if (listen.AddressFamily == AddressFamily.InterNetworkV6)
            {
                listener.DualMode = true;
            }
            listener.Bind(listen);
            listener.Listen(16);
            _listener = listener;
            foreach (var peer in _peers.Values)
            {
                SetListenerKey(peer.Config);
            }
            _acceptLoop = Task.Run(AcceptLoopAsync);
        }
        foreach (var peer in _peers.Values)
        {
            peer.Fsm.Start();
        }
    }

    public void AddPeer(BgpPeerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Asn == 0)
        {
            throw new ArgumentException("peer asn: must not be 0", nameof(config));
        }
        var peer = new BgpPeer(this, config, _local);
        if (!_peers.TryAdd(Normalize(config.Address), peer))
        {
            peer.Dispose();
            throw new ArgumentException($"peer address: {config.Address} is already configured", nameof(config));
        }
        if (_listener is not null)
        {
            SetListenerKey(config);
            peer.Fsm.Start();
        }
    }

    public void RemovePeer(IPAddress address)
    {
        if (_peers.TryRemove(Normalize(address), out var peer))
        {
            peer.Fsm.Stop(BgpError.PeerDeconfigured);
            peer.Dispose();
        }
    }

    /// <summary>Originates a prefix to every peer; next hop is <paramref name="nextHop"/> or the session's own address.</summary>
    public void Announce(IPNetwork prefix, IPAddress? nextHop = null)
    {
        _originated[prefix] = nextHop;
        foreach (var peer in _peers.Values)
        {
            peer.SendAnnounce([prefix], nextHop);
        }
    }

    public void Withdraw(IPNetwork prefix)
    {
        if (_originated.TryRemove(prefix, out _))
        {
            foreach (var peer in _peers.Values)
            {
                peer.SendWithdraw([prefix]);
            }
        }
    }

    /// <summary>Asks a peer to send its routes again (RFC 2918); false if the session is not up or lacks the capability.</summary>
    public bool RequestRefresh(IPAddress peer, AfiSafi family)
    {
        if (!_peers.TryGetValue(Normalize(peer), out var p) || p.Fsm.Session is not { RouteRefresh: true })
        {
            return false;
        }
        Span<byte> buffer = stackalloc byte[BgpHeader.Length + 4];
        int length = new RouteRefreshMessage(family).Encode(buffer);
        return p.Fsm.Send(buffer[..length].ToArray());
    }

    public IReadOnlyList<BgpPeerStatus> Peers() => [.. _peers.Values.Select(p => p.Status()).OrderBy(s => s.Address.ToString(), StringComparer.Ordinal)];

    public BgpPeerStatus? Peer(IPAddress address) => _peers.TryGetValue(Normalize(address), out var p) ? p.Status() : null;

    /// <summary>A snapshot of one peer's Adj-RIB-In.</summary>
    public IReadOnlyList<BgpRoute> RoutesFrom(IPAddress address) => _peers.TryGetValue(Normalize(address), out var p) ? p.Routes() : [];

    /// <summary>Stops every session with a Cease, as an operator shutdown would: peers drop our routes.</summary>
    public ValueTask DisposeAsync() => CloseAsync(graceful: false);

    /// <summary>
    /// Drops every connection without a NOTIFICATION, as a crash or a restart would: peers that do graceful
    /// restart keep our routes until we are back (RFC 4724).
    /// </summary>
    public ValueTask AbortAsync() => CloseAsync(graceful: true);

    private async ValueTask CloseAsync(bool graceful)
    {
        _listener?.Dispose();
        if (_reflector is not null)
        {
            await _reflector.StopAsync().ConfigureAwait(false);
        }
        foreach (var peer in _peers.Values)
        {
            if (graceful)
            {
                peer.Fsm.Abort();
            }
            else
            {
                peer.Fsm.Stop();
            }
        }
        if (_acceptLoop is { } loop)
        {
            await loop.ConfigureAwait(false);
        }
        // Give the write loops a moment to flush the Cease before the process may exit.
        await Task.Delay(50).ConfigureAwait(false);
        foreach (var peer in _peers.Values)
        {
            peer.Dispose();
        }
        _peers.Clear();
    }

    internal IEnumerable<KeyValuePair<IPNetwork, IPAddress?>> Originated() => _originated;

    internal IEnumerable<BgpPeer> PeerObjects() => _peers.Values;

    internal RouteReflector? Reflector => _reflector;

    /// <summary>Our own BGP identifier and, when reflecting, cluster id: a route carrying either has looped (RFC 4456 §8).</summary>
    internal bool IsOwnLoop(PathAttributes attributes) =>
        attributes.OriginatorId == _local.RouterId
        || (Options.RouteReflectorClusterId is { } id && attributes.ClusterList is { } list && Array.IndexOf(list, id) >= 0);

    internal Socket CreateSocket(AddressFamily family)
    {
        Socket Make() => new(family, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        return Options.Namespace is { } ns ? ns.Run(Make) : Make();
    }

    internal void RaiseRoutesChanged(BgpRoutesChanged change, uint peerRouterId, bool fromClient, bool fromInternal)
    {
        _reflector?.Enqueue(change, peerRouterId, fromClient, fromInternal);
        try
        {
            RoutesChanged?.Invoke(change);
        }
#pragma warning disable CA1031 // a subscriber's bug must not take a BGP session down
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogLine("RoutesChanged handler failed: " + e);
        }
    }

    internal void LogLine(string line) => Options.Log?.Invoke(line);

    private void SetListenerKey(BgpPeerConfig config)
    {
        if (config.Password is not null && _listener is not null)
        {
            TcpMd5.SetKey(_listener, config.Address, config.Password);
        }
    }

    private async Task AcceptLoopAsync()
    {
        var listener = _listener!;
        while (true)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            socket.NoDelay = true;
            var remote = Normalize(((IPEndPoint)socket.RemoteEndPoint!).Address);
            if (_peers.TryGetValue(remote, out var peer))
            {
                peer.Accept(socket);
            }
            else
            {
                LogLine($"refused a connection from {remote}: not a configured peer");
                socket.Dispose();
            }
        }
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
