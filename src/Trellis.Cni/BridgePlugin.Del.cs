using System.Net;
using Trellis.Core.Cni;
using Trellis.Model;
using Trellis.Netlink;

namespace Trellis.Cni;

internal sealed partial class BridgePlugin
{
    /// <summary>
    /// DEL never needs the container's netns: the host end's name derives from the attachment,
    /// and deleting one end of a veth deletes both. So it succeeds when the netns, the link or
    /// the allocation are already gone. The port goes down before DEL returns; the kernel's slow
    /// unregistration runs in a detached reaper (see <see cref="LinkReaper"/>).
    /// </summary>
    private CniResult? Del()
    {
        using (LockStore())
        {
            ReleaseReserved();
        }
        Trace.Mark("ipam released");
        try
        {
            using var host = RtNetlink.Open();
            if (host.LinkGetByName(HostVeth) is { } link)
            {
                host.LinkSetDown(link.Index);
                LinkReaper.Spawn(link.Index, link.Name);
            }
            Trace.Mark("link down, reaper started");
        }
        catch (NetlinkException e) when (e.IsNotFound)
        {
            // Raced with another DEL or with the netns going away.
        }
        catch (NetlinkException e)
        {
            throw Fail("DEL", e);
        }
        return null;
    }

    /// <summary>CHECK: the attachment still looks the way ADD left it (prevResult).</summary>
    private CniResult? Check()
    {
        var prev = _conf.PrevResult
            ?? throw new CniException(CniErrorCode.InvalidConfig, "prevResult: required for CHECK");
        using var containerNs = OpenContainerNetNs(_env.NetNs!);
        using var host = RtNetlink.Open();
        var bridge = host.LinkGetByName(_conf.Bridge);
        if (bridge is null || bridge.Kind != "bridge")
        {
            throw CheckFailed($"bridge: '{_conf.Bridge}' is missing or not a bridge");
        }
        var hostVeth = host.LinkGetByName(HostVeth);
        if (hostVeth is null || hostVeth.MasterIndex != bridge.Index)
        {
            throw CheckFailed($"host veth '{HostVeth}' is missing or not on bridge '{_conf.Bridge}'");
        }

        using var nl = RtNetlink.OpenIn(containerNs);
        var link = nl.LinkGetByName(_env.IfName!) ?? throw CheckFailed($"CNI_IFNAME: '{_env.IfName}' does not exist in {_env.NetNs}");
        var mine = prev.Interfaces.FirstOrDefault(i => i.Name == _env.IfName && i.Sandbox is not null);
        if (mine?.Mac is { } mac && !string.Equals(mac, MacText(link), StringComparison.OrdinalIgnoreCase))
        {
            throw CheckFailed($"prevResult.interfaces: {_env.IfName} has MAC {MacText(link)}, expected {mac}");
        }
        var addrs = nl.AddrList(link.Index);
        foreach (var ip in prev.Ips)
        {
            if (!addrs.Any(a => a.Cidr.Address.Equals(ip.Address.Address) && a.Cidr.PrefixLength == ip.Address.PrefixLength))
            {
                throw CheckFailed($"prevResult.ips: {ip.Address} is not on {_env.IfName}");
            }
            if (!_store.GetByAttachment(_env.ContainerId!, _env.IfName!).Contains(ip.Address.Address))
            {
                throw CheckFailed($"prevResult.ips: {ip.Address.Address} is not allocated to {_env.ContainerId}/{_env.IfName}");
            }
        }
        foreach (var r in prev.Routes)
        {
            var routes = nl.RouteList(r.Dst.Family, r.Table ?? 254);
            IPNetwork? dst = r.Dst.PrefixLength == 0 ? null : r.Dst.Network;
            if (!routes.Any(k => Nullable.Equals(k.Destination, dst) && (r.Gw is null || r.Gw.Equals(k.Gateway))))
            {
                throw CheckFailed($"prevResult.routes: no route to {r.Dst}{(r.Gw is null ? "" : " via " + r.Gw)} in {_env.NetNs}");
            }
        }
        return null;
    }

    private CniException CheckFailed(string what) =>
        new(CniErrorCode.InvalidConfig, $"CHECK {_env.ContainerId}/{_env.IfName}: {what}");

    /// <summary>STATUS: 50 when no address is left in some range set or the node cannot host the bridge.</summary>
    private CniResult? Status()
    {
        var reserved = _store.List().Select(r => r.Address).ToList();
        foreach (var set in _conf.Ipam.Ranges)
        {
            if (Trellis.Core.Ipam.IpAllocator.CountFree(set, reserved) == 0)
            {
                throw new CniException(CniErrorCode.NotAvailable,
                    $"ipam.ranges[{set.Index}]: no IP addresses available in range set {set}");
            }
        }
        using var host = RtNetlink.Open();
        var br = host.LinkGetByName(_conf.Bridge);
        if (br is not null && br.Kind != "bridge")
        {
            throw new CniException(CniErrorCode.NotAvailable, $"bridge: '{_conf.Bridge}' exists and is not a bridge ({br.Kind})");
        }
        // 51: new pods could be wired, but the pods already there are cut off.
        if (br is not null && !br.IsUp)
        {
            throw new CniException(CniErrorCode.LimitedConnectivity, $"bridge: '{_conf.Bridge}' is down: existing pods on it have no connectivity");
        }
        if (br is not null && _conf.IsGateway && File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim() != "1")
        {
            throw new CniException(CniErrorCode.LimitedConnectivity, "isGateway: IPv4 forwarding is off on this node: pods can reach only their own bridge");
        }
        return null;
    }

    /// <summary>
    /// GC: release every allocation and remove every host veth of this network whose attachment
    /// is not in cni.dev/valid-attachments. Runs under the store lock, which ADD holds from
    /// reservation to labelling its veth, so an unlabelled veth on our bridge is a crash leftover.
    /// </summary>
    private CniResult? Gc()
    {
        var valid = (_conf.ValidAttachments ?? []).Select(a => (a.ContainerId, a.IfName)).ToHashSet();
        var validAliases = valid.Select(a => HostVethName.Alias(_conf.Name, a.ContainerId, a.IfName)).ToHashSet(StringComparer.Ordinal);
        using var host = RtNetlink.Open();
        using (LockStore())
        {
            _store.ReleaseAllExcept(valid);
            var bridge = host.LinkGetByName(_conf.Bridge);
            foreach (var link in host.LinkList())
            {
                if (link.Kind != "veth" || !link.Name.StartsWith(HostVethName.Prefix, StringComparison.Ordinal))
                {
                    continue;
                }
                bool orphan = HostVethName.IsOfNetwork(link.Alias, _conf.Name)
                    ? !validAliases.Contains(link.Alias!)
                    : string.IsNullOrEmpty(link.Alias) && bridge is not null && link.MasterIndex == bridge.Index;
                if (orphan)
                {
                    try
                    {
                        host.LinkDel(link.Index);
                    }
                    catch (NetlinkException e) when (e.IsNotFound)
                    {
                    }
                }
            }
        }
        return null;
    }
}
