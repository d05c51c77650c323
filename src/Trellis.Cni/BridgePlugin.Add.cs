using System.Net;
using System.Net.Sockets;
using Trellis.Core.Cni;
using Trellis.Core.Ipam;
using Trellis.Model;
using Trellis.Netlink;

namespace Trellis.Cni;

internal sealed partial class BridgePlugin
{
    private CniResult Add()
    {
        // Pure checks first: a requested address outside every range must fail before anything
        // (even the bridge) is made on the node.
        var requested = IpAllocator.AssignRequested(_conf.Ipam.Ranges, _conf.RequestedIps(_env));
        using var containerNs = OpenContainerNetNs(_env.NetNs!);
        using var host = RtNetlink.Open();
        var bridge = EnsureBridge(host);
        Trace.Mark("bridge ensured");

        IReadOnlyList<IpAllocation> ips;
        Link hostVeth;
        // The reservation and the creation of the host veth (with its owner alias) happen under
        // the store lock, so GC — which takes the same lock — never sees one without the other
        // mid-flight: any unlabelled or unowned leftover it finds belongs to a killed invocation.
        using (LockStore())
        {
            ips = Reserve(requested);
            Trace.Mark("ipam reserved");
            try
            {
                hostVeth = CreateVeth(host, containerNs, bridge);
            }
            catch
            {
                ReleaseReserved();
                throw;
            }
        }

        Trace.Mark("veth created");
        try
        {
            EnsureGateways(host, bridge, ips);
            if (_conf.HairpinMode)
            {
                host.LinkSetBridgePortHairpin(hostVeth.Index, true);
            }
            Trace.Mark("host side configured");
            var container = ConfigureContainer(containerNs, ips);
            Trace.Mark("container side configured");
            return BuildResult(bridge, hostVeth, container, ips);
        }
        catch (Exception e) when (e is NetlinkException or CniException)
        {
            // ADD undoes its partial work: the runtime may not call DEL after a failed ADD.
            host.LinkDelByName(HostVeth);
            using (LockStore())
            {
                ReleaseReserved();
            }
            throw e is NetlinkException ne ? Fail("ADD", ne) : e;
        }
    }

    /// <summary>One address per range set, honouring requested IPs; an ADD retried for the same attachment gets its addresses back.</summary>
    private List<IpAllocation> Reserve(IReadOnlyList<IPAddress?> requested)
    {
        var sets = _conf.Ipam.Ranges;
        var held = _store.GetByAttachment(_env.ContainerId!, _env.IfName!);
        var result = new List<IpAllocation>(sets.Count);
        for (int i = 0; i < sets.Count; i++)
        {
            var set = sets[i];
            IPAddress? mine = held.FirstOrDefault(set.Contains);
            IPAddress? want = requested[i];
            if (mine is not null && (want is null || want.Equals(mine)))
            {
                var range = set.RangeFor(mine)!;
                result.Add(new IpAllocation(new IPCidr(mine, range.Subnet.PrefixLength), range.Gateway));
                continue;
            }
            // A requested address is checked for being free by Allocate; TryReserve re-checks ownership.
            result.Add(IpAllocator.Allocate(set, _store.IsReserved, _store.LastReserved(set.Index), want));
        }
        if (!_store.TryReserve(result.Select(a => a.Address.Address).ToList(), _env.ContainerId!, _env.IfName!))
        {
            throw new CniException(CniErrorCode.InvalidConfig, "IP: a requested address is already allocated to another attachment");
        }
        return result;
    }

    private void ReleaseReserved() => _store.ReleaseByAttachment(_env.ContainerId!, _env.IfName!);

    private Link EnsureBridge(RtNetlink host)
    {
        var br = host.LinkGetByName(_conf.Bridge);
        if (br is null)
        {
            try
            {
                br = host.LinkAddBridge(_conf.Bridge, new BridgeOptions { Mtu = _conf.Mtu });
            }
            catch (NetlinkException e) when (e.IsExists)
            {
                // Another ADD created it first.
                br = host.LinkGetByName(_conf.Bridge);
            }
            catch (NetlinkException e)
            {
                throw new CniException(CniErrorCode.InvalidConfig, $"bridge: cannot create '{_conf.Bridge}': {e.Message}");
            }
        }
        if (br is null || br.Kind != "bridge")
        {
            throw new CniException(CniErrorCode.InvalidConfig, $"bridge: '{_conf.Bridge}' already exists and is not a bridge ({br?.Kind ?? "gone"})");
        }
        if (!br.IsUp)
        {
            host.LinkSetUp(br.Index);
        }
        return br;
    }

