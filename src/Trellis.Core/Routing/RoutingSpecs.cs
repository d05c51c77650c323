using System.Globalization;
using System.Net;
using System.Text;
using Trellis.Model;

namespace Trellis.Core.Routing;

// Desired-state records for the routing reconciler. Core does not reference Trellis.Netlink (DESIGN §3):
// the reconciler maps these onto Netlink's Link/Route/Neigh/Fdb, resolving device names to ifindexes.
// Observed state is described with the same records so the diff compares like with like; ToString()
// writes each as the arguments of the iproute2 command that would create it.

/// <summary>
/// The VXLAN device (<c>ip link add NAME type vxlan id VNI local IP dev UNDERLAY dstport PORT nolearning</c>).
/// VNI, port, local address, underlay device and learning are fixed at creation; MTU, MAC and the up
/// flag can be changed in place.
/// </summary>
public sealed record VxlanDeviceSpec(string Name, int Vni, int Port, IPAddress Local, string UnderlayDevice, int Mtu, MacAddress Mac)
{
    /// <summary>
    /// Off, as flannel runs it: remote MACs come only from the FDB entries we program, so a packet
    /// from an unknown source can never teach the device a new destination.
    /// </summary>
    public bool Learning { get; init; }

    public bool Up { get; init; } = true;

    /// <summary>Whether <paramref name="other"/> differs in an attribute the kernel fixes at creation (then the device is re-created, as flannel does).</summary>
    public bool DiffersAtCreation(VxlanDeviceSpec other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Vni != other.Vni || Port != other.Port || !Local.Equals(other.Local)
            || UnderlayDevice != other.UnderlayDevice || Learning != other.Learning;
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Name} type vxlan id {Vni} local {Local} dev {UnderlayDevice} dstport {Port} {(Learning ? "learning" : "nolearning")} mtu {Mtu} address {Mac}{(Up ? " up" : " down")}");
}

/// <summary>An interface address (<c>ip addr add ADDRESS dev DEVICE</c>).</summary>
public sealed record AddressSpec(string Device, IPCidr Address)
{
    public override string ToString() => $"{Address} dev {Device}";
}

/// <summary>
/// A unicast route in the main table (<c>ip route replace DST via GW dev DEV [onlink] proto P [metric M]</c>),
/// scope universe (it always has a gateway). Identity, as the kernel keys it, is destination + metric
/// (table main, no TOS).
/// </summary>
public sealed record RouteSpec(IPNetwork Destination, IPAddress Gateway, string Device)
{
    /// <summary>RTNH_F_ONLINK: the gateway is on the device although no prefix there covers it (the VXLAN next hop).</summary>
    public bool OnLink { get; init; }

    public byte Protocol { get; init; } = RoutingNames.TrellisRouteProtocol;

    /// <summary>RTA_PRIORITY as the kernel reports it: 0 for IPv4 by default, <see cref="RoutingNames.IPv6DefaultMetric"/> for IPv6.</summary>
    public int Metric { get; init; }

    public bool IsOwned => Protocol == RoutingNames.TrellisRouteProtocol;

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Destination} via {Gateway} dev {Device}{(OnLink ? " onlink" : "")} proto {Protocol}{(Metric != 0 ? $" metric {Metric}" : "")}");
}

/// <summary>An ARP/NDP entry (<c>ip neigh replace IP lladdr MAC dev DEV nud permanent</c>).</summary>
public sealed record NeighSpec(string Device, IPAddress Ip, MacAddress Mac)
{
    /// <summary>NUD_PERMANENT. Only permanent entries are ours; the kernel's own (reachable, stale, failed…) are left alone.</summary>
    public bool Permanent { get; init; } = true;

    public override string ToString() => $"{Ip} dev {Device} lladdr {Mac} {(Permanent ? "PERMANENT" : "DYNAMIC")}";
}

/// <summary>A VXLAN forwarding entry (<c>bridge fdb replace MAC dev DEV dst IP self permanent</c>): which VTEP a MAC lives behind.</summary>
public sealed record FdbSpec(string Device, MacAddress Mac, IPAddress Destination)
{
    public bool Permanent { get; init; } = true;

    public override string ToString() => $"{Mac} dev {Device} dst {Destination} self{(Permanent ? " permanent" : "")}";
}

/// <summary>
/// The routing state of one node: desired (from <see cref="RouteCompiler"/>, at most one device) or
/// observed (from the kernel: every <c>trellis.N</c> device, the addresses on them, all routes of
/// the main table with their protocol, the neighbour and FDB entries of those devices).
/// </summary>
public sealed record RoutingState
{
    public static readonly RoutingState Empty = new();

    public IReadOnlyList<VxlanDeviceSpec> Devices { get; init; } = [];

    public IReadOnlyList<AddressSpec> Addresses { get; init; } = [];

    public IReadOnlyList<RouteSpec> Routes { get; init; } = [];

    public IReadOnlyList<NeighSpec> Neighbours { get; init; } = [];

    public IReadOnlyList<FdbSpec> Fdb { get; init; } = [];

    /// <summary>One line per object, prefixed with its kind, in a stable order: the golden-file form.</summary>
    public string Dump()
    {
        var text = new StringBuilder();
        foreach (var d in Devices.OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            text.Append("link ").Append(d).Append('\n');
        }
        foreach (var a in Addresses.OrderBy(a => a.Device, StringComparer.Ordinal).ThenBy(a => IPAddressMath.ToInteger(a.Address.Address)))
        {
            text.Append("addr ").Append(a).Append('\n');
        }
        foreach (var r in Routes.OrderBy(r => r.Destination, IPNetworkOrder.Instance).ThenBy(r => r.Metric))
        {
            text.Append("route ").Append(r).Append('\n');
        }
        foreach (var n in Neighbours.OrderBy(n => n.Device, StringComparer.Ordinal).ThenBy(n => IPAddressMath.ToInteger(n.Ip)))
        {
            text.Append("neigh ").Append(n).Append('\n');
        }
        foreach (var f in Fdb.OrderBy(f => f.Device, StringComparer.Ordinal).ThenBy(f => f.Mac).ThenBy(f => IPAddressMath.ToInteger(f.Destination)))
        {
            text.Append("fdb ").Append(f).Append('\n');
        }
        return text.ToString();
    }
}

/// <summary>Orders networks by family, then base address, then prefix length.</summary>
internal sealed class IPNetworkOrder : IComparer<IPNetwork>
{
    public static readonly IPNetworkOrder Instance = new();

    public int Compare(IPNetwork x, IPNetwork y)
    {
        int c = x.BaseAddress.AddressFamily.CompareTo(y.BaseAddress.AddressFamily);
        if (c == 0)
        {
            c = IPAddressMath.ToInteger(x.BaseAddress).CompareTo(IPAddressMath.ToInteger(y.BaseAddress));
        }
        return c != 0 ? c : x.PrefixLength.CompareTo(y.PrefixLength);
    }
}
