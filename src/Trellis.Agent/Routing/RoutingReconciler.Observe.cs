using System.Net;
using System.Net.Sockets;
using Trellis.Core.Routing;
using Trellis.Netlink;

namespace Trellis.Agent.Routing;

public sealed partial class RoutingReconciler
{
    /// <summary>
    /// Reads the kernel in <see cref="RoutingState"/> form: every <c>trellis.N</c> link with its VXLAN attributes,
    /// the addresses, neighbours and FDB entries on those links, and every route of the main table, IPv4 and
    /// IPv6, with its protocol. Foreign routes are included because <see cref="RoutingDiff"/> needs them to see
    /// a clash (<c>ip route replace</c> would silently overwrite one); use <see cref="Owned"/> for the part
    /// Trellis owns.
    /// </summary>
    public RoutingState Observe()
    {
        var links = _nl.LinkList();
        var names = links.ToDictionary(l => l.Index, l => l.Name);
        var owned = links.Where(l => RoutingNames.IsVxlanDevice(l.Name)).OrderBy(l => l.Name, StringComparer.Ordinal).ToList();

        var devices = new List<VxlanDeviceSpec>();
        var addresses = new List<AddressSpec>();
        var neighbours = new List<NeighSpec>();
        var fdb = new List<FdbSpec>();
        foreach (var link in owned)
        {
            devices.Add(ToSpec(link, names));
            foreach (var a in OrEmptyIfGone(() => _nl.AddrList(link.Index)))
            {
                addresses.Add(new AddressSpec(link.Name, a.Cidr));
            }
            foreach (var n in OrEmptyIfGone(() => _nl.NeighList(link.Index)))
            {
                // An entry still resolving (INCOMPLETE, FAILED) has no address yet, and NOARP entries are the
                // kernel's multicast mappings (ff02::16 → 33:33:00:00:00:16 appears once MLD runs on the device):
                // neither is anything to own or compare.
                if (n.Ip is not null && n.Mac is { Length: 6 } mac && !n.State.HasFlag(NeighState.NoArp))
                {
                    neighbours.Add(new NeighSpec(link.Name, n.Ip, MacAddress.FromBytes(mac)) { Permanent = n.State.HasFlag(NeighState.Permanent) });
                }
            }
            if (link.Kind == "vxlan")
            {
                foreach (var f in OrEmptyIfGone(() => _nl.FdbList(link.Index)))
                {
                    // Only the device's own remotes (NTF_SELF) with a destination and the device's own VNI: the entries
                    // RouteCompiler writes. Anything else (a flood list, another VNI) is not ours to judge.
                    if (f.Self && f.Destination is not null && f.Mac.Length == 6 && f.Vni is null)
                    {
                        fdb.Add(new FdbSpec(link.Name, MacAddress.FromBytes(f.Mac), f.Destination) { Permanent = f.State.HasFlag(NeighState.Permanent) });
                    }
                }
            }
        }

        var routes = new List<RouteSpec>();
        foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
        {
            foreach (var r in _nl.RouteList(family, RouteTables.Main))
            {
                var any = family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any;
                routes.Add(new RouteSpec(r.Destination ?? new IPNetwork(any, 0), r.Gateway ?? any,
                    r.OutIndex is int oif && names.TryGetValue(oif, out var dev) ? dev : "")
                {
                    OnLink = r.OnLink,
                    Protocol = r.Protocol,
                    Metric = r.Priority ?? 0,
                });
            }
        }
        return new RoutingState { Devices = devices, Addresses = addresses, Routes = routes, Neighbours = neighbours, Fdb = fdb };
    }

    private static VxlanDeviceSpec ToSpec(Link link, Dictionary<int, string> names)
    {
        // A trellis.N link that is not a VXLAN device (or lacks an attribute) gets impossible values, so the
        // diff sees it differ at creation and re-creates it rather than trusting it.
        bool vxlan = link.Kind == "vxlan";
        return new VxlanDeviceSpec(
            link.Name,
            vxlan ? link.VxlanId ?? -1 : -1,
            link.VxlanPort ?? 0,
            link.VxlanLocal ?? IPAddress.None,
            link.VxlanDeviceIndex is int lower && names.TryGetValue(lower, out var under) ? under : "",
            link.Mtu,
            link.Mac is { Length: 6 } mac ? MacAddress.FromBytes(mac) : default)
        {
            Learning = link.VxlanLearning ?? true,
            Up = link.IsUp,
        };
    }

    /// <summary>A link deleted between the link dump and its per-link dump simply has nothing on it.</summary>
    private static IReadOnlyList<T> OrEmptyIfGone<T>(Func<IReadOnlyList<T>> list)
    {
        try
        {
            return list();
        }
        catch (NetlinkException e) when (e.IsNotFound)
        {
            return [];
        }
    }
}
