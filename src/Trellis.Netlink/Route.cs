using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trellis.Netlink;

/// <summary>rtm_scope values.</summary>
#pragma warning disable CA1028 // the kernel field is one byte
public enum RouteScope : byte
#pragma warning restore CA1028
{
    Universe = 0,
    Site = 200,
    Link = 253,
    Host = 254,
    Nowhere = 255,
}

/// <summary>Well-known rtm_protocol values (any byte round-trips).</summary>
public static class RouteProtocols
{
    public const byte Kernel = 2;
    public const byte Boot = 3;
    public const byte Static = 4;
}

/// <summary>Well-known rtm_type values.</summary>
public static class RouteTypes
{
    public const byte Unicast = 1;
    public const byte Local = 2;
    public const byte Broadcast = 3;
    public const byte Blackhole = 6;
    public const byte Unreachable = 7;
    public const byte Prohibit = 8;
}

/// <summary>Well-known routing tables.</summary>
public static class RouteTables
{
    public const int Main = 254;
    public const int Local = 255;
}

/// <summary>One next hop of a multipath route (<c>nexthop via GW dev IF weight W</c>).</summary>
/// <param name="Weight">1…256 (rtnh_hops + 1).</param>
public sealed record NextHop(IPAddress? Gateway, int? OutIndex = null, int Weight = 1, bool OnLink = false);

/// <summary>A route as RTM_NEWROUTE describes it (<c>ip route</c>), single-path or ECMP (<see cref="MultiPath"/>).</summary>
public sealed record Route
{
    /// <summary>null = default route.</summary>
    public IPNetwork? Destination { get; init; }

    public IPAddress? Gateway { get; init; }

    /// <summary>RTA_OIF (<c>dev</c>).</summary>
    public int? OutIndex { get; init; }

    /// <summary>RTA_PREFSRC (<c>src</c>).</summary>
    public IPAddress? PreferredSource { get; init; }

    /// <summary>
    /// Unlike <c>ip route add</c>, nothing is inferred: a device route without a gateway needs
    /// <see cref="RouteScope.Link"/> set explicitly, as with vishvananda/netlink.
    /// </summary>
    public RouteScope Scope { get; init; }

    public int Table { get; init; } = RouteTables.Main;

    /// <summary>RTNH_F_ONLINK: the gateway is on the link even though no prefix says so.</summary>
    public bool OnLink { get; init; }

    public byte Protocol { get; init; } = RouteProtocols.Boot;

    /// <summary>RTA_PRIORITY (<c>metric</c>).</summary>
    public int? Priority { get; init; }

    /// <summary>RTAX_MTU inside RTA_METRICS (<c>mtu</c>).</summary>
    public int? Mtu { get; init; }

    public byte Type { get; init; } = RouteTypes.Unicast;

    /// <summary>
    /// RTA_MULTIPATH: the next hops of an ECMP route (<c>ip route add D nexthop via A nexthop via B</c>);
    /// null for a single-path route. Set either this or <see cref="Gateway"/>/<see cref="OutIndex"/>.
    /// The kernel reports a multipath route with one next hop left as a single-path route.
    /// </summary>
    public IReadOnlyList<NextHop>? MultiPath { get; init; }

    /// <summary>
    /// The address family, needed only when neither destination, gateway nor source says it
    /// (e.g. <c>ip -6 route add default dev eth0</c>).
    /// </summary>
    public AddressFamily? Family { get; init; }

    /// <summary>The family from the explicit <see cref="Family"/>, else the destination, gateway or source.</summary>
    public AddressFamily ResolveFamily() =>
        Family
        ?? Destination?.BaseAddress.AddressFamily
        ?? Gateway?.AddressFamily
        ?? PreferredSource?.AddressFamily
        ?? MultiPath?.FirstOrDefault(h => h.Gateway is not null)?.Gateway?.AddressFamily
        ?? throw new ArgumentException("route has no destination, gateway or source to take an address family from; set Family");

    /// <summary><c>ip route</c> style: "10.1.0.0/16 via 10.0.0.2 dev 3 proto 4 metric 50 table 100".</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        if (Type != RouteTypes.Unicast)
        {
            text.Append("type ").Append(Type).Append(' ');
        }
        text.Append(Destination?.ToString() ?? "default");
        if (Gateway is not null)
        {
            text.Append(" via ").Append(Gateway);
        }
        if (OutIndex is int oif)
        {
            text.Append(" dev ").Append(oif);
        }
        if (PreferredSource is not null)
        {
            text.Append(" src ").Append(PreferredSource);
        }
        if (Priority is int metric)
        {
            text.Append(" metric ").Append(metric);
        }
        if (Table != RouteTables.Main)
        {
            text.Append(" table ").Append(Table);
        }
        foreach (var hop in MultiPath ?? [])
        {
            text.Append(" nexthop");
            if (hop.Gateway is not null)
            {
                text.Append(" via ").Append(hop.Gateway);
            }
            if (hop.OutIndex is int dev)
            {
                text.Append(" dev ").Append(dev);
            }
            if (hop.Weight != 1)
            {
                text.Append(" weight ").Append(hop.Weight);
            }
        }
        return text.ToString();
    }
}
