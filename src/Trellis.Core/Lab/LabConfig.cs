using System.Net;
using Trellis.Model;

namespace Trellis.Core.Lab;

/// <summary>One node of the lab: its name, underlay address and pod range.</summary>
public sealed record LabNode(string Name, IPAddress Ip, IPNetwork PodCidr);

/// <summary>
/// Everything `trellis lab up` builds, with DESIGN.md §5's defaults. Pure: the flags and the
/// optional lab.yaml are folded into one value, and every derived address (node IPs, pod
/// ranges, gateway) is computed here so tests can check it without a kernel.
/// </summary>
public sealed record LabConfig
{
    public const string DefaultName = "default";

    public string Name { get; init; } = DefaultName;

    public int NodeCount { get; init; } = 3;

    public string Backend { get; init; } = "vxlan";

    /// <summary>flannel's vxlan DirectRouting: host-gw routes to nodes on the same L2 subnet, VXLAN to the rest.</summary>
    public bool DirectRouting { get; init; }

    public string Store { get; init; } = "sqlite";

    public bool Demo { get; init; }

    /// <summary>
    /// The CNI plugin the nodes' conflists name: "trellis-cni", or "reference" for Debian's
    /// bridge + host-local with the same settings — the peer that bench/ measures against.
    /// </summary>
    public string CniPlugin { get; init; } = "trellis-cni";

    public IPNetwork Underlay { get; init; } = IPNetwork.Parse("172.30.0.0/24");

    /// <summary>The underlay address of the "outside world" (the underlay netns itself).</summary>
    public IPAddress OutsideIp { get; init; } = IPAddress.Parse("172.30.0.1");

    /// <summary>Node i (1-based) gets FirstNodeHost + i - 1 in the underlay: .11, .12, …</summary>
    public int FirstNodeHost { get; init; } = 11;

    public IPNetwork ClusterCidr { get; init; } = IPNetwork.Parse("10.244.0.0/16");

    public int NodeSubnetLength { get; init; } = 24;

    public IPNetwork ServiceCidr { get; init; } = IPNetwork.Parse("10.96.0.0/16");

    public IPAddress DnsIp { get; init; } = IPAddress.Parse("10.96.0.10");

    public string Domain { get; init; } = "cluster.local";

    public int NodePortMin { get; init; } = 30000;

    public int NodePortMax { get; init; } = 32767;

    public int Vni { get; init; } = 1;

    public int VxlanPort { get; init; } = 8472;

    public int UnderlayMtu { get; init; } = 1500;

    public bool MasqueradeAll { get; init; }

    public IReadOnlyList<string> NodePortAddresses { get; init; } = [];

    /// <summary>
    /// loadBalancerPools from lab.yaml (null: not given). LoadBalancer Services get ingress IPs from these,
    /// as MetalLB's IPAddressPool gives them; the addresses are on the underlay, so the "outside" reaches them.
    /// </summary>
    public IReadOnlyList<IPNetwork>? LoadBalancerPoolsSetting { get; init; }

    /// <summary>
    /// The pools in effect: the configured ones, else the top /28 of the underlay (172.30.0.240/28 by default)
    /// when that holds no node, outside or etcd address — so a lab has LoadBalancer IPs out of the box.
    /// </summary>
    public IReadOnlyList<IPNetwork> LoadBalancerPools
    {
        get
        {
            if (LoadBalancerPoolsSetting is { } set)
            {
                return set;
            }
            if (Underlay.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || Underlay.PrefixLength > 26)
            {
                return [];
            }
            var pool = new IPNetwork(IPAddressMath.Mask(IPAddressMath.LastAddress(Underlay), 28), 28);
            return ReservedUnderlayAddresses().Any(a => pool.Contains(a.Ip)) ? [] : [pool];
        }
    }