    private Link CreateVeth(RtNetlink host, NetNs containerNs, Link bridge)
    {
        string name = HostVeth;
        if (host.LinkGetByName(name) is { } existing)
        {
            // A leftover of an ADD killed for this very attachment (labelled ours, or unlabelled on
            // our bridge): replace it. Anything else with this name is not ours to delete.
            bool leftover = existing.Alias == HostVethName.Alias(_conf.Name, _env.ContainerId!, _env.IfName!)
                || (string.IsNullOrEmpty(existing.Alias) && existing.MasterIndex == bridge.Index);
            if (!leftover)
            {
                throw new CniException(CniErrorCode.InvalidConfig,
                    $"host veth name '{name}' for {_env.ContainerId}/{_env.IfName} is taken by another link ({existing.Alias ?? existing.Kind})");
            }
            host.LinkDel(existing.Index);
        }
        Link veth;
        try
        {
            veth = host.LinkAddVeth(name, _env.IfName!, new VethOptions
            {
                Mtu = _conf.Mtu,
                PeerNetNs = containerNs,
                PeerMac = _conf.RequestedMac(_env) is { } mac ? Mac.Parse(mac) : null,
                MasterIndex = bridge.Index,
                Up = true,
            });
        }
        catch (NetlinkException e) when (e.IsExists)
        {
            throw new CniException(CniErrorCode.InvalidConfig, $"CNI_IFNAME: interface '{_env.IfName}' already exists in {_env.NetNs}");
        }
        catch (NetlinkException e)
        {
            throw Fail($"creating veth {name}/{_env.IfName}", e);
        }
        try
        {
            // The kernel ignores IFLA_IFALIAS on RTM_NEWLINK create, hence a second message.
            host.LinkSetAlias(veth.Index, HostVethName.Alias(_conf.Name, _env.ContainerId!, _env.IfName!));
        }
        catch (NetlinkException e)
        {
            host.LinkDelByName(name);
            throw Fail($"labelling veth {name}", e);
        }
        return veth;
    }

    private void EnsureGateways(RtNetlink host, Link bridge, IReadOnlyList<IpAllocation> ips)
    {
        if (!_conf.IsGateway)
        {
            return;
        }
        foreach (var ip in ips)
        {
            if (ip.Gateway is null)
            {
                continue;
            }
            try
            {
                host.AddrAdd(bridge.Index, new IPCidr(ip.Gateway, ip.Address.PrefixLength));
            }
            catch (NetlinkException e) when (e.IsExists)
            {
                // Set by an earlier ADD: the common case.
            }
            Sysctl.EnsureForwarding(ip.Address.IsIPv4);
        }
    }

    private Link ConfigureContainer(NetNs containerNs, IReadOnlyList<IpAllocation> ips)
    {
        using var nl = RtNetlink.OpenIn(containerNs);
        var link = nl.LinkGetByName(_env.IfName!)
            ?? throw new CniException(CniErrorCode.IoFailure, $"CNI_IFNAME: '{_env.IfName}' did not appear in {_env.NetNs}");
        foreach (var ip in ips)
        {
            nl.AddrAdd(link.Index, ip.Address, new AddrOptions { NoDad = !ip.Address.IsIPv4 });
        }
        nl.LinkSetUp(link.Index);
        foreach (var route in ContainerRoutes(ips))
        {
            nl.RouteReplace(route with { OutIndex = link.Index });
        }
        // Coming up changes neither name nor MAC: the link as read before is what the result needs.
        return link;
    }

    /// <summary>ipam.routes with their gateway filled from the address of the same family, plus isDefaultGateway.</summary>
    private List<Route> ContainerRoutes(IReadOnlyList<IpAllocation> ips)
    {
        var routes = new List<Route>();
        foreach (var r in ResultRoutes(ips))
        {
            var gw = r.Gw ?? ips.FirstOrDefault(i => i.Address.Family == r.Dst.Family).Gateway;
            routes.Add(new Route
            {
                Destination = r.Dst.PrefixLength == 0 ? null : r.Dst.Network,
                Family = r.Dst.Family,
                Gateway = gw,
                Priority = r.Priority,
                Mtu = r.Mtu,
                Table = r.Table ?? 254,
            });
        }
        return routes;
    }

    private List<CniRoute> ResultRoutes(IReadOnlyList<IpAllocation> ips)
    {
        var routes = new List<CniRoute>(_conf.Ipam.Routes);
        if (_conf.IsDefaultGateway)
        {
            foreach (var ip in ips)
            {
                if (ip.Gateway is not null && !routes.Any(r => r.Dst.PrefixLength == 0 && r.Dst.Family == ip.Address.Family))
                {
                    routes.Add(new CniRoute(new IPCidr(ip.Address.IsIPv4 ? IPAddress.Any : IPAddress.IPv6Any, 0), ip.Gateway));
                }
            }
        }
        return routes;
    }

    private CniResult BuildResult(Link bridge, Link hostVeth, Link container, IReadOnlyList<IpAllocation> ips) => new()
    {
        Interfaces =
        [
            new CniInterface(bridge.Name, MacText(bridge)),
            new CniInterface(hostVeth.Name, MacText(hostVeth)),
            new CniInterface(container.Name, MacText(container), _env.NetNs, _conf.Mtu),
        ],
        Ips = ips.Select(ip => new CniIpConfig(ip.Address, ip.Gateway, 2)).ToList(),
        Routes = ResultRoutes(ips),
        Dns = _conf.Dns,
    };

    private static string? MacText(Link link) => link.Mac is { } mac ? Mac.Format(mac) : null;
}
