using System.Net;
using Microsoft.Extensions.Time.Testing;
using Trellis.Bgp.Fsm;
using Trellis.Bgp.Wire;

namespace Trellis.Bgp.Tests.Fsm;

internal sealed class FakeTransport(bool outgoing, string name) : IBgpTransport
{
    public bool IsOutgoing { get; } = outgoing;

    public string Description { get; } = name;

    public IPAddress? LocalAddress => IPAddress.Parse("10.0.0.1");

    public List<byte[]> Sent { get; } = [];

    public bool Closed { get; private set; }

    public void Send(byte[] message) => Sent.Add(message);

    public void Close() => Closed = true;

    public IEnumerable<BgpMessageType> SentTypes => Sent.Select(m => BgpHeader.Parse(m).Type);

    public BgpError? LastNotification =>
        Sent.LastOrDefault(m => BgpHeader.Parse(m).Type == BgpMessageType.Notification) is { } n ? NotificationMessage.Decode(n.AsSpan(BgpHeader.Length)).Error : null;
}

internal sealed class FakeHost : IBgpFsmHost
{
    public int Connects { get; private set; }

    public List<string> Events { get; } = [];

    public List<UpdateMessage> Updates { get; } = [];

    public void StartConnect() => Connects++;

    public void Established(BgpSessionInfo session) => Events.Add("established");

    public void UpdateReceived(UpdateMessage update) => Updates.Add(update);

    public void RouteRefreshRequested(AfiSafi family) => Events.Add("refresh " + family);

    public void Down(string reason, bool peerMayRestart) => Events.Add($"down {peerMayRestart}: {reason}");
}

public class FsmTests
{
    private const uint LocalId = 0x0a000001;
    private readonly FakeTimeProvider _clock = new();
    private readonly FakeHost _host = new();

    private BgpFsm NewFsm(bool passive = false, uint localId = LocalId, ushort hold = 9) =>
        new(new BgpLocalSettings(65001, localId, hold, [AfiSafi.Ipv4Unicast], new GracefulRestartCapability(false, false, 120, [new(AfiSafi.Ipv4Unicast, true)])), 65002, passive, _clock, _host);

    private static byte[] Open(uint routerId, ushort hold = 90, bool gracefulRestart = true, uint asn = 65002)
    {
        var caps = new BgpCapabilities { FourOctetAs = asn, RouteRefresh = true, GracefulRestart = gracefulRestart ? new GracefulRestartCapability(false, false, 60, [new(AfiSafi.Ipv4Unicast, true)]) : null };
        caps.Multiprotocol.Add(AfiSafi.Ipv4Unicast);
        var buffer = new byte[4096];
        int n = new OpenMessage { Asn = asn, HoldTime = hold, RouterId = routerId, Capabilities = caps }.Encode(buffer);
        return buffer[..n];
    }

    private static byte[] Keepalive()
    {
        var b = new byte[19];
        KeepaliveMessage.Encode(b);
        return b;
    }

    private (BgpFsm Fsm, FakeTransport Transport) Established(ushort hold = 9)
    {
        var fsm = NewFsm(hold: hold);
        fsm.Start();
        var t = new FakeTransport(true, "out");
        fsm.ConnectionMade(t);
        fsm.MessageReceived(t, Open(0x0a000002));
        fsm.MessageReceived(t, Keepalive());
        Assert.Equal(BgpState.Established, fsm.State);
        return (fsm, t);
    }

    [Fact]
    public void Start_dials_then_open_and_keepalive_reach_established_with_the_lower_hold_time()
    {
        var fsm = NewFsm(hold: 90);
        fsm.Start();
        Assert.Equal(BgpState.Connect, fsm.State);
        Assert.Equal(1, _host.Connects);
        var t = new FakeTransport(true, "out");
        fsm.ConnectionMade(t);
        Assert.Equal(BgpState.OpenSent, fsm.State);
        Assert.Equal([BgpMessageType.Open], t.SentTypes);
        fsm.MessageReceived(t, Open(0x0a000002, hold: 30));
        Assert.Equal(BgpState.OpenConfirm, fsm.State);
        fsm.MessageReceived(t, Keepalive());
        Assert.Equal(BgpState.Established, fsm.State);
        Assert.Equal(30, fsm.Session!.HoldTime);
        Assert.Equal(["established"], _host.Events);
        // Keepalives every hold/3.
        _clock.Advance(TimeSpan.FromSeconds(10));
        fsm.MessageReceived(t, Keepalive());
        Assert.Equal(2, t.SentTypes.Count(x => x == BgpMessageType.Keepalive));
    }