    /// <summary>Underlay addresses something else holds: the outside IP, the nodes, and the lab's etcd members when it runs them.</summary>
    private IEnumerable<(IPAddress Ip, string What)> ReservedUnderlayAddresses()
    {
        yield return (OutsideIp, "outsideIP");
        var nodes = Nodes;
        for (int i = 0; i < nodes.Count; i++)
        {
            yield return (nodes[i].Ip, $"nodes[{i}] ({nodes[i].Name})");
        }
        if (Store == "etcd")
        {
            // LabEtcd.Plan puts the members right after the outside address: .2, .3, .4.
            for (int i = 1; i <= 3; i++)
            {
                yield return (IPAddressMath.Add(Underlay.BaseAddress, 1 + i), $"etcd member {i}");
            }
        }
    }

    /// <summary>The cluster-wide settings admission and the controllers read from the store (written by `lab up`).</summary>
    public Trellis.Core.Cluster.ClusterNetworkConfig ToClusterNetworkConfig() => new()
    {
        ClusterCidrs = [ClusterCidr],
        ServiceCidrs = [ServiceCidr],
        NodePortMin = NodePortMin,
        NodePortMax = NodePortMax,
        LoadBalancerPools = LoadBalancerPools,
        DnsIp = DnsIp,
        Domain = Domain,
    };

    /// <summary>Explicit nodes from lab.yaml; when empty, <see cref="NodeCount"/> nodes are derived.</summary>
    public IReadOnlyList<LabNode> ExplicitNodes { get; init; } = [];

    public IReadOnlyList<LabNode> Nodes => ExplicitNodes.Count > 0 ? ExplicitNodes : DeriveNodes();

    private List<LabNode> DeriveNodes()
    {
        var nodes = new List<LabNode>(NodeCount);
        for (int i = 1; i <= NodeCount; i++)
        {
            var ip = IPAddressMath.Add(Underlay.BaseAddress, FirstNodeHost + i - 1);
            // Node i gets the i-th subnet of the cluster CIDR (10.244.1.0/24 for node-1): subnet 0
            // stays unused, as flannel's first lease is never the network address itself.
            var subnetSize = (long)IPAddressMath.Size(new IPNetwork(ClusterCidr.BaseAddress, NodeSubnetLength));
            var podBase = IPAddressMath.Add(ClusterCidr.BaseAddress, subnetSize * i);
            nodes.Add(new LabNode($"node-{i}", ip, new IPNetwork(podBase, NodeSubnetLength)));
        }
        return nodes;
    }

    /// <summary>The pod gateway of a node: the first address of its pod range, held by its bridge.</summary>
    public static IPAddress Gateway(IPNetwork podCidr) => IPAddressMath.Add(podCidr.BaseAddress, 1);

