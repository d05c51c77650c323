using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Trellis.Agent.Routing;
using Trellis.Core.Routing;
using Trellis.Model;
using Trellis.Netlink;

namespace Trellis.Agent.Tests.Support;

/// <summary>
/// A two-node cluster network in namespaces, built the way the lab builds one: an underlay netns
/// (<c>trl-agt-ID-ul</c>) with bridge <c>ul0</c> holding 172.29.0.1/24 — an address that is no node's —, one
/// netns per node (<c>trl-agt-ID-nN</c>) whose <c>eth0</c> is a veth into <c>ul0</c> (172.29.0.1N/24,
/// ip_forward on), and in each node a bridge <c>trellis0</c> holding the pod gateway 10.250.N.1/24 with one
/// pod netns (<c>trl-agt-ID-pN</c>, eth0 10.250.N.2/24, default via the gateway) attached by a veth, as
/// trellis-cni wires a pod. No cross-node route exists until a <see cref="RoutingReconciler"/> syncs.
/// Every namespace is deleted on Dispose, also when the build fails half way. 172.29.0.0/24 and
/// 10.250.0.0/16 are used by no other test; nothing touches the host namespace.
/// </summary>
internal sealed class TestCluster : IDisposable
{
    public const string UnderlayInterface = "eth0";
    public const int UnderlayMtu = 1500;
    public const int PodMtu = 1450;

    public static readonly IPNetwork UnderlaySubnet = IPNetwork.Parse("172.29.0.0/24");
    public static readonly IPAddress OutsideIp = IPAddress.Parse("172.29.0.1");
    public static readonly IPNetwork ClusterCidr = IPNetwork.Parse("10.250.0.0/16");

    // `ip netns add` mounts /run/netns on first use: serialise so parallel test classes do not race on it.
    private static readonly Lock s_ipLock = new();

    private readonly List<string> _netns = [];
    private readonly List<IDisposable> _handles = [];
    private readonly List<TestNode> _nodes = [];

