using System.Net;
using Trellis.Bgp.Fsm;
using Trellis.Bgp.Wire;
using Trellis.Netlink;

namespace Trellis.Bgp;

/// <summary>A route learned from a peer; routes of one UPDATE share one <see cref="PathAttributes"/>.</summary>
public sealed record BgpRoute(IPNetwork Prefix, IPAddress NextHop, PathAttributes Attributes);

/// <summary>Routes a peer added (or replaced) and withdrew in one step.</summary>
public sealed record BgpRoutesChanged(IPAddress Peer, IReadOnlyList<BgpRoute> Added, IReadOnlyList<IPNetwork> Withdrawn);

/// <summary>A configured neighbour.</summary>
public sealed record BgpPeerConfig
{
    public required IPAddress Address { get; init; }

    public required uint Asn { get; init; }

    /// <summary>TCP MD5 key (RFC 2385); null for none.</summary>
    public string? Password { get; init; }

    /// <summary>Only accept connections; never dial.</summary>
    public bool Passive { get; init; }

    public int Port { get; init; } = 179;

    /// <summary>Source address for outgoing connections; the kernel picks one when null.</summary>
    public IPAddress? LocalAddress { get; init; }

    /// <summary>This peer is a route-reflector client of ours (RFC 4456); only meaningful with <see cref="BgpSpeakerOptions.RouteReflectorClusterId"/>.</summary>
    public bool RouteReflectorClient { get; init; }
}

public sealed record BgpSpeakerOptions
{
    public required uint Asn { get; init; }

    public required IPAddress RouterId { get; init; }

    /// <summary>Where to accept connections (port 179 normally); null for dial-out only.</summary>
    public IPEndPoint? Listen { get; init; }

    public ushort HoldTime { get; init; } = 90;

    /// <summary>Advertise graceful restart (RFC 4724) and keep a restarting peer's routes as stale.</summary>
    public bool GracefulRestart { get; init; } = true;

    public ushort RestartTime { get; init; } = 120;

    /// <summary>Set when this process is the restart of a speaker whose peers may hold our routes: the R bit.</summary>
    public bool Restarting { get; init; }

    /// <summary>Kernel routes survived the restart, so peers may keep forwarding (the F bit per family).</summary>
    public bool ForwardingPreserved { get; init; }

    public IReadOnlyList<AfiSafi> Families { get; init; } = [AfiSafi.Ipv4Unicast, AfiSafi.Ipv6Unicast];

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The network namespace every socket is opened in; null for the caller's.</summary>
    public NetNs? Namespace { get; init; }

    public TimeSpan ConnectRetryMin { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan ConnectRetryMax { get; init; } = TimeSpan.FromSeconds(30);

    public Action<string>? Log { get; init; }

    /// <summary>
    /// When set, this speaker is a route reflector (RFC 4456) with this cluster id: routes learned from a
    /// client go to every other iBGP peer, routes from a non-client iBGP peer to clients only, each with
    /// ORIGINATOR_ID set and the cluster id prepended to CLUSTER_LIST. Null: learned routes are not re-advertised.
    /// </summary>
    public uint? RouteReflectorClusterId { get; init; }
}

/// <summary>What <c>trellis bgp status</c> shows for one peer.</summary>
public sealed record BgpPeerStatus(
    IPAddress Address,
    uint Asn,
    BgpState State,
    DateTimeOffset? EstablishedAt,
    int PrefixesReceived,
    int PrefixesAdvertised,
    int StalePrefixes,
    string? LastError)
{
    /// <summary>The peer sent End-of-RIB for every negotiated family since the session came up (RFC 4724): its table is complete.</summary>
    public bool EndOfRibReceived { get; init; }

    public bool RouteReflectorClient { get; init; }
}