    /// <summary>Checks what the kernel or the other parts would otherwise trip over; errors name the field.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!LabNames.IsValidLabName(Name))
        {
            errors.Add($"name: '{Name}' must be 1-{LabNames.MaxLabNameLength} lowercase letters, digits or '-', starting with a letter");
        }
        if (ExplicitNodes.Count == 0 && NodeCount is < 1 or > 50)
        {
            errors.Add($"nodes: {NodeCount} is not between 1 and 50");
        }
        if (CniPlugin is not ("trellis-cni" or "reference"))
        {
            errors.Add($"cniPlugin: '{CniPlugin}' is not trellis-cni or reference");
        }
        if (Backend is not ("vxlan" or "host-gw" or "bgp"))
        {
            errors.Add($"backend: '{Backend}' is not vxlan, host-gw or bgp");
        }
        if (NodeSubnetLength <= ClusterCidr.PrefixLength || NodeSubnetLength > 30)
        {
            errors.Add($"nodeSubnetLength: /{NodeSubnetLength} must be longer than the cluster CIDR's /{ClusterCidr.PrefixLength} and at most /30");
        }
        else if (ExplicitNodes.Count == 0 && (1L << (NodeSubnetLength - ClusterCidr.PrefixLength)) <= NodeCount)
        {
            errors.Add($"clusterCIDR: {ClusterCidr} has room for fewer than {NodeCount} /{NodeSubnetLength} node subnets");
        }
        if (!Underlay.Contains(OutsideIp))
        {
            errors.Add($"outsideIP: {OutsideIp} is not in the underlay {Underlay}");
        }
        var nodes = Nodes;
        var seen = new HashSet<string>();
        for (int i = 0; i < nodes.Count; i++)
        {
            var n = nodes[i];
            if (!seen.Add(n.Name))
            {
                errors.Add($"nodes[{i}].name: '{n.Name}' appears twice");
            }
            if (!LabNames.IsValidNodeName(n.Name))
            {
                errors.Add($"nodes[{i}].name: '{n.Name}' must be a DNS label of at most {LabNames.MaxNodeNameLength} characters");
            }
            if (!Underlay.Contains(n.Ip) || n.Ip.Equals(OutsideIp) || n.Ip.Equals(Underlay.BaseAddress))
            {
                errors.Add($"nodes[{i}].ip: {n.Ip} is not a free host address of the underlay {Underlay}");
            }
            if (!ClusterCidr.Contains(n.PodCidr.BaseAddress) || n.PodCidr.PrefixLength < ClusterCidr.PrefixLength)
            {
                errors.Add($"nodes[{i}].podCIDR: {n.PodCidr} is not inside the cluster CIDR {ClusterCidr}");
            }
            for (int j = 0; j < i; j++)
            {
                if (nodes[j].PodCidr.Contains(n.PodCidr.BaseAddress) || n.PodCidr.Contains(nodes[j].PodCidr.BaseAddress))
                {
                    errors.Add($"nodes[{i}].podCIDR: {n.PodCidr} overlaps nodes[{j}] ({nodes[j].PodCidr})");
                }
                if (nodes[j].Ip.Equals(n.Ip))
                {
                    errors.Add($"nodes[{i}].ip: {n.Ip} is also nodes[{j}]'s");
                }
            }
        }
        if (!ServiceCidr.Contains(DnsIp))
        {
            errors.Add($"dnsIP: {DnsIp} is not in the service CIDR {ServiceCidr}");
        }
        if (NodePortMin < 1 || NodePortMax > 65535 || NodePortMin > NodePortMax)
        {
            errors.Add($"nodePortRange: {NodePortMin}-{NodePortMax} is not a valid port range");
        }
        var pools = LoadBalancerPoolsSetting ?? [];
        for (int i = 0; i < pools.Count; i++)
        {
            var pool = pools[i];
            if (!Underlay.Contains(pool.BaseAddress) || pool.PrefixLength < Underlay.PrefixLength)
            {
                errors.Add($"loadBalancerPools[{i}]: {pool} is not inside the underlay {Underlay}");
                continue;
            }
            foreach (var (ip, what) in ReservedUnderlayAddresses())
            {
                if (pool.Contains(ip))
                {
                    errors.Add($"loadBalancerPools[{i}]: {pool} contains {ip}, the address of {what}");
                }
            }
            for (int j = 0; j < i; j++)
            {
                if (pools[j].Contains(pool.BaseAddress) || pool.Contains(pools[j].BaseAddress))
                {
                    errors.Add($"loadBalancerPools[{i}]: {pool} overlaps loadBalancerPools[{j}] ({pools[j]})");
                }
            }
        }
        if (UnderlayMtu is < 1280 or > 9000)
        {
            errors.Add($"underlayMTU: {UnderlayMtu} is not between 1280 and 9000");
        }
        return errors;
    }

    /// <summary>MTU of pod interfaces: the underlay's, less VXLAN's 50 bytes of encapsulation when it is used.</summary>
    public int PodMtu => Backend == "vxlan" ? UnderlayMtu - 50 : UnderlayMtu;
}
