using Trellis.Bgp.Wire;

namespace Trellis.Bgp.Fsm;

public enum BgpState
{
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// <summary>One TCP connection as the FSM sees it; the socket implementation queues sends and never blocks the FSM.</summary>
public interface IBgpTransport
{
    /// <summary>True when this side opened the connection (collision resolution keeps one by initiator, RFC 4271 §6.8).</summary>
    bool IsOutgoing { get; }

    string Description { get; }

    /// <summary>This side's address on the connection: the default next hop for what we announce.</summary>
    System.Net.IPAddress? LocalAddress { get; }

    void Send(byte[] message);

    /// <summary>Closes after the queued messages (a NOTIFICATION) are sent.</summary>
    void Close();
}

/// <summary>What the FSM asks of its owner. Called with the FSM's lock held, in order.</summary>
public interface IBgpFsmHost
{
    /// <summary>Open an outgoing connection; report it with <see cref="BgpFsm.ConnectionMade"/> or <see cref="BgpFsm.ConnectFailed"/>.</summary>
    void StartConnect();

    void Established(BgpSessionInfo session);

    void UpdateReceived(UpdateMessage update);

    void RouteRefreshRequested(AfiSafi family);

    /// <summary>
    /// The session left Established (or never got there). <paramref name="peerMayRestart"/> is true when the
    /// connection was lost without a NOTIFICATION and the peer advertised graceful restart, so its routes are kept as stale.
    /// </summary>
    void Down(string reason, bool peerMayRestart);
}

/// <summary>What OPEN negotiation settled (RFC 4271 §4.2, 5492, 6793, 4724).</summary>
public sealed record BgpSessionInfo(
    uint PeerAsn,
    uint PeerRouterId,
    ushort HoldTime,
    bool FourOctetAs,
    bool RouteRefresh,
    IReadOnlyList<AfiSafi> Families,
    GracefulRestartCapability? PeerGracefulRestart,
    IBgpTransport Transport)
{
    public BgpDecodeContext DecodeContext(uint localAsn) => new(FourOctetAs, PeerAsn == localAsn);
}

/// <summary>This speaker's side of OPEN.</summary>
public sealed record BgpLocalSettings(uint Asn, uint RouterId, ushort HoldTime, IReadOnlyList<AfiSafi> Families, GracefulRestartCapability? GracefulRestart)
{
    public OpenMessage ToOpen()
    {
        var capabilities = new BgpCapabilities { RouteRefresh = true, FourOctetAs = Asn, GracefulRestart = GracefulRestart };
        capabilities.Multiprotocol.AddRange(Families);
        return new OpenMessage { Asn = Asn, HoldTime = HoldTime, RouterId = RouterId, Capabilities = capabilities };
    }
}
