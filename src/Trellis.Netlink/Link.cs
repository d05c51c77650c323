using System.Net;

namespace Trellis.Netlink;

/// <summary>A network interface as RTM_NEWLINK describes it (<c>ip -d link show</c>).</summary>
/// <param name="Index">ifindex.</param>
/// <param name="Kind">IFLA_INFO_KIND ("veth", "bridge", "vxlan"); null for devices without one (lo, physical NICs).</param>
/// <param name="IsUp">IFF_UP: administratively up.</param>
/// <param name="MasterIndex">IFLA_MASTER: the bridge this link is a port of.</param>
/// <param name="ParentIndex">IFLA_LINK: a veth's peer, a vlan's lower device; in the peer's namespace when <paramref name="LinkNetNsId"/> is set.</param>
/// <param name="LinkNetNsId">IFLA_LINK_NETNSID: the nsid (in this namespace) of the namespace <paramref name="ParentIndex"/> lives in.</param>
/// <param name="OperState">RFC 2863 state as <c>ip</c> prints it ("UP", "DOWN", "LOWERLAYERDOWN", "UNKNOWN", ...).</param>
/// <param name="Hairpin">For bridge ports, whether hairpin mode is on; null for links that are not bridge ports.</param>
public sealed record Link(
    int Index,
    string Name,
    string? Kind,
    int Mtu,
    byte[]? Mac,
    bool IsUp,
    int? MasterIndex,
    int? ParentIndex,
    int? LinkNetNsId,
    string? Alias,
    string OperState,
    int? VxlanId,
    int? VxlanPort,
    IPAddress? VxlanLocal,
    bool? VxlanLearning,
    bool? Hairpin)
{
    /// <summary>ifi_flags (IFF_UP, IFF_LOWER_UP, ...).</summary>
    public uint Flags { get; init; }

    /// <summary>IFLA_VXLAN_LINK: the device a vxlan sends through.</summary>
    public int? VxlanDeviceIndex { get; init; }

    /// <summary>IFLA_VXLAN_TTL (0 = inherit).</summary>
    public int? VxlanTtl { get; init; }

    /// <summary>IFLA_BR_VLAN_FILTERING, for bridges.</summary>
    public bool? BridgeVlanFiltering { get; init; }

    /// <summary>IFLA_BR_FORWARD_DELAY in centiseconds (USER_HZ), for bridges.</summary>
    public int? BridgeForwardDelay { get; init; }

    public override string ToString() =>
        $"{Index}: {Name}{(Kind is null ? "" : " (" + Kind + ")")} mtu {Mtu} {(IsUp ? "up" : "down")} state {OperState}"
        + (Mac is null ? "" : " link " + Netlink.Mac.Format(Mac));
}

/// <summary>Options for <see cref="RtNetlink.LinkAddVeth"/>.</summary>
public sealed record VethOptions
{
    /// <summary>MTU of both ends (the kernel does not copy it to the peer, so it is sent for each).</summary>
    public int? Mtu { get; init; }

    public byte[]? Mac { get; init; }

    public byte[]? PeerMac { get; init; }

    /// <summary>Create the peer directly in this namespace (<c>peer name X netns NS</c>).</summary>
    public NetNs? PeerNetNs { get; init; }

    public string? Alias { get; init; }

    /// <summary>Enslave the local end at creation (<c>master BR</c>).</summary>
    public int? MasterIndex { get; init; }

    /// <summary>Create the local end administratively up (<c>up</c>).</summary>
    public bool Up { get; init; }
}

/// <summary>Options for <see cref="RtNetlink.LinkAddBridge"/>.</summary>
public sealed record BridgeOptions
{
    /// <summary>
    /// Initial MTU. The kernel recomputes a bridge's MTU from its ports as they join unless the
    /// MTU was changed after creation (<see cref="RtNetlink.LinkSetMtu"/>), so give ports the same MTU.
    /// </summary>
    public int? Mtu { get; init; }

    /// <summary>
    /// A fixed address. Without one the bridge takes the lowest MAC among its ports and changes
    /// address whenever ports come and go; setting it pins it (addr_assign_type = set).
    /// </summary>
    public byte[]? Mac { get; init; }

    public bool? VlanFiltering { get; init; }

    /// <summary>In centiseconds (USER_HZ), as <c>ip link ... type bridge forward_delay N</c>.</summary>
    public int? ForwardDelay { get; init; }
}

/// <summary>Options for <see cref="RtNetlink.LinkAddVxlan"/>.</summary>
public sealed record VxlanOptions
{
    public required int Vni { get; init; }

    /// <summary>UDP destination port (IANA 4789; Linux's own default would be 8472).</summary>
    public int Port { get; init; } = 4789;

    public IPAddress? Local { get; init; }

    /// <summary>The underlay device (<c>dev DEV</c>).</summary>
    public int? DeviceIndex { get; init; }

    /// <summary>false = <c>nolearning</c>: remote MACs come only from FDB entries we program.</summary>
    public bool Learning { get; init; } = true;

    public int? Mtu { get; init; }

    public byte[]? Mac { get; init; }

    public int? Ttl { get; init; }
}
