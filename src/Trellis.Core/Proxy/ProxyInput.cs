using System.Net;
using Trellis.Core.Objects;

namespace Trellis.Core.Proxy;

/// <summary>The intent snapshot one node's service proxy is compiled from.</summary>
public sealed record ProxyInput
{
    public required string NodeName { get; init; }

    /// <summary>This node's addresses, primary first (the primary decides the LoadBalancer firewall's node allowance).</summary>
    public required IReadOnlyList<IPAddress> NodeIPs { get; init; }

    /// <summary>The pod network: sources outside it are masqueraded on their way to a ClusterIP (kube-proxy's detect-local).</summary>
    public IReadOnlyList<IPNetwork> ClusterCidrs { get; init; } = [];

    /// <summary>Service CIDRs: a ClusterIP-range address no Service holds is dropped.</summary>
    public IReadOnlyList<IPNetwork> ServiceCidrs { get; init; } = [];

    /// <summary>Addresses that accept NodePorts; empty means <see cref="NodeIPs"/>.</summary>
    public IReadOnlyList<IPAddress> NodePortAddresses { get; init; } = [];

    /// <summary>kube-proxy's <c>--masquerade-all</c>: SNAT every packet sent to a ClusterIP.</summary>
    public bool MasqueradeAll { get; init; }

    public IReadOnlyList<ServiceView> Services { get; init; } = [];

    public IReadOnlyList<EndpointSliceView> EndpointSlices { get; init; } = [];
}

public static class ProxyNames
{
    public const string Family = "ip";

    public const string Table = "trellis-proxy";

    /// <summary>The bit <c>mark-for-masquerade</c> sets and <c>masquerading</c> tests (kube-proxy's default bit 14).</summary>
    public const string MasqueradeMark = "0x4000";
}
