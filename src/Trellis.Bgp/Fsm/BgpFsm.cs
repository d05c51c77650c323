using Trellis.Bgp.Wire;

namespace Trellis.Bgp.Fsm;

/// <summary>
/// The RFC 4271 §8 state machine for one peer, driven by events and an injected <see cref="TimeProvider"/>
/// (tests advance a fake clock). It owns at most two connections at once: the primary, and a second one
/// that arrived while the primary was in OpenSent/OpenConfirm, until collision resolution (§6.8) keeps one.
/// Every event takes one lock, so socket threads and timer callbacks never interleave.
/// </summary>
public sealed class BgpFsm : IDisposable
{
    /// <summary>Hold time while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).</summary>
    public static readonly TimeSpan LargeHoldTime = TimeSpan.FromMinutes(4);

    private readonly Lock _lock = new();
    private readonly BgpLocalSettings _local;
    private readonly uint _peerAsn;
    private readonly bool _passive;
    private readonly TimeProvider _time;
    private readonly IBgpFsmHost _host;
    private readonly TimeSpan _retryMin;
    private readonly TimeSpan _retryMax;
    private readonly ITimer _connectRetryTimer;
    private readonly ITimer _holdTimer;
    private readonly ITimer _keepaliveTimer;
    private readonly ITimer _restartTimer;
    private IBgpTransport? _primary;
    private IBgpTransport? _secondary;
    private BgpSessionInfo? _pending;
    private BgpSessionInfo? _session;
    private TimeSpan _retry;
    private bool _started;
    private bool _disposed;

