using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Trellis.Core.Objects;

namespace Trellis.Core.Proxy;

/// <summary>
/// Compiles Services and EndpointSlices into the <c>ip trellis-proxy</c> table, with the chains, verdict maps and
/// masquerade decisions of kube-proxy's nftables backend (pkg/proxy/nftables/proxier.go). Pure and total: a bad
/// object is skipped and reported in <see cref="ProxyRuleset.Problems"/>, never thrown.
/// </summary>
public static class ProxyCompiler
{
    public static ProxyRuleset Compile(ProxyInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var problems = new List<string>();
        var ports = ServicePortReader.Read(input, problems);
        var endpoints = new EndpointIndex(input, problems);
        var table = new TableBuilder(input);
        var programmed = new List<ProxyServicePort>(ports.Count);
        foreach (var sp in ports)
        {
            programmed.Add(table.AddServicePort(sp, endpoints.For(sp), problems));
        }
        return table.Build(programmed, problems);
    }

    internal static string I(int value) => value.ToString(CultureInfo.InvariantCulture);

    internal static bool IsIPv4(IPAddress ip) => ip.AddressFamily == AddressFamily.InterNetwork;
}

/// <summary>One service port to program: the Service's fields that matter, already validated and IPv4-filtered.</summary>
internal sealed record ServicePortSpec(
    string Namespace,
    string Name,
    string PortName,
    string Protocol,
    IPAddress ClusterIP,
    int Port,
    int? NodePort,
    IReadOnlyList<IPAddress> ExternalIPs,
    IReadOnlyList<IPAddress> LoadBalancerIPs,
    IReadOnlyList<IPNetwork> SourceRanges,
    bool HasSourceRanges,
    int? AffinityTimeoutSeconds,
    bool InternalPolicyLocal,
    bool ExternalPolicyLocal,
    bool ExternallyAccessible,
    int? HealthCheckNodePort)
{
    public string Proto => Protocol.ToLowerInvariant();

    public string Display => $"{Namespace}/{Name}:{(PortName.Length == 0 ? ProxyCompiler.I(Port) : PortName)}/{Protocol}";

    /// <summary>kube-proxy: Cluster endpoints are needed for Cluster internal policy, and for any external traffic (short-circuit).</summary>
    public bool UsesClusterEndpoints => !InternalPolicyLocal || ExternallyAccessible;

    public bool UsesLocalEndpoints => InternalPolicyLocal || ExternalPolicyLocal;
}
