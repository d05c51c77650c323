using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Trellis.Model;

namespace Trellis.Core.Routing;

/// <summary>
/// Flannel's backends as one pure function: nodes + backend settings → the VXLAN device, its address,
/// and per other node either an encapsulated path (onlink route, permanent neighbour, FDB entry) or a
/// direct route via the node's underlay address. No I/O; <see cref="RoutingDiff"/> turns the result
/// into operations against what the kernel has.
/// </summary>
public static class RouteCompiler
{
    /// <summary>VXLAN's overhead on an IPv4 underlay: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14), flannel's encapOverhead.</summary>
    public const int VxlanOverheadIPv4 = 50;

    /// <summary>On an IPv6 underlay the outer header is 40 bytes, not 20. (Flannel subtracts 50 for both; that can overflow a v6 underlay.)</summary>
    public const int VxlanOverheadIPv6 = 70;

    /// <summary>The largest VNI whose device name <c>trellis.N</c> fits in 15 characters.</summary>
    public const int MaxVni = 9_999_999;

    public static RouteCompilation Compile(RouteCompilerInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var errors = new List<CompileError>();
        var self = input.Self;
        bool usesVxlan = input.Backend == RoutingBackend.Vxlan;
        int overhead = self.UnderlayIp.AddressFamily == AddressFamily.InterNetworkV6 ? VxlanOverheadIPv6 : VxlanOverheadIPv4;
        int podMtu = usesVxlan ? input.UnderlayMtu - overhead : input.UnderlayMtu;
        int metric = self.PodCidr.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6 ? RoutingNames.IPv6DefaultMetric : 0;

        ValidateSelf(input, errors);
        if (errors.Count > 0)
        {
            return new RouteCompilation(null, podMtu, errors);
        }

        string vxlanName = RoutingNames.VxlanDevice(input.Vni);
        var devices = new List<VxlanDeviceSpec>();
        var addresses = new List<AddressSpec>();
        if (usesVxlan)
        {
            devices.Add(new VxlanDeviceSpec(vxlanName, input.Vni, input.Port, self.UnderlayIp, input.UnderlayInterface, podMtu, self.VtepMac!.Value));
            // Flannel's choice: the device holds its pod subnet's network address as a /32 (/128), so no
            // connected or broadcast route is created, yet host-to-remote-pod traffic gets a source on the
            // pod network (the remote side routes replies back through the tunnel, not the underlay).
            // It is also the next hop the other nodes route this subnet through.
            var own = self.PodCidr.BaseAddress;
            addresses.Add(new AddressSpec(vxlanName, new IPCidr(own, own.AddressFamily == AddressFamily.InterNetwork ? 32 : 128)));
        }

        var routes = new List<RouteSpec>();
        var neighbours = new List<NeighSpec>();
        var fdb = new List<FdbSpec>();
        var underlaySubnet = self.UnderlaySubnet!.Value;
        var names = new HashSet<string>(StringComparer.Ordinal) { self.Name };
        var macOwners = new Dictionary<MacAddress, string>();
        if (usesVxlan)
        {
            macOwners[self.VtepMac!.Value] = self.Name;
        }
        (UInt128 End, string Node, IPNetwork Cidr)? widest = null;

        // Sorted by pod CIDR (then name) so the output, and which of two clashing nodes is refused, never
        // depends on the order the store listed them in.
        var peers = input.Peers
            .Where(p => p is not null && p.Name != self.Name)
            .OrderBy(p => p.PodCidr, IPNetworkOrder.Instance)
            .ThenBy(p => p.Name, StringComparer.Ordinal);
        foreach (var peer in peers)
        {
            string node = string.IsNullOrEmpty(peer.Name) ? "(unnamed)" : peer.Name;
            if (string.IsNullOrEmpty(peer.Name))
            {
                errors.Add(new CompileError(node, "name", "is empty"));
                continue;
            }
            if (!names.Add(peer.Name))
            {
                errors.Add(new CompileError(node, "name", $"appears twice; {peer.PodCidr} ignored"));
                continue;
            }
            if (peer.PodCidr.BaseAddress.AddressFamily != self.PodCidr.BaseAddress.AddressFamily)
            {
                errors.Add(new CompileError(node, "podCIDR", $"{peer.PodCidr} is not of this node's pod CIDR family ({self.PodCidr})"));
                continue;
            }
            if (Overlaps(peer.PodCidr, self.PodCidr))
            {
                errors.Add(new CompileError(node, "podCIDR", $"{peer.PodCidr} overlaps this node's pod CIDR {self.PodCidr}"));
                continue;
            }
            var (start, end) = Bounds(peer.PodCidr);
            if (widest is { } w && start <= w.End)
            {
                errors.Add(new CompileError(node, "podCIDR", $"{peer.PodCidr} overlaps node {w.Node}'s {w.Cidr}"));
                continue;
            }
            if (peer.UnderlayIp.AddressFamily != self.UnderlayIp.AddressFamily)
            {
                errors.Add(new CompileError(node, "underlayIP", $"{peer.UnderlayIp} is not of this node's underlay family ({self.UnderlayIp})"));
                continue;
            }
            if (peer.UnderlayIp.Equals(self.UnderlayIp))
            {
                errors.Add(new CompileError(node, "underlayIP", $"{peer.UnderlayIp} is this node's own underlay address"));
                continue;
            }

            bool sameL2 = underlaySubnet.Contains(peer.UnderlayIp);
            bool direct = input.Backend == RoutingBackend.HostGw || (input.DirectRouting && sameL2);
            if (direct && !sameL2)
            {
                // The kernel would refuse the route anyway (ENETUNREACH: the gateway is not on a connected
                // subnet); flannel just logs that failure. Say why, and what would work instead.
                errors.Add(new CompileError(node, "underlayIP",
                    $"host-gw cannot reach {peer.PodCidr}: node IP {peer.UnderlayIp} (subnet {Describe(peer.UnderlaySubnet)}) is not on this node's L2 subnet {underlaySubnet}; "
                    + "host-gw needs every node on one L2 segment (use vxlan, or vxlan with directRouting)"));
                continue;
            }
            if (direct)
            {
                routes.Add(new RouteSpec(peer.PodCidr, peer.UnderlayIp, input.UnderlayInterface) { Metric = metric });
            }
            else
            {
                if (peer.VtepMac is not { } mac)
                {
                    errors.Add(new CompileError(node, "vtepMAC", $"missing; {peer.PodCidr} is reached through VXLAN and needs the node's VTEP MAC (its subnet lease has none)"));
                    continue;
                }
                if (mac.IsMulticast || mac.IsZero)
                {
                    errors.Add(new CompileError(node, "vtepMAC", $"{mac} is not a unicast address"));
                    continue;
                }
                if (macOwners.TryGetValue(mac, out var owner))
                {
                    errors.Add(new CompileError(node, "vtepMAC", $"{mac} is also node {owner}'s; one FDB entry cannot lead to two nodes"));
                    continue;
                }
                macOwners[mac] = peer.Name;
                // Flannel's scheme: the route's next hop is the remote device's own address (its subnet's
                // network address), "onlink" because no prefix on trellis.N covers it; the permanent
                // neighbour resolves it to the remote VTEP MAC without ARP, and the FDB entry sends that
                // MAC to the remote node's underlay address. Nothing is learned, nothing is missed.
                var gateway = peer.PodCidr.BaseAddress;
                routes.Add(new RouteSpec(peer.PodCidr, gateway, vxlanName) { OnLink = true, Metric = metric });
                neighbours.Add(new NeighSpec(vxlanName, gateway, mac));
                fdb.Add(new FdbSpec(vxlanName, mac, peer.UnderlayIp));
            }
            if (widest is null || end > widest.Value.End)
            {
                widest = (end, peer.Name, peer.PodCidr);
            }
        }

        var state = new RoutingState { Devices = devices, Addresses = addresses, Routes = routes, Neighbours = neighbours, Fdb = fdb };
        return new RouteCompilation(state, podMtu, errors);
    }

