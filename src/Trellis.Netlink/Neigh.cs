using System.Net;

namespace Trellis.Netlink;

/// <summary>NUD_* neighbour states (ndm_state).</summary>
[Flags]
#pragma warning disable CA1028 // the kernel field is 16 bits
public enum NeighState : ushort
#pragma warning restore CA1028
{
    None = 0,
    Incomplete = 0x01,
    Reachable = 0x02,
    Stale = 0x04,
    Delay = 0x08,
    Probe = 0x10,
    Failed = 0x20,
    NoArp = 0x40,
    Permanent = 0x80,
}

/// <summary>NTF_* flags (ndm_flags).</summary>
public static class NeighFlags
{
    public const byte Use = 0x01;
    public const byte Self = 0x02;
    public const byte Master = 0x04;
    public const byte Proxy = 0x08;
    public const byte ExtLearned = 0x10;
    public const byte Offloaded = 0x20;
    public const byte Sticky = 0x40;
    public const byte Router = 0x80;
}

/// <summary>An ARP / NDP neighbour entry (<c>ip neigh</c>).</summary>
public sealed record Neigh(int Index, IPAddress? Ip, byte[]? Mac, NeighState State = NeighState.Permanent, byte Flags = 0)
{
    public override string ToString() =>
        $"{Ip} dev {Index}{(Mac is null ? "" : " lladdr " + Netlink.Mac.Format(Mac))} {State}";
}

/// <summary>
/// A bridge forwarding-database entry (<c>bridge fdb</c>): on a vxlan device, which remote VTEP
/// (<see cref="Destination"/>) a MAC lives behind.
/// </summary>
/// <param name="Vni">NDA_VNI; null when it is the device's own VNI (the kernel omits it then).</param>
/// <param name="Self">NTF_SELF: the entry lives in the device's own table (vxlan), not the bridge's.</param>
/// <param name="Master">NTF_MASTER: the entry lives in the master bridge's table.</param>
public sealed record Fdb(int Index, byte[] Mac, IPAddress? Destination = null, int? Vni = null, bool Self = true, bool Master = false, NeighState State = NeighState.Permanent)
{
    /// <summary>NDA_VLAN, for bridge entries on a VLAN.</summary>
    public int? Vlan { get; init; }

    /// <summary>NDA_MASTER: the bridge, for entries reported by it.</summary>
    public int? MasterIndex { get; init; }

    public override string ToString() =>
        $"{Netlink.Mac.Format(Mac)} dev {Index}{(Destination is null ? "" : " dst " + Destination)}{(Self ? " self" : "")}{(Master ? " master" : "")} {State}";
}
