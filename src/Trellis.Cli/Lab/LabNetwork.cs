using System.Diagnostics;
using System.Net;
using Trellis.Core.Lab;
using Trellis.Model;
using Trellis.Netlink;

namespace Trellis.Cli.Lab;

/// <summary>
/// The lab's L2/L3 skeleton: an underlay netns with bridge ul0 (the physical network, also the
/// world outside the cluster) and one netns per node attached to it by a veth, with the node's
/// address, a default route to the outside and forwarding on. Nothing here touches the host
/// netns except creating and deleting the lab's own namespaces (DESIGN.md §5).
/// </summary>
public static class LabNetwork
{
    public const string UnderlayBridge = "ul0";

    /// <summary>Creates (or completes: it is idempotent) the underlay and every node.</summary>
    public static void Build(LabConfig config)
    {
        string ul = LabNames.UnderlayNetns(config.Name);
        EnsureNetns(ul);
        using var ulNs = NetNs.Open(NetnsPath(ul));
        using var ulNl = RtNetlink.OpenIn(ulNs);
        SetUp(ulNl, "lo");
        var br = ulNl.LinkGetByName(UnderlayBridge) ?? ulNl.LinkAddBridge(UnderlayBridge, new BridgeOptions { Mtu = config.UnderlayMtu });
        ulNl.LinkSetMtu(br.Index, config.UnderlayMtu);
        AddrEnsure(ulNl, br.Index, new IPCidr(config.OutsideIp, config.Underlay.PrefixLength));
        ulNl.LinkSetUp(br.Index);

        foreach (var node in config.Nodes)
        {
            string nodeNs = LabNames.NodeNetns(config.Name, node.Name);
            EnsureNetns(nodeNs);
            using var ns = NetNs.Open(NetnsPath(nodeNs));
            using var nl = RtNetlink.OpenIn(ns);
            SetUp(nl, "lo");
            string port = LabNames.UnderlayPort(config.Name, node.Name);
            if (nl.LinkGetByName("eth0") is null)
            {
                ulNl.LinkDelByName(port); // half-made by an interrupted lab up
                ulNl.LinkAddVeth(port, "eth0", new VethOptions { Mtu = config.UnderlayMtu, PeerNetNs = ns, MasterIndex = br.Index, Up = true });
            }
            var eth0 = nl.LinkGetByName("eth0")!;
            AddrEnsure(nl, eth0.Index, new IPCidr(node.Ip, config.Underlay.PrefixLength));
            nl.LinkSetUp(eth0.Index);
            nl.RouteReplace(new Route { Family = System.Net.Sockets.AddressFamily.InterNetwork, Gateway = config.OutsideIp, OutIndex = eth0.Index });
            Sysctl(nodeNs, "net.ipv4.ip_forward=1");
        }
    }

    /// <summary>Adds extra addresses (the lab's etcd members) to bridge ul0 in the underlay netns; idempotent.</summary>
    public static void AddUnderlayAddresses(LabConfig config, IEnumerable<IPAddress> addresses)
    {
        using var ulNs = NetNs.Open(NetnsPath(LabNames.UnderlayNetns(config.Name)));
        using var ulNl = RtNetlink.OpenIn(ulNs);
        var br = ulNl.LinkGetByName(UnderlayBridge) ?? throw new IOException($"{LabNames.UnderlayNetns(config.Name)}: bridge {UnderlayBridge} is missing");
        foreach (var a in addresses)
        {
            AddrEnsure(ulNl, br.Index, new IPCidr(a, config.Underlay.PrefixLength));
        }
    }

    /// <summary>Deletes every namespace of the lab (its veths and bridges go with them).</summary>
    public static void Destroy(string lab, IEnumerable<string> knownNetns)
    {
        var names = new HashSet<string>(knownNetns);
        // Also whatever carries the lab's prefix: pod namespaces made by kubelets are found this way.
        if (Directory.Exists("/var/run/netns"))
        {
            foreach (var f in Directory.EnumerateFiles("/var/run/netns"))
            {
                string n = Path.GetFileName(f);
                if (n.StartsWith(LabNames.Prefix(lab), StringComparison.Ordinal))
                {
                    names.Add(n);
                }
            }
        }
        foreach (var n in names)
        {
            DeleteNetns(n);
        }
    }

    public static string NetnsPath(string name) => "/var/run/netns/" + name;

    public static void EnsureNetns(string name)
    {
        if (!File.Exists(NetnsPath(name)))
        {
            Ip("netns", "add", name);
        }
    }

    public static void DeleteNetns(string name)
    {
        if (File.Exists(NetnsPath(name)))
        {
            Ip("netns", "del", name);
        }
        string etc = "/etc/netns/" + name;
        if (Directory.Exists(etc))
        {
            Directory.Delete(etc, recursive: true);
        }
    }

    public static void Sysctl(string netns, string assignment) => Ip("netns", "exec", netns, "sysctl", "-qw", assignment);

    private static void SetUp(RtNetlink nl, string name)
    {
        if (nl.LinkGetByName(name) is { } l && !l.IsUp)
        {
            nl.LinkSetUp(l.Index);
        }
    }

    private static void AddrEnsure(RtNetlink nl, int index, IPCidr cidr)
    {
        try
        {
            nl.AddrAdd(index, cidr);
        }
        catch (NetlinkException e) when (e.IsExists)
        {
        }
    }

    internal static void Ip(params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new IOException($"ip {string.Join(' ', args)}: {err.Trim()}");
        }
    }
}
