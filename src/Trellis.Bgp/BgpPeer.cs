using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Trellis.Bgp.Fsm;
using Trellis.Bgp.Session;
using Trellis.Bgp.Wire;

namespace Trellis.Bgp;

/// <summary>
/// One neighbour: its FSM, its Adj-RIB-In, and the graceful-restart bookkeeping of a receiving
/// speaker (RFC 4724 §4.2). FSM callbacks arrive under the FSM's lock; <see cref="_ribLock"/> only
/// guards readers (status, snapshots) against them.
/// </summary>
internal sealed class BgpPeer : IBgpFsmHost, IDisposable
{
    private readonly BgpSpeaker _speaker;
    private readonly Lock _ribLock = new();
    private readonly Dictionary<IPNetwork, BgpRoute> _adjRibIn = [];
    private readonly HashSet<IPNetwork> _stale = [];
    private readonly ITimer _staleTimer;
    private BgpSessionInfo? _session;
    private int _advertised;
    private readonly HashSet<AfiSafi> _endOfRib = [];
    private const int AttributeCacheLimit = 16_384;
    private readonly Dictionary<string, PathAttributes> _attributeCache = new(StringComparer.Ordinal);
    private uint _peerRouterId;
    private int _connecting;

    public BgpPeer(BgpSpeaker speaker, BgpPeerConfig config, BgpLocalSettings local)
    {
        _speaker = speaker;
        Config = config;
        Fsm = new BgpFsm(local, config.Asn, config.Passive, speaker.Options.Time, this, speaker.Options.ConnectRetryMin, speaker.Options.ConnectRetryMax);
        _staleTimer = speaker.Options.Time.CreateTimer(_ => Fsm.Locked(DropAllStale), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public BgpPeerConfig Config { get; }

    public BgpFsm Fsm { get; }

    public bool IsInternal => Config.Asn == _speaker.Options.Asn;

    public BgpPeerStatus Status()
    {
        lock (_ribLock)
        {
            var session = _session;
            return new BgpPeerStatus(Config.Address, Config.Asn, Fsm.State, Fsm.EstablishedAt, _adjRibIn.Count, _advertised, _stale.Count, Fsm.LastError)
            {
                EndOfRibReceived = session is not null && session.Families.All(_endOfRib.Contains),
                RouteReflectorClient = Config.RouteReflectorClient,
            };
        }
    }

    public List<BgpRoute> Routes()
    {
        lock (_ribLock)
        {
            return [.. _adjRibIn.Values];
        }
    }

    public void StartConnect()
    {
        if (Interlocked.Exchange(ref _connecting, 1) == 1)
        {
            return;
        }
        _ = Task.Run(ConnectAsync);
    }

    private async Task ConnectAsync()
    {
        Socket? socket = null;
        try
        {
            socket = _speaker.CreateSocket(Config.Address.AddressFamily);
            if (Config.Password is not null)
            {
                TcpMd5.SetKey(socket, Config.Address, Config.Password);
            }
            if (Config.LocalAddress is { } local)
            {
                socket.Bind(new IPEndPoint(local, 0));
            }
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await socket.ConnectAsync(new IPEndPoint(Config.Address, Config.Port), timeout.Token).ConfigureAwait(false);
            var transport = new SocketTransport(socket, outgoing: true);
            socket = null;
            transport.Start(Fsm);
            Fsm.ConnectionMade(transport);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            Fsm.ConnectFailed(e.Message);
        }
        finally
        {
            socket?.Dispose();
            Volatile.Write(ref _connecting, 0);
        }
    }

    public void Accept(Socket socket)
    {
        var transport = new SocketTransport(socket, outgoing: false);
        transport.Start(Fsm);
        Fsm.ConnectionMade(transport);
    }

    public void Established(BgpSessionInfo session)
    {
        lock (_ribLock)
        {
            _endOfRib.Clear();
        }
        _session = session;
        _peerRouterId = session.PeerRouterId;
        _speaker.LogLine($"peer {Config.Address}: established (AS {session.PeerAsn}, hold {session.HoldTime}s, {string.Join(',', session.Families)})");
        var gr = session.PeerGracefulRestart;
        // RFC 4724 §4.2: stale routes of a family the peer no longer preserves forwarding for go at once.
        var dropped = new List<IPNetwork>();
        lock (_ribLock)
        {
            foreach (var prefix in _stale.ToList())
            {
                var family = AfiSafi.Of(prefix);
                if (gr is null || !gr.Families.Any(f => f.Family == family && f.ForwardingPreserved) || !session.Families.Contains(family))
                {
                    _stale.Remove(prefix);
                    _adjRibIn.Remove(prefix);
                    dropped.Add(prefix);
                }
            }
            if (_stale.Count == 0)
            {
                _staleTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
        Notify([], dropped);
        SendFullTable(session.Families);
    }

    public void RouteRefreshRequested(AfiSafi family) => SendFullTable([family]);

    /// <summary>Our whole Adj-RIB-Out for these families, each followed by End-of-RIB.</summary>
    internal void SendFullTable(IEnumerable<AfiSafi> families)
    {
        if (_session is not { } session)
        {
            return;
        }
        var messages = new List<byte[]>();
        int count = 0;
        foreach (var family in families)
        {
            foreach (var group in _speaker.Originated().Where(o => AfiSafi.Of(o.Key) == family).GroupBy(o => o.Value))
            {
                var prefixes = group.Select(g => g.Key).ToList();
                if (AttributesFor(session, family, group.Key) is { } attributes)
                {
                    messages.AddRange(UpdatePacker.Announce(attributes, prefixes, family, session.FourOctetAs));
                    count += prefixes.Count;
                }
            }
            if (_speaker.Reflector is { } reflector)
            {
                foreach (var (attributes, prefixes) in reflector.TableFor(this))
                {
                    var ofFamily = prefixes.Where(p => AfiSafi.Of(p) == family).ToList();
                    if (ofFamily.Count > 0)
                    {
                        messages.AddRange(UpdatePacker.Announce(attributes, ofFamily, family, session.FourOctetAs));
                        count += ofFamily.Count;
                    }
                }
            }
            messages.Add(UpdateMessage.EndOfRib(family).ToBytes());
        }
        Fsm.Send(messages);
        lock (_ribLock)
        {
            _advertised = count;
        }
    }

    internal void SendAnnounce(IReadOnlyList<IPNetwork> prefixes, IPAddress? nextHop)
    {
        if (_session is not { } session)
        {
            return;
        }
        foreach (var family in prefixes.Select(AfiSafi.Of).Distinct())
        {
            if (session.Families.Contains(family) && AttributesFor(session, family, nextHop) is { } attributes)
            {
                var ofFamily = prefixes.Where(p => AfiSafi.Of(p) == family).ToList();
                if (Fsm.Send(UpdatePacker.Announce(attributes, ofFamily, family, session.FourOctetAs)))
                {
                    Interlocked.Add(ref _advertised, ofFamily.Count);
                }
            }
        }
    }

    /// <summary>Routes a reflector passes on: attributes as prepared by <see cref="RouteReflector"/> (next hop unchanged).</summary>
    internal void SendReflected(PathAttributes attributes, IReadOnlyList<IPNetwork> prefixes)
    {
        if (_session is not { } session)
        {
            return;
        }
        foreach (var family in prefixes.Select(AfiSafi.Of).Distinct())
        {
            if (session.Families.Contains(family))
            {
                var ofFamily = prefixes.Where(p => AfiSafi.Of(p) == family).ToList();
                if (Fsm.Send(UpdatePacker.Announce(attributes, ofFamily, family, session.FourOctetAs)))
                {
                    Interlocked.Add(ref _advertised, ofFamily.Count);
                }
            }
        }
    }

    internal void SendWithdraw(IReadOnlyList<IPNetwork> prefixes)
    {
        if (_session is not { } session)
        {
            return;
        }
        foreach (var family in prefixes.Select(AfiSafi.Of).Distinct())
        {
            if (session.Families.Contains(family))
            {
                var ofFamily = prefixes.Where(p => AfiSafi.Of(p) == family).ToList();
                if (Fsm.Send(UpdatePacker.Withdraw(ofFamily, family)))
                {
                    Interlocked.Add(ref _advertised, -ofFamily.Count);
                }
            }
        }
    }

    private PathAttributes? AttributesFor(BgpSessionInfo session, AfiSafi family, IPAddress? nextHop)
    {
        bool v6 = family == AfiSafi.Ipv6Unicast;
        var wanted = v6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
        var hop = nextHop is { } h && h.AddressFamily == wanted ? h : session.Transport.LocalAddress is { } l && l.AddressFamily == wanted ? l : null;
        if (hop is null)
        {
            // No next hop of this family on this session (an IPv6 prefix over IPv4 transport, no address given).
            return null;
        }
        var attributes = new PathAttributes
        {
            Origin = BgpOrigin.Igp,
            AsPath = IsInternal ? [] : [new AsPathSegment(AsPathSegment.Sequence, [_speaker.Options.Asn])],
            LocalPref = IsInternal ? 100 : null,
        };
        if (v6)
        {
            attributes.MpReach = new MpReach { Family = family, NextHop = hop };
        }
        else
        {
            attributes.NextHop = hop;
        }
        return attributes;
    }

    public void UpdateReceived(UpdateMessage update)
    {
        foreach (var problem in update.Problems)
        {
            _speaker.LogLine($"peer {Config.Address}: {problem}");
        }
        if (update.IsEndOfRib(out var eor))
        {
            EndOfRib(eor);
            return;
        }
        var withdrawn = new List<IPNetwork>();
        var added = new List<BgpRoute>();
        lock (_ribLock)
        {
            foreach (var prefix in update.AllWithdrawn)
            {
                _stale.Remove(prefix);
                if (_adjRibIn.Remove(prefix))
                {
                    withdrawn.Add(prefix);
                }
            }
            if (update.Attributes is { } attributes)
            {
                // Every route of this UPDATE, and of earlier UPDATEs with the same attributes, points at one
                // shared attribute object (and next hop).
                var shared = Intern(attributes.WithoutNlri());
                foreach (var prefix in update.Nlri)
                {
                    Learn(prefix, shared.NextHop, shared, update.TreatAsWithdraw, added, withdrawn);
                }
                if (attributes.MpReach is { } reach && _session!.Families.Contains(reach.Family))
                {
                    foreach (var prefix in reach.Nlri)
                    {
                        Learn(prefix, shared.MpReach!.NextHop, shared, update.TreatAsWithdraw, added, withdrawn);
                    }
                }
            }
        }
        Notify(added, withdrawn);
    }

    /// <summary>
    /// The attribute object already held for identical attributes, as BIRD's attribute cache does: a full table
    /// is mostly a few attribute sets, and peers often send one prefix per UPDATE (GoBGP does for a dumped
    /// table), so without this each route would carry its own copy. Keyed by the attributes' wire form;
    /// cleared when it grows past a bound, which costs sharing, never correctness.
    /// </summary>
    private PathAttributes Intern(PathAttributes attributes)
    {
        // Received attributes fit in 4096 bytes; written back with 4-octet AS numbers they at most double.
        byte[] buffer = ArrayPool<byte>.Shared.Rent(2 * BgpHeader.MaxMessageLength);
        try
        {
            var writer = new BgpWriter(buffer);
            attributes.Write(ref writer, fourOctetAs: true);
            string key = Convert.ToBase64String(writer.Written);
            if (_attributeCache.TryGetValue(key, out var known))
            {
                return known;
            }
            if (_attributeCache.Count >= AttributeCacheLimit)
            {
                _attributeCache.Clear();
            }
            _attributeCache[key] = attributes;
            return attributes;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Learn(IPNetwork prefix, IPAddress? nextHop, PathAttributes shared, bool treatAsWithdraw, List<BgpRoute> added, List<IPNetwork> withdrawn)
    {
        _stale.Remove(prefix);
        // RFC 4456 §8: our own route reflected back (our ORIGINATOR_ID or cluster id on it) is ignored.
        if (treatAsWithdraw || nextHop is null || _speaker.IsOwnLoop(shared))
        {
            if (_adjRibIn.Remove(prefix))
            {
                withdrawn.Add(prefix);
            }
            return;
        }
        var route = new BgpRoute(prefix, nextHop, shared);
        _adjRibIn[prefix] = route;
        added.Add(route);
    }

    private void EndOfRib(AfiSafi family)
    {
        // RFC 4724 §4.2: routes still stale once the peer has sent everything are gone.
        var dropped = new List<IPNetwork>();
        lock (_ribLock)
        {
            _endOfRib.Add(family);
            foreach (var prefix in _stale.Where(p => AfiSafi.Of(p) == family).ToList())
            {
                _stale.Remove(prefix);
                _adjRibIn.Remove(prefix);
                dropped.Add(prefix);
            }
            if (_stale.Count == 0)
            {
                _staleTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
        _speaker.LogLine($"peer {Config.Address}: End-of-RIB {family}, {dropped.Count} stale routes removed");
        Notify([], dropped);
    }

    public void Down(string reason, bool peerMayRestart)
    {
        var session = _session;
        _session = null;
        _speaker.LogLine($"peer {Config.Address}: down: {reason}" + (peerMayRestart ? " (keeping its routes as stale)" : ""));
        lock (_ribLock)
        {
            _advertised = 0;
        }
        if (peerMayRestart && _speaker.Options.GracefulRestart && session?.PeerGracefulRestart is { } gr)
        {
            lock (_ribLock)
            {
                foreach (var prefix in _adjRibIn.Keys)
                {
                    if (gr.Covers(AfiSafi.Of(prefix)))
                    {
                        _stale.Add(prefix);
                    }
                }
            }
            // Routes of families the peer did not cover go now; the rest wait up to its restart time.
            DropWhere(p => !_stale.Contains(p));
            _staleTimer.Change(TimeSpan.FromSeconds(gr.RestartTime), Timeout.InfiniteTimeSpan);
            return;
        }
        if (session is null && Fsm.IsStarted)
        {
            // A failed attempt to re-establish (a collision, a refused OPEN) while the peer restarts: what is
            // left are its stale routes, which stay until End-of-RIB or its restart time (RFC 4724 §4.2).
            DropWhere(p => !_stale.Contains(p));
            return;
        }
        DropWhere(_ => true);
    }

    private void DropAllStale()
    {
        _speaker.LogLine($"peer {Config.Address}: restart time over, dropping {_stale.Count} stale routes");
        DropWhere(p => _stale.Contains(p));
    }

    private void DropWhere(Func<IPNetwork, bool> predicate)
    {
        List<IPNetwork> dropped;
        lock (_ribLock)
        {
            dropped = [.. _adjRibIn.Keys.Where(predicate)];
            foreach (var prefix in dropped)
            {
                _adjRibIn.Remove(prefix);
                _stale.Remove(prefix);
            }
        }
        Notify([], dropped);
    }

    private void Notify(List<BgpRoute> added, List<IPNetwork> withdrawn)
    {
        if (added.Count > 0 || withdrawn.Count > 0)
        {
            _speaker.RaiseRoutesChanged(new BgpRoutesChanged(Config.Address, added, withdrawn), _peerRouterId, Config.RouteReflectorClient, IsInternal);
        }
    }

    public void Dispose()
    {
        _staleTimer.Dispose();
        Fsm.Dispose();
    }
}
