using System.Net;

namespace Trellis.Core.Routing;

/// <summary>How pod traffic crosses to other nodes.</summary>
public enum RoutingBackend
{
    /// <summary>Encapsulate in VXLAN (flannel's <c>vxlan</c>); with <see cref="RouteCompilerInput.DirectRouting"/>, only towards nodes on another L2 subnet.</summary>
    Vxlan,

    /// <summary>Route each pod CIDR via its node's underlay address (flannel's <c>host-gw</c>); every node must share one L2 segment.</summary>
    HostGw,

    /// <summary>
    /// Calico-style: routes come from BGP (<see cref="BgpRouteCompiler"/>, protocol 203); this compiler then
    /// wants no routes of its own and no VXLAN device, so switching a node to bgp cleans up what vxlan/host-gw left.
    /// </summary>
    Bgp,
}

/// <summary>
/// A node as routing sees it — from its Node object and subnet lease.
/// </summary>
/// <param name="UnderlaySubnet">The node's L2 subnet on the underlay (172.30.0.0/24); required for this node, optional for others (only used in messages).</param>
/// <param name="VtepMac">The MAC of the node's VXLAN device; required for nodes reached through VXLAN.</param>
public sealed record RouteNode(string Name, IPAddress UnderlayIp, IPNetwork? UnderlaySubnet, IPNetwork PodCidr, MacAddress? VtepMac);

/// <summary>Everything <see cref="RouteCompiler.Compile"/> needs: this node, the others and the backend settings.</summary>
public sealed record RouteCompilerInput
{
    public required RouteNode Self { get; init; }

    /// <summary>The underlay interface (<c>eth0</c>): the VXLAN device's lower device and host-gw routes' <c>dev</c>.</summary>
    public required string UnderlayInterface { get; init; }

    /// <summary>The other nodes; an entry named like <see cref="Self"/> is skipped, so the full node list may be passed.</summary>
    public IReadOnlyList<RouteNode> Peers { get; init; } = [];

    public RoutingBackend Backend { get; init; } = RoutingBackend.Vxlan;

    /// <summary>flannel's vxlan <c>DirectRouting</c>: nodes on this node's underlay subnet get host-gw routes, the rest VXLAN.</summary>
    public bool DirectRouting { get; init; }

    public int Vni { get; init; } = 1;

    /// <summary>UDP destination port; 8472 is the Linux kernel's (and flannel's) historic VXLAN port, IANA's is 4789.</summary>
    public int Port { get; init; } = 8472;

    public int UnderlayMtu { get; init; } = 1500;
}

/// <summary>
/// Why a node (or, with <see cref="Node"/> null, this node's own settings) could not be compiled.
/// A node-level error costs that node its route; an error in this node's settings is fatal.
/// </summary>
public sealed record CompileError(string? Node, string Field, string Message)
{
    public bool IsFatal => Node is null;

    public override string ToString() => Node is null ? $"{Field}: {Message}" : $"node {Node}: {Field}: {Message}";
}

/// <summary>The compiler's answer.</summary>
/// <param name="Desired">The desired routing state; null when this node's own settings are invalid — reconcile nothing then, rather than tear down what works.</param>
/// <param name="PodMtu">The MTU to write into the CNI config (and the VXLAN device's MTU).</param>
public sealed record RouteCompilation(RoutingState? Desired, int PodMtu, IReadOnlyList<CompileError> Errors)
{
    public bool Succeeded => Desired is not null;

    /// <summary>The golden-file form: the desired state, then <c>pod-mtu N</c>, then one <c>error …</c> line per error.</summary>
    public string Dump()
    {
        var text = new System.Text.StringBuilder();
        text.Append(Desired is null ? "# no desired state (fatal errors)\n" : Desired.Dump());
        text.Append("pod-mtu ").Append(PodMtu.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
        foreach (var e in Errors)
        {
            text.Append("error ").Append(e).Append('\n');
        }
        return text.ToString();
    }
}