    public TestCluster(int nodes = 2)
    {
        Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        try
        {
            UnderlayNetns = AddNetns("ul");
            UnderlayNs = Keep(NetNs.Open(PathOf(UnderlayNetns)));
            UnderlayNl = Keep(RtNetlink.OpenIn(UnderlayNs));
            SetUp(UnderlayNl, "lo");
            var ul0 = UnderlayNl.LinkAddBridge("ul0", new BridgeOptions { Mtu = UnderlayMtu });
            UnderlayNl.AddrAdd(ul0.Index, new IPCidr(OutsideIp, 24));
            UnderlayNl.LinkSetUp(ul0.Index);
            for (int i = 1; i <= nodes; i++)
            {
                _nodes.Add(BuildNode(i, ul0.Index));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The random part of every namespace name: trl-agt-ID-….</summary>
    public string Id { get; }

    public string UnderlayNetns { get; } = "";

    public NetNs UnderlayNs { get; } = null!;

    public RtNetlink UnderlayNl { get; } = null!;

    public IReadOnlyList<TestNode> Nodes => _nodes;

    public TestNode Node1 => _nodes[0];

    public TestNode Node2 => _nodes[1];

    /// <summary>The input trellisd would compile for <paramref name="self"/>: by default every node of the cluster as peers.</summary>
    public RouteCompilerInput Input(TestNode self, RoutingBackend backend, bool directRouting = false, IEnumerable<RouteNode>? peers = null) => new()
    {
        Self = self.RouteNode,
        UnderlayInterface = UnderlayInterface,
        Peers = (peers ?? _nodes.Select(n => n.RouteNode)).ToList(),
        Backend = backend,
        DirectRouting = directRouting,
        UnderlayMtu = UnderlayMtu,
    };

    /// <summary>Syncs every node and asserts each converged without a failed operation.</summary>
    public void SyncAll(RoutingBackend backend, bool directRouting = false)
    {
        foreach (var node in _nodes)
        {
            var result = node.Reconciler.Sync(Input(node, backend, directRouting));
            Assert.True(result.Converged && result.Apply.Succeeded, $"{node.Name}: {result.Describe()}");
        }
    }

    /// <summary>What the kernels hold, for failure messages.</summary>
    public string Describe()
    {
        var text = new System.Text.StringBuilder();
        foreach (var n in _nodes)
        {
            text.Append("== ").Append(n.Name).Append('\n')
                .Append(Cmd.Run("ip", "-n", n.Netns, "-d", "link").Stdout)
                .Append(Cmd.Run("ip", "-n", n.Netns, "route").Stdout)
                .Append(Cmd.Run("ip", "-n", n.Netns, "neigh").Stdout)
                .Append(Cmd.Run("bridge", "-n", n.Netns, "fdb", "show").Stdout);
        }
        return text.ToString();
    }

    public void Dispose()
    {
        for (int i = _handles.Count - 1; i >= 0; i--)
        {
            _handles[i].Dispose();
        }
        lock (s_ipLock)
        {
            for (int i = _netns.Count - 1; i >= 0; i--)
            {
                Cmd.Run("ip", "netns", "del", _netns[i]);
            }
        }
    }

    private TestNode BuildNode(int i, int ul0)
    {
        string name = $"node-{i}";
        var underlayIp = IPAddress.Parse($"172.29.0.{10 + i}");
        var podCidr = IPNetwork.Parse($"10.250.{i}.0/24");
        var gateway = IPAddress.Parse($"10.250.{i}.1");
        var podIp = IPAddress.Parse($"10.250.{i}.2");

        string nodeNetns = AddNetns($"n{i}");
        var ns = Keep(NetNs.Open(PathOf(nodeNetns)));
        var nl = Keep(RtNetlink.OpenIn(ns));
        SetUp(nl, "lo");
        UnderlayNl.LinkAddVeth($"ul-n{i}", UnderlayInterface, new VethOptions { Mtu = UnderlayMtu, PeerNetNs = ns, MasterIndex = ul0, Up = true });
        var eth0 = nl.LinkGetByName(UnderlayInterface)!;
        nl.AddrAdd(eth0.Index, new IPCidr(underlayIp, 24));
        nl.LinkSetUp(eth0.Index);
        Cmd.Check("ip", "netns", "exec", nodeNetns, "sysctl", "-qw", "net.ipv4.ip_forward=1");

        var bridge = nl.LinkAddBridge("trellis0", new BridgeOptions { Mtu = PodMtu });
        nl.AddrAdd(bridge.Index, new IPCidr(gateway, 24));
        nl.LinkSetUp(bridge.Index);

        string podNetns = AddNetns($"p{i}");
        var podNs = Keep(NetNs.Open(PathOf(podNetns)));
        using (var podNl = RtNetlink.OpenIn(podNs))
        {
            SetUp(podNl, "lo");
            nl.LinkAddVeth($"veth-p{i}", "eth0", new VethOptions { Mtu = PodMtu, PeerNetNs = podNs, MasterIndex = bridge.Index, Up = true });
            var podEth0 = podNl.LinkGetByName("eth0")!;
            podNl.AddrAdd(podEth0.Index, new IPCidr(podIp, 24));
            podNl.LinkSetUp(podEth0.Index);
            podNl.RouteReplace(new Route { Family = AddressFamily.InterNetwork, Gateway = gateway, OutIndex = podEth0.Index });
        }

        var vtep = MacAddress.ForNode(name);
        return new TestNode(name, nodeNetns, ns, nl, underlayIp, podCidr, podNetns, podNs, podIp,
            new RouteNode(name, underlayIp, UnderlaySubnet, podCidr, vtep), new RoutingReconciler(nl, UnderlayInterface));
    }

    private string AddNetns(string suffix)
    {
        string name = $"trl-agt-{Id}-{suffix}";
        lock (s_ipLock)
        {
            Cmd.Check("ip", "netns", "add", name);
        }
        _netns.Add(name);
        return name;
    }

    private T Keep<T>(T handle)
        where T : IDisposable
    {
        _handles.Add(handle);
        return handle;
    }

    private static string PathOf(string netns) => "/var/run/netns/" + netns;

    private static void SetUp(RtNetlink nl, string link) => nl.LinkSetUp(nl.LinkGetByName(link)!.Index);
}

/// <summary>One node of a <see cref="TestCluster"/>, with its pod and its reconciler.</summary>
internal sealed record TestNode(
    string Name,
    string Netns,
    NetNs Ns,
    RtNetlink Nl,
    IPAddress UnderlayIp,
    IPNetwork PodCidr,
    string PodNetns,
    NetNs PodNs,
    IPAddress PodIp,
    RouteNode RouteNode,
    RoutingReconciler Reconciler)
{
    public string NetnsPath => "/var/run/netns/" + Netns;
}