    public BgpFsm(BgpLocalSettings local, uint peerAsn, bool passive, TimeProvider time, IBgpFsmHost host, TimeSpan? retryMin = null, TimeSpan? retryMax = null)
    {
        _local = local;
        _peerAsn = peerAsn;
        _passive = passive;
        _time = time;
        _host = host;
        _retryMin = retryMin ?? TimeSpan.FromSeconds(1);
        _retryMax = retryMax ?? TimeSpan.FromSeconds(60);
        _retry = _retryMin;
        _connectRetryTimer = time.CreateTimer(_ => Fire(OnConnectRetryTimer), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _holdTimer = time.CreateTimer(_ => Fire(OnHoldTimer), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _keepaliveTimer = time.CreateTimer(_ => Fire(OnKeepaliveTimer), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _restartTimer = time.CreateTimer(_ => Fire(OnAutomaticRestart), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public BgpState State { get; private set; } = BgpState.Idle;

    public BgpSessionInfo? Session
    {
        get
        {
            lock (_lock)
            {
                return _session;
            }
        }
    }

    public string? LastError { get; private set; }

    public DateTimeOffset? EstablishedAt { get; private set; }

    /// <summary>False after <see cref="Stop"/> or <see cref="Abort"/>: no automatic restart will follow.</summary>
    public bool IsStarted => _started;

    /// <summary>The delay before the next automatic restart or connect attempt (doubles on each failure).</summary>
    public TimeSpan CurrentBackoff => _retry;

    /// <summary>ManualStart (event 1), or ManualStart_with_PassiveTcpEstablishment (event 4).</summary>
    public void Start()
    {
        lock (_lock)
        {
            _started = true;
            if (State == BgpState.Idle)
            {
                BeginConnecting();
            }
        }
    }

    /// <summary>ManualStop (event 2): Cease to the peer, and no automatic restart.</summary>
    public void Stop(byte ceaseSubcode = BgpError.AdministrativeShutdown)
    {
        lock (_lock)
        {
            _started = false;
            _restartTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            if (_secondary is { } second)
            {
                CloseWithNotification(second, new BgpError(BgpError.Cease, ceaseSubcode));
                _secondary = null;
            }
            if (State is BgpState.OpenSent or BgpState.OpenConfirm or BgpState.Established && _primary is { } primary)
            {
                CloseWithNotification(primary, new BgpError(BgpError.Cease, ceaseSubcode));
                _primary = null;
            }
            Reset("stopped", peerMayRestart: false, restart: false);
        }
    }

    /// <summary>Drops every connection without a NOTIFICATION, as a crash would: the peer may keep our routes (RFC 4724).</summary>
    public void Abort()
    {
        lock (_lock)
        {
            _started = false;
            _secondary?.Close();
            _secondary = null;
            _primary?.Close();
            _primary = null;
            Reset("aborted", peerMayRestart: false, restart: false);
        }
    }

    /// <summary>An outgoing connection succeeded (event 16/17) or an incoming one was accepted (event 14/15).</summary>
    public void ConnectionMade(IBgpTransport transport)
    {
        lock (_lock)
        {
            if (!_started || _disposed)
            {
                transport.Close();
                return;
            }
            switch (State)
            {
                case BgpState.Connect or BgpState.Active or BgpState.Idle:
                    // Idle here means "waiting for the automatic restart": a peer that dials us meanwhile (a
                    // restarting node) is taken at once (automatic start with passive TCP establishment,
                    // RFC 4271 §8.1.1) rather than refused with a Cease that would make it back off in turn.
                    _restartTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                    _primary = transport;
                    _connectRetryTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                    SendOpen(transport);
                    State = BgpState.OpenSent;
                    RestartHoldTimer(LargeHoldTime);
                    break;
                case BgpState.OpenSent or BgpState.OpenConfirm when _secondary is null:
                    // A second connection: answer its OPEN, then keep one of the two (§6.8).
                    _secondary = transport;
                    SendOpen(transport);
                    break;
                case BgpState.Established when _secondary is null && _session?.PeerGracefulRestart is not null:
                    // RFC 4724 §4.2: a graceful-restart peer may come back before we noticed it went away (its
                    // FIN lost, or still queued behind our keepalives). Its OPEN on this connection decides.
                    _secondary = transport;
                    SendOpen(transport);
                    break;
                default:
                    CloseWithNotification(transport, new BgpError(BgpError.Cease, BgpError.ConnectionCollisionResolution));
                    break;
            }
        }
    }

    /// <summary>TcpConnectionFails (event 18) for an outgoing attempt.</summary>
    public void ConnectFailed(string reason)
    {
        lock (_lock)
        {
            LastError = reason;
            if (State == BgpState.Connect)
            {
                // Wait for the connect-retry timer; meanwhile the peer may connect to us.
                State = BgpState.Active;
            }
        }
    }

    /// <summary>A whole message (header included) arrived on <paramref name="transport"/>.</summary>
    public void MessageReceived(IBgpTransport transport, ReadOnlySpan<byte> message)
    {
        lock (_lock)
        {
            if (transport != _primary && transport != _secondary)
            {
                return;
            }
            try
            {
                var (type, length) = BgpHeader.Parse(message);
                var body = message[BgpHeader.Length..length];
                if (transport == _secondary)
                {
                    OnSecondaryMessage(transport, type, body);
                    return;
                }
                OnPrimaryMessage(transport, type, body);
            }
            catch (BgpMessageException e)
            {
                ProtocolError(transport, e.Error, e.Message);
            }
        }
    }

    /// <summary>A framing error found by the reader before a whole message could be cut out.</summary>
    public void ProtocolError(IBgpTransport transport, BgpError error, string detail)
    {
        lock (_lock)
        {
            CloseWithNotification(transport, error);
            if (transport == _secondary)
            {
                _secondary = null;
                return;
            }
            if (transport == _primary)
            {
                _primary = null;
                LastError = "sent " + error + ": " + detail;
                Reset(LastError, peerMayRestart: false, restart: true);
            }
        }
    }

    /// <summary>TcpConnectionFails (event 18): the peer closed or the socket failed.</summary>
    public void ConnectionClosed(IBgpTransport transport, string reason)
    {
        lock (_lock)
        {
            if (transport == _secondary)
            {
                _secondary = null;
                return;
            }
            if (transport != _primary)
            {
                return;
            }
            transport.Close();
            if (State is BgpState.OpenSent or BgpState.OpenConfirm && _secondary is not null)
            {
                // The other connection of a collision is still alive: carry on with it (RFC 4271 §6.8).
                PromoteSecondary();
                return;
            }
            if (State == BgpState.Established && _secondary is not null)
            {
                // The restarted peer's new connection came before the old one's FIN (RFC 4724 §4.2): the
                // old session is over, its routes stay as stale, and the new connection carries on.
                LastError = "connection lost: " + reason + " (peer reconnected)";
                _holdTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                _keepaliveTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                _session = null;
                EstablishedAt = null;
                PromoteSecondary();
                _host.Down(LastError, peerMayRestart: true);
                return;
            }
            _primary = null;
            LastError = "connection lost: " + reason;
            bool mayRestart = State == BgpState.Established && _session?.PeerGracefulRestart is not null;
            Reset(LastError, mayRestart, restart: true);
        }
    }

    /// <summary>Sends a message on the established session (UPDATE, ROUTE-REFRESH); false if there is none.</summary>
    public bool Send(byte[] message)
    {
        lock (_lock)
        {
            if (State != BgpState.Established || _primary is null)
            {
                return false;
            }
            _primary.Send(message);
            return true;
        }
    }

    /// <summary>Sends several messages as one step, so no other event interleaves (a full table then End-of-RIB).</summary>
    public bool Send(IEnumerable<byte[]> messages)
    {
        lock (_lock)
        {
            if (State != BgpState.Established || _primary is null)
            {
                return false;
            }
            foreach (var m in messages)
            {
                _primary.Send(m);
            }
            return true;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
        }
        _connectRetryTimer.Dispose();
        _holdTimer.Dispose();
        _keepaliveTimer.Dispose();
        _restartTimer.Dispose();
    }

    private void OnPrimaryMessage(IBgpTransport transport, BgpMessageType type, ReadOnlySpan<byte> body)
    {
        if (type == BgpMessageType.Notification)
        {
            var notification = NotificationMessage.Decode(body);
            transport.Close();
            bool collision = notification.Error.Code == BgpError.Cease && notification.Error.Subcode == BgpError.ConnectionCollisionResolution;
            if (collision && State is BgpState.OpenSent or BgpState.OpenConfirm && _secondary is not null)
            {
                // The peer resolved the collision the other way before we saw its OPEN on the second
                // connection: only this connection is closed, the other one proceeds (RFC 4271 §6.8).
                PromoteSecondary();
                return;
            }
            _primary = null;
            LastError = "received " + notification.Error;
            if (collision && State != BgpState.Established)
            {
                // The peer kept a connection we no longer hold: no session was lost, so no growing backoff.
                _retry = _retryMin;
            }
            Reset(LastError, peerMayRestart: false, restart: true);
            return;
        }
        switch (State)
        {
            case BgpState.OpenSent when type == BgpMessageType.Open:
                var info = Negotiate(transport, OpenMessage.Decode(body));
                if (_secondary is not null && ResolveCollision(info))
                {
                    return;
                }
                EnterOpenConfirm(info);
                break;
            case BgpState.OpenConfirm when type == BgpMessageType.Keepalive:
                _session = _pending;
                _pending = null;
                State = BgpState.Established;
                EstablishedAt = _time.GetUtcNow();
                _retry = _retryMin;
                LastError = null;
                RestartHoldTimer(TimeSpan.FromSeconds(_session!.HoldTime));
                if (_secondary is { } late)
                {
                    CloseWithNotification(late, new BgpError(BgpError.Cease, BgpError.ConnectionCollisionResolution));
                    _secondary = null;
                }
                _host.Established(_session);
                break;
            case BgpState.Established when type == BgpMessageType.Keepalive:
                RestartHoldTimer(TimeSpan.FromSeconds(_session!.HoldTime));
                break;
            case BgpState.Established when type == BgpMessageType.Update:
                RestartHoldTimer(TimeSpan.FromSeconds(_session!.HoldTime));
                var update = UpdateMessage.Decode(body, _session.DecodeContext(_local.Asn));
                _host.UpdateReceived(update);
                break;
            case BgpState.Established when type == BgpMessageType.RouteRefresh:
                var refresh = RouteRefreshMessage.Decode(body);
                // A refresh for a family we did not negotiate is ignored (RFC 2918 §4).
                if (_session!.Families.Contains(refresh.Family))
                {
                    _host.RouteRefreshRequested(refresh.Family);
                }
                break;
            default:
                // RFC 6608 subcodes: unexpected message in OpenSent (1), OpenConfirm (2), Established (3).
                byte subcode = State switch { BgpState.OpenSent => 1, BgpState.OpenConfirm => 2, BgpState.Established => 3, _ => 0 };
                throw new BgpMessageException(new BgpError(BgpError.FiniteStateMachine, subcode), $"{type} in {State}");
        }
    }

    private void EnterOpenConfirm(BgpSessionInfo info)
    {
        _pending = info;
        info.Transport.Send(Keepalive());
        State = BgpState.OpenConfirm;
        RestartHoldTimer(TimeSpan.FromSeconds(info.HoldTime));
        StartKeepaliveTimer(info.HoldTime);
    }

    private void OnSecondaryMessage(IBgpTransport transport, BgpMessageType type, ReadOnlySpan<byte> body)
    {
        if (type == BgpMessageType.Open)
        {
            var info = Negotiate(transport, OpenMessage.Decode(body));
            if (State == BgpState.Established)
            {
                PeerRestarted(info);
                return;
            }
            ResolveCollision(info);
            return;
        }
        if (type != BgpMessageType.Notification)
        {
            throw new BgpMessageException(new BgpError(BgpError.FiniteStateMachine, 1), $"{type} before OPEN on the second connection");
        }
        _secondary = null;
        transport.Close();
    }

    /// <summary>
    /// A new OPEN from the peer while our session with it is still Established: RFC 4724 §4.2 says the peer
    /// restarted. The old connection is closed (no NOTIFICATION: nobody is listening on it), the host keeps the
    /// peer's routes as stale, and the new connection proceeds to OpenConfirm.
    /// </summary>
    private void PeerRestarted(BgpSessionInfo info)
    {
        var old = _primary!;
        old.Close();
        _primary = info.Transport;
        _secondary = null;
        _holdTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _keepaliveTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _session = null;
        EstablishedAt = null;
        LastError = "peer restarted (new OPEN on " + info.Transport.Description + ")";
        State = BgpState.OpenSent;
        _host.Down(LastError, peerMayRestart: true);
        EnterOpenConfirm(info);
    }

    /// <summary>The primary connection is gone during OPEN exchange; the second one of the collision carries on.</summary>
    private void PromoteSecondary()
    {
        _primary = _secondary;
        _secondary = null;
        _pending = null;
        _keepaliveTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        // Our OPEN went out on it when it arrived; its peer's OPEN is still to come.
        State = BgpState.OpenSent;
        RestartHoldTimer(LargeHoldTime);
    }

    /// <summary>
    /// Keeps the connection opened by the speaker with the higher BGP identifier (RFC 4271 §6.8).
    /// <paramref name="info"/> is the OPEN that just arrived; returns true when the primary was replaced.
    /// </summary>
    private bool ResolveCollision(BgpSessionInfo info)
    {
        var primary = _primary!;
        var secondary = _secondary!;
        bool keepLocallyInitiated = _local.RouterId > info.PeerRouterId;
        var keep = primary.IsOutgoing == secondary.IsOutgoing ? primary : (primary.IsOutgoing == keepLocallyInitiated ? primary : secondary);
        var drop = keep == primary ? secondary : primary;
        CloseWithNotification(drop, new BgpError(BgpError.Cease, BgpError.ConnectionCollisionResolution));
        _secondary = null;
        if (keep == primary)
        {
            // The OPEN may have come on the dropped secondary; the primary's own OPEN is still to come.
            return false;
        }
        _primary = secondary;
        _keepaliveTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (info.Transport == secondary)
        {
            EnterOpenConfirm(info);
        }
        else
        {
            State = BgpState.OpenSent;
            RestartHoldTimer(LargeHoldTime);
        }
        return true;
    }

    private BgpSessionInfo Negotiate(IBgpTransport transport, OpenMessage open)
    {
        if (open.Asn != _peerAsn)
        {
            byte[] data = [(byte)(open.Asn >> 8), (byte)open.Asn];
            throw new BgpMessageException(new BgpError(BgpError.OpenMessage, BgpError.BadPeerAs, data), $"peer AS {open.Asn}, expected {_peerAsn}");
        }
        if (open.RouterId == _local.RouterId)
        {
            throw new BgpMessageException(new BgpError(BgpError.OpenMessage, BgpError.BadBgpIdentifier), "peer uses our BGP identifier");
        }
        var local = _local.ToOpen().Capabilities;
        ushort hold = Math.Min(_local.HoldTime, open.HoldTime);
        var families = BgpCapabilities.Negotiated(local, open.Capabilities);
        return new BgpSessionInfo(open.Asn, open.RouterId, hold, open.Capabilities.FourOctetAs is not null, open.Capabilities.RouteRefresh, families, open.Capabilities.GracefulRestart, transport);
    }

    private void BeginConnecting()
    {
        _primary = null;
        if (_passive)
        {
            State = BgpState.Active;
            return;
        }
        State = BgpState.Connect;
        _connectRetryTimer.Change(_retry, Timeout.InfiniteTimeSpan);
        _host.StartConnect();
    }

    private void OnConnectRetryTimer()
    {
        if (State is BgpState.Connect or BgpState.Active && _started && !_passive)
        {
            _retry = Backoff(_retry);
            State = BgpState.Connect;
            _connectRetryTimer.Change(_retry, Timeout.InfiniteTimeSpan);
            _host.StartConnect();
        }
    }

    private void OnHoldTimer()
    {
        if (State is BgpState.OpenSent or BgpState.OpenConfirm or BgpState.Established && _primary is { } primary)
        {
            CloseWithNotification(primary, new BgpError(BgpError.HoldTimerExpired, 0));
            _primary = null;
            LastError = "hold timer expired";
            Reset(LastError, peerMayRestart: false, restart: true);
        }
    }

    private void OnKeepaliveTimer()
    {
        if (State is BgpState.OpenConfirm or BgpState.Established && _primary is { } primary)
        {
            primary.Send(Keepalive());
            StartKeepaliveTimer((_session ?? _pending)!.HoldTime);
        }
    }

    private void OnAutomaticRestart()
    {
        if (State == BgpState.Idle && _started)
        {
            BeginConnecting();
        }
    }

    /// <summary>Back to Idle: timers off, the host told, and (unless stopped) an automatic restart after a growing delay.</summary>
    private void Reset(string reason, bool peerMayRestart, bool restart)
    {
        var was = State;
        _holdTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _keepaliveTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _connectRetryTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _primary?.Close();
        _primary = null;
        // A second connection never outlives its session: the peer dials again after our restart delay.
        _secondary?.Close();
        _secondary = null;
        _session = null;
        _pending = null;
        EstablishedAt = null;
        State = BgpState.Idle;
        if (was != BgpState.Idle)
        {
            _host.Down(reason, peerMayRestart && was == BgpState.Established);
        }
        if (restart && _started)
        {
            // Damp a peer that keeps failing (RFC 4271 §8.1.1 DampPeerOscillations).
            _restartTimer.Change(_retry, Timeout.InfiniteTimeSpan);
            _retry = Backoff(_retry);
        }
    }

    private TimeSpan Backoff(TimeSpan current) => current * 2 > _retryMax ? _retryMax : current * 2;

    private void RestartHoldTimer(TimeSpan hold)
    {
        _holdTimer.Change(hold == TimeSpan.Zero ? Timeout.InfiniteTimeSpan : hold, Timeout.InfiniteTimeSpan);
    }

    private void StartKeepaliveTimer(ushort holdSeconds)
    {
        // Keepalive every third of the hold time; none when the hold time is zero (RFC 4271 §4.4).
        var interval = holdSeconds == 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(holdSeconds / 3.0);
        _keepaliveTimer.Change(interval, Timeout.InfiniteTimeSpan);
    }

    private void SendOpen(IBgpTransport transport)
    {
        Span<byte> buffer = stackalloc byte[BgpHeader.MaxMessageLength];
        int length = _local.ToOpen().Encode(buffer);
        transport.Send(buffer[..length].ToArray());
    }

    private static byte[] Keepalive()
    {
        var buffer = new byte[BgpHeader.Length];
        KeepaliveMessage.Encode(buffer);
        return buffer;
    }

    private static void CloseWithNotification(IBgpTransport transport, BgpError error)
    {
        Span<byte> buffer = stackalloc byte[BgpHeader.MaxMessageLength];
        int length = new NotificationMessage(error).Encode(buffer);
        transport.Send(buffer[..length].ToArray());
        transport.Close();
    }

    /// <summary>Runs an owner's timer work under this FSM's lock, so it never interleaves with its callbacks.</summary>
    internal void Locked(Action action) => Fire(action);

    private void Fire(Action action)
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                action();
            }
        }
    }
}