    private static void ValidateSelf(RouteCompilerInput input, List<CompileError> errors)
    {
        var self = input.Self;
        if (self is null)
        {
            errors.Add(new CompileError(null, "self", "is required"));
            return;
        }
        if (string.IsNullOrEmpty(self.Name))
        {
            errors.Add(new CompileError(null, "self.name", "is empty"));
        }
        if (self.UnderlaySubnet is not { } subnet)
        {
            errors.Add(new CompileError(null, "self.underlaySubnet", "is required: it decides which nodes share this node's L2 segment"));
        }
        else if (!subnet.Contains(self.UnderlayIp))
        {
            errors.Add(new CompileError(null, "self.underlayIP", $"{self.UnderlayIp} is not in this node's underlay subnet {subnet}"));
        }
        if (!RoutingNames.IsValidInterfaceName(input.UnderlayInterface))
        {
            errors.Add(new CompileError(null, "underlayInterface", $"'{input.UnderlayInterface}' is not a valid interface name"));
        }
        if (input.UnderlayMtu is < 1280 or > 65535)
        {
            errors.Add(new CompileError(null, "underlayMTU", string.Create(CultureInfo.InvariantCulture, $"{input.UnderlayMtu} is not between 1280 and 65535")));
        }
        if (input.Backend == RoutingBackend.HostGw && input.DirectRouting)
        {
            errors.Add(new CompileError(null, "directRouting", "applies to the vxlan backend only; host-gw always routes directly"));
        }
        if (input.Backend != RoutingBackend.Vxlan)
        {
            return;
        }
        if (input.Vni is < 1 or > MaxVni)
        {
            errors.Add(new CompileError(null, "vni", string.Create(CultureInfo.InvariantCulture,
                $"{input.Vni} is not between 1 and {MaxVni} (the device name trellis.<vni> must fit Linux's 15-character limit)")));
        }
        if (input.Port is < 1 or > 65535)
        {
            errors.Add(new CompileError(null, "port", string.Create(CultureInfo.InvariantCulture, $"{input.Port} is not a UDP port")));
        }
        if (self.VtepMac is not { } mac)
        {
            errors.Add(new CompileError(null, "self.vtepMAC", "is required for the vxlan backend"));
        }
        else if (mac.IsMulticast || mac.IsZero)
        {
            errors.Add(new CompileError(null, "self.vtepMAC", $"{mac} is not a unicast address"));
        }
    }

    private static string Describe(IPNetwork? subnet) => subnet?.ToString() ?? "unknown";

    private static (UInt128 Start, UInt128 End) Bounds(IPNetwork n) =>
        (IPAddressMath.ToInteger(n.BaseAddress), IPAddressMath.ToInteger(IPAddressMath.LastAddress(n)));

    private static bool Overlaps(IPNetwork a, IPNetwork b) => a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress);
}