    [Fact]
    public void Hold_timer_expiry_sends_notification_4_and_restarts_after_a_backoff()
    {
        var (fsm, t) = Established(hold: 9);
        _clock.Advance(TimeSpan.FromSeconds(8));
        Assert.Equal(BgpState.Established, fsm.State);
        _clock.Advance(TimeSpan.FromSeconds(1.1));
        Assert.Equal(BgpState.Idle, fsm.State);
        Assert.Equal(BgpError.HoldTimerExpired, t.LastNotification!.Value.Code);
        Assert.True(t.Closed);
        Assert.Contains("down False: hold timer expired", _host.Events);
        int connects = _host.Connects;
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(BgpState.Connect, fsm.State);
        Assert.Equal(connects + 1, _host.Connects);
    }

    [Fact]
    public void Keepalives_keep_the_session_up_past_the_hold_time()
    {
        var (fsm, t) = Established(hold: 9);
        for (int i = 0; i < 10; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(5));
            fsm.MessageReceived(t, Keepalive());
        }
        Assert.Equal(BgpState.Established, fsm.State);
    }

    [Fact]
    public void Connect_retry_backs_off_exponentially_up_to_the_cap()
    {
        var fsm = new BgpFsm(new BgpLocalSettings(65001, LocalId, 9, [AfiSafi.Ipv4Unicast], null), 65002, false, _clock, _host, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8));
        fsm.Start();
        fsm.ConnectFailed("refused");
        Assert.Equal(BgpState.Active, fsm.State);
        var at = new List<double>();
        for (int s = 1; s <= 40; s++)
        {
            int before = _host.Connects;
            _clock.Advance(TimeSpan.FromSeconds(1));
            if (_host.Connects > before)
            {
                at.Add(s);
            }
        }
        // 1s, then +2, +4, +8, +8 ...
        Assert.Equal([1, 3, 7, 15, 23, 31, 39], at);
    }

    [Fact]
    public void Collision_keeps_the_connection_opened_by_the_higher_bgp_identifier()
    {
        // Local id 10.0.0.1 < remote 10.0.0.2: the remote's (incoming) connection wins.
        var fsm = NewFsm();
        fsm.Start();
        var outgoing = new FakeTransport(true, "out");
        fsm.ConnectionMade(outgoing);
        var incoming = new FakeTransport(false, "in");
        fsm.ConnectionMade(incoming);
        Assert.Equal([BgpMessageType.Open], incoming.SentTypes);
        fsm.MessageReceived(incoming, Open(0x0a000002));
        Assert.True(outgoing.Closed);
        Assert.Equal(new BgpError(BgpError.Cease, BgpError.ConnectionCollisionResolution).Subcode, outgoing.LastNotification!.Value.Subcode);
        Assert.False(incoming.Closed);
        Assert.Equal(BgpState.OpenConfirm, fsm.State);
        fsm.MessageReceived(incoming, Keepalive());
        Assert.Equal(BgpState.Established, fsm.State);
    }

    [Fact]
    public void Collision_with_a_lower_remote_identifier_closes_the_incoming_connection()
    {
        // A peer without graceful restart: once established, RFC 4271 §6.8 closes any new connection.
        var fsm = NewFsm(localId: 0x0a0000ff);
        fsm.Start();
        var outgoing = new FakeTransport(true, "out");
        fsm.ConnectionMade(outgoing);
        fsm.MessageReceived(outgoing, Open(0x0a000002, gracefulRestart: false));
        Assert.Equal(BgpState.OpenConfirm, fsm.State);
        var incoming = new FakeTransport(false, "in");
        fsm.ConnectionMade(incoming);
        fsm.MessageReceived(incoming, Open(0x0a000002, gracefulRestart: false));
        Assert.True(incoming.Closed);
        Assert.Equal(BgpError.ConnectionCollisionResolution, incoming.LastNotification!.Value.Subcode);
        Assert.False(outgoing.Closed);
        fsm.MessageReceived(outgoing, Keepalive());
        Assert.Equal(BgpState.Established, fsm.State);
        // Once established, a further connection is refused outright.
        var third = new FakeTransport(false, "third");
        fsm.ConnectionMade(third);
        Assert.True(third.Closed);
        Assert.Equal(BgpState.Established, fsm.State);
    }

    [Fact]
    public void A_new_open_while_established_from_a_graceful_restart_peer_replaces_the_session_and_keeps_routes_stale()
    {
        // RFC 4724 §4.2: the peer restarted before we saw its old connection die.
        var (fsm, old) = Established();
        var fresh = new FakeTransport(false, "in");
        fsm.ConnectionMade(fresh);
        Assert.False(fresh.Closed);
        Assert.Equal(BgpState.Established, fsm.State);
        Assert.Equal([BgpMessageType.Open], fresh.SentTypes);
        fsm.MessageReceived(fresh, Open(0x0a000002));
        Assert.True(old.Closed);
        Assert.Null(old.LastNotification);
        Assert.Equal(BgpState.OpenConfirm, fsm.State);
        Assert.Contains(_host.Events, e => e.StartsWith("down True: peer restarted", StringComparison.Ordinal));
        fsm.MessageReceived(fresh, Keepalive());
        Assert.Equal(BgpState.Established, fsm.State);
        Assert.Same(fresh, fsm.Session!.Transport);
        // The old connection's late messages are ignored.
        fsm.MessageReceived(old, Keepalive());
        fsm.ConnectionClosed(old, "reset");
        Assert.Equal(BgpState.Established, fsm.State);
        Assert.Equal(["established", "down True: peer restarted (new OPEN on in)", "established"], _host.Events);
    }

    [Fact]
    public void The_old_connection_closing_after_the_restarted_peer_reconnected_hands_over_to_the_new_one()
    {
        var (fsm, old) = Established();
        var fresh = new FakeTransport(false, "in");
        fsm.ConnectionMade(fresh);
        fsm.ConnectionClosed(old, "reset by peer");
        Assert.False(fresh.Closed);
        Assert.Equal(BgpState.OpenSent, fsm.State);
        Assert.Equal(["established", "down True: connection lost: reset by peer (peer reconnected)"], _host.Events);
        fsm.MessageReceived(fresh, Open(0x0a000002));
        fsm.MessageReceived(fresh, Keepalive());
        Assert.Equal(BgpState.Established, fsm.State);
        Assert.Same(fresh, fsm.Session!.Transport);
        Assert.Equal(3, _host.Events.Count);
    }

    [Fact]
    public void A_hold_timer_expiry_with_a_second_connection_pending_closes_both_and_restarts_cleanly()
    {
        var (fsm, old) = Established(hold: 9);
        var fresh = new FakeTransport(false, "in");
        fsm.ConnectionMade(fresh);
        _clock.Advance(TimeSpan.FromSeconds(9.5));
        Assert.Equal(BgpState.Idle, fsm.State);
        Assert.True(old.Closed);
        Assert.True(fresh.Closed);
        // Its late OPEN is ignored rather than resolved against a primary that is gone.
        fsm.MessageReceived(fresh, Open(0x0a000002));
        Assert.Equal(BgpState.Idle, fsm.State);
    }

    [Fact]
    public void A_collision_cease_on_the_primary_closes_only_that_connection_and_the_other_proceeds()
    {
        // RFC 4271 §6.8: the loser connection is closed, the session goes on over the other one.
        var fsm = NewFsm(localId: 0x0a0000ff);
        fsm.Start();
        var outgoing = new FakeTransport(true, "out");
        fsm.ConnectionMade(outgoing);
        var incoming = new FakeTransport(false, "in");
        fsm.ConnectionMade(incoming);
        var cease = new byte[21];
        new NotificationMessage(new BgpError(BgpError.Cease, BgpError.ConnectionCollisionResolution)).Encode(cease);
        fsm.MessageReceived(outgoing, cease);
        Assert.True(outgoing.Closed);
        Assert.False(incoming.Closed);
        Assert.Equal(BgpState.OpenSent, fsm.State);
        fsm.MessageReceived(incoming, Open(0x0a000002));
        Assert.Equal(BgpState.OpenConfirm, fsm.State);
        fsm.MessageReceived(incoming, Keepalive());
        Assert.Equal(BgpState.Established, fsm.State);
        Assert.Equal(["established"], _host.Events);
    }

    [Fact]
    public void A_peer_dialing_while_we_wait_for_the_automatic_restart_is_accepted()
    {
        var (fsm, t) = Established();
        fsm.ConnectionClosed(t, "reset by peer");
        Assert.Equal(BgpState.Idle, fsm.State);
        var incoming = new FakeTransport(false, "in");
        fsm.ConnectionMade(incoming);
        Assert.False(incoming.Closed);
        Assert.Equal(BgpState.OpenSent, fsm.State);
        fsm.MessageReceived(incoming, Open(0x0a000002));
        fsm.MessageReceived(incoming, Keepalive());
        Assert.Equal(BgpState.Established, fsm.State);
        // The pending automatic restart was cancelled: no extra dial after the backoff.
        int connects = _host.Connects;
        _clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(connects, _host.Connects);
    }

    [Fact]
    public void A_wrong_peer_as_gets_open_error_2_2()
    {
        var fsm = NewFsm();
        fsm.Start();
        var t = new FakeTransport(true, "out");
        fsm.ConnectionMade(t);
        fsm.MessageReceived(t, Open(0x0a000002, asn: 65099));
        Assert.Equal((2, 2), (t.LastNotification!.Value.Code, t.LastNotification.Value.Subcode));
        Assert.Equal(BgpState.Idle, fsm.State);
    }

    [Fact]
    public void A_malformed_update_resets_with_its_notification_and_an_update_before_established_is_an_fsm_error()
    {
        var (fsm, t) = Established();
        // Withdrawn routes length 0x50 in a 4-byte body.
        fsm.MessageReceived(t, Convert.FromHexString("ffffffffffffffffffffffffffffffff00170200500000"));
        Assert.Equal((3, 1), (t.LastNotification!.Value.Code, t.LastNotification.Value.Subcode));
        Assert.Equal(BgpState.Idle, fsm.State);

        var fsm2 = NewFsm();
        fsm2.Start();
        var t2 = new FakeTransport(true, "out");
        fsm2.ConnectionMade(t2);
        fsm2.MessageReceived(t2, UpdateMessage.EndOfRib(AfiSafi.Ipv4Unicast).ToBytes());
        Assert.Equal((5, 1), (t2.LastNotification!.Value.Code, t2.LastNotification.Value.Subcode));
    }

    [Fact]
    public void Losing_the_connection_without_notification_lets_a_graceful_restart_peer_keep_routes()
    {
        var (fsm, t) = Established();
        fsm.ConnectionClosed(t, "reset by peer");
        Assert.Contains(_host.Events, e => e.StartsWith("down True", StringComparison.Ordinal));

        var (fsm2, t2) = Established();
        var notification = new byte[21];
        new NotificationMessage(new BgpError(6, 2)).Encode(notification);
        fsm2.MessageReceived(t2, notification);
        Assert.Contains(_host.Events, e => e.StartsWith("down False: received cease/2", StringComparison.Ordinal));
    }

    [Fact]
    public void Stop_sends_cease_and_does_not_restart()
    {
        var (fsm, t) = Established();
        fsm.Stop();
        Assert.Equal((6, 2), (t.LastNotification!.Value.Code, t.LastNotification.Value.Subcode));
        int connects = _host.Connects;
        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(BgpState.Idle, fsm.State);
        Assert.Equal(connects, _host.Connects);
    }

    [Fact]
    public void Route_refresh_for_a_negotiated_family_reaches_the_host()
    {
        var (fsm, t) = Established();
        var b = new byte[23];
        new RouteRefreshMessage(AfiSafi.Ipv4Unicast).Encode(b);
        fsm.MessageReceived(t, b);
        new RouteRefreshMessage(AfiSafi.Ipv6Unicast).Encode(b);
        fsm.MessageReceived(t, b);
        Assert.Equal(["established", "refresh ipv4-unicast"], _host.Events);
    }
}
