using System.Net;
using System.Net.Sockets;
using Trellis.Core.Objects;

namespace Trellis.Core.Proxy;

/// <summary>
/// Turns Services into the service ports to program (kube-proxy's ServiceChangeTracker + BaseServicePortInfo),
/// skipping what kube-proxy skips by design and reporting what is malformed.
/// </summary>
internal static class ServicePortReader
{
    public static List<ServicePortSpec> Read(ProxyInput input, List<string> problems)
    {
        var result = new List<ServicePortSpec>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        // Sorted so that conflicts (two Services claiming one address or NodePort) always resolve the same way.
        foreach (var svc in input.Services.OrderBy(s => s.Namespace ?? "", StringComparer.Ordinal).ThenBy(s => s.Name, StringComparer.Ordinal))
        {
            if (string.IsNullOrEmpty(svc.Name))
            {
                problems.Add("Service (unnamed): metadata.name: Required value");
                continue;
            }
            if (!seen.Add(svc.ToString()))
            {
                problems.Add($"Service {svc}: appears twice in the snapshot; the second copy is ignored");
                continue;
            }
            ReadOne(svc, result, problems);
        }
        return result;
    }

    /// <summary>One named Service's ports (the incremental compiler reads one Service at a time).</summary>
    public static void ReadOne(ServiceView svc, List<ServicePortSpec> result, List<string> problems)
    {
        string id = $"Service {svc}";
        // Left to another proxy, or nothing to proxy (as kube-proxy's ServiceChangeTracker skips them).
        if (svc.ServiceProxyName is not null || svc.Type == "ExternalName" || svc.IsHeadless)
        {
            return;
        }
        var clusterIPs = svc.ClusterIPs;
        if (clusterIPs.Count == 0)
        {
            problems.Add($"{id}: spec.clusterIP: Required value: no ClusterIP allocated, nothing to program");
            return;
        }
        IPAddress? clusterIP = null;
        for (int i = 0; i < clusterIPs.Count; i++)
        {
            if (!IPAddress.TryParse(clusterIPs[i], out var ip) || !IpSyntaxIsCanonical(clusterIPs[i], ip))
            {
                problems.Add($"{id}: spec.clusterIPs[{i}]: \"{clusterIPs[i]}\" is not an IP address");
                continue;
            }
            if (ip.AddressFamily == AddressFamily.InterNetwork && clusterIP is null)
            {
                clusterIP = ip;
            }
        }
        if (clusterIP is null)
        {
            return; // IPv6-only (or no valid address, reported above): the ip family has nothing to do.
        }

        var externalIPs = ParseAddresses(svc.ExternalIPs, $"{id}: spec.externalIPs", problems);
        var lbIPs = new List<IPAddress>();
        var ingress = svc.LoadBalancerIngress;
        if (svc.Type == "LoadBalancer")
        {
            for (int i = 0; i < ingress.Count; i++)
            {
                // ipMode Proxy: the load balancer delivers to the node, not to the VIP, so the VIP is not captured.
                if (ingress[i].IP is not { } text || ingress[i].IPMode == "Proxy")
                {
                    continue;
                }
                if (!IPAddress.TryParse(text, out var ip) || !IpSyntaxIsCanonical(text, ip))
                {
                    problems.Add($"{id}: status.loadBalancer.ingress[{i}].ip: \"{text}\" is not an IP address");
                }
                else if (ip.AddressFamily == AddressFamily.InterNetwork && !lbIPs.Contains(ip))
                {
                    lbIPs.Add(ip);
                }
            }
        }
        var ranges = new List<IPNetwork>();
        var rangeTexts = svc.LoadBalancerSourceRanges;
        for (int i = 0; i < rangeTexts.Count; i++)
        {
            string text = rangeTexts[i].Trim();
            if (!IPNetwork.TryParse(text, out var net) || net.BaseAddress.ToString() + "/" + ProxyCompiler.I(net.PrefixLength) != text)
            {
                problems.Add($"{id}: spec.loadBalancerSourceRanges[{i}]: \"{rangeTexts[i]}\" is not a CIDR (address/prefix, no host bits)");
            }
            else if (net.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
            {
                ranges.Add(net);
            }
        }

        // kube-proxy's ExternallyAccessible, on what is programmed: externalIPs count only when one is usable
        // here (an IPv6-only list gives the ip family nothing external), whatever the (validated elsewhere) type.
        bool externallyAccessible = svc.Type is "NodePort" or "LoadBalancer" || externalIPs.Count > 0;
        bool itpLocal = svc.InternalTrafficPolicy == "Local";
        bool etpLocal = externallyAccessible && svc.ExternalTrafficPolicy == "Local";
        int? affinity = svc.SessionAffinityTimeoutSeconds;
        if (affinity is { } t && t is < 1 or > 86400)
        {
            problems.Add($"{id}: spec.sessionAffinityConfig.clientIP.timeoutSeconds: {ProxyCompiler.I(t)} is not in 1..86400; using 10800");
            affinity = 10800;
        }

        var portNames = new HashSet<string>(StringComparer.Ordinal);
        var ports = svc.Ports;
        for (int i = 0; i < ports.Count; i++)
        {
            var p = ports[i];
            string portName = p.Name ?? "";
            string protocol = p.Protocol;
            if (protocol is not ("TCP" or "UDP" or "SCTP"))
            {
                problems.Add($"{id}: spec.ports[{i}].protocol: \"{protocol}\" is not TCP, UDP or SCTP");
                continue;
            }
            if (p.Port is < 1 or > 65535)
            {
                problems.Add($"{id}: spec.ports[{i}].port: {ProxyCompiler.I(p.Port)} is not in 1..65535");
                continue;
            }
            if (!portNames.Add(portName + "/" + protocol))
            {
                problems.Add($"{id}: spec.ports[{i}].name: \"{portName}\" ({protocol}) is used by an earlier port");
                continue;
            }
            int? nodePort = null;
            if (svc.Type is "NodePort" or "LoadBalancer" && p.Json["nodePort"] is not null)
            {
                var raw = p.Json["nodePort"];
                if (p.NodePort is int np && np <= 65535)
                {
                    nodePort = np;
                }
                else
                {
                    problems.Add($"{id}: spec.ports[{i}].nodePort: {raw?.ToJsonString()} is not in 1..65535");
                }
            }
            result.Add(new ServicePortSpec(
                svc.Namespace ?? "default", svc.Name, portName, protocol, clusterIP, p.Port, nodePort,
                externalIPs, lbIPs, ranges, rangeTexts.Count > 0, affinity, itpLocal, etpLocal, externallyAccessible,
                etpLocal && svc.Type == "LoadBalancer" ? svc.HealthCheckNodePort : null));
        }
    }

    private static List<IPAddress> ParseAddresses(IReadOnlyList<string> texts, string field, List<string> problems)
    {
        var result = new List<IPAddress>();
        for (int i = 0; i < texts.Count; i++)
        {
            if (!IPAddress.TryParse(texts[i], out var ip) || !IpSyntaxIsCanonical(texts[i], ip))
            {
                problems.Add($"{field}[{i}]: \"{texts[i]}\" is not an IP address");
            }
            else if (ip.AddressFamily == AddressFamily.InterNetwork && !result.Contains(ip))
            {
                result.Add(ip);
            }
        }
        return result;
    }

    /// <summary>
    /// IPAddress.TryParse accepts "10", "10.1" and "0x0a.0.0.1" (inet_aton forms); Kubernetes does not, and a
    /// silently reinterpreted address would capture someone else's traffic.
    /// </summary>
    internal static bool IpSyntaxIsCanonical(string text, IPAddress ip) =>
        ip.AddressFamily == AddressFamily.InterNetworkV6 ? text.Contains(':', StringComparison.Ordinal) : ip.ToString() == text;
}
