using System.Globalization;
using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

public static partial class ObjectValidator
{
    private static readonly string[] s_serviceTypes = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    private static readonly string[] s_affinities = ["ClientIP", "None"];
    private static readonly string[] s_trafficPolicies = ["Cluster", "Local"];
    private static readonly string[] s_ipModes = ["Proxy", "VIP"];
    private const int KubeletPort = 10250;
    private const int MaxClientIPServiceAffinitySeconds = 86400;

    private static void ValidateService(JsonObject obj, FieldChecker c)
    {
        var spec = c.Object(obj, "spec", "spec");
        string type = c.String(spec, "type", "spec.type") is { Length: > 0 } t ? t : "ClusterIP";
        c.OneOf(type, "spec.type", s_serviceTypes);
        string clusterIP = c.String(spec, "clusterIP", "spec.clusterIP") ?? "";
        var clusterIPs = c.Strings(spec, "clusterIPs", "spec.clusterIPs") ?? [];
        bool headless = clusterIP == "None" || (clusterIP.Length == 0 && clusterIPs.Count > 0 && clusterIPs[0].Value == "None");
        bool externallyAccessible = type is "NodePort" or "LoadBalancer" || (type == "ClusterIP" && spec.Arr("externalIPs") is { Count: > 0 });

        if (type == "ExternalName")
        {
            if (clusterIP.Length > 0)
            {
                c.Add(FieldError.Forbidden("spec.clusterIP", "may not be set for ExternalName services"));
            }
            else if (clusterIPs.Count > 0)
            {
                c.Add(FieldError.Forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
            }
            foreach (string field in (ReadOnlySpan<string>)["ipFamilies", "ipFamilyPolicy"])
            {
                if (spec.Get(field) is not null)
                {
                    c.Add(FieldError.Forbidden("spec." + field, "may not be set for ExternalName services"));
                }
            }
            string externalName = c.String(spec, "externalName", "spec.externalName") ?? "";
            // The value is a CNAME and may carry a trailing dot to mark it fully qualified.
            string cname = externalName.EndsWith('.') ? externalName[..^1] : externalName;
            if (cname.Length == 0)
            {
                c.Add(FieldError.Required("spec.externalName"));
            }
            else
            {
                c.Messages("spec.externalName", cname, NameRules.IsDns1123Subdomain(cname));
            }
        }
        else
        {
            ValidateClusterIPs(clusterIP, clusterIPs, c);
            if (headless && type is "NodePort" or "LoadBalancer")
            {
                c.Add(FieldError.Invalid("spec.clusterIP", "None", $"may not be set to 'None' for {type} services"));
            }
        }

        var ports = c.Items(spec, "ports", "spec.ports");
        if (ports.Count == 0 && spec.Get("ports") is null or JsonArray && !headless && type != "ExternalName")
        {
            c.Add(FieldError.Required("spec.ports"));
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        var seenPorts = new HashSet<(string, long)>();
        var seenNodePorts = new HashSet<(string, long)>();
        foreach (var (port, pp) in ports)
        {
            string? name = c.String(port, "name", pp + ".name");
            if (ports.Count > 1 && string.IsNullOrEmpty(name))
            {
                c.Add(FieldError.Required(pp + ".name"));
            }
            else if (!string.IsNullOrEmpty(name))
            {
                c.Messages(pp + ".name", name, NameRules.IsDns1123Label(name));
                if (!names.Add(name))
                {
                    c.Add(FieldError.Duplicate(pp + ".name", name));
                }
            }
            long number = c.Integer(port, "port", pp + ".port") ?? 0;
            if (port.Get("port") is null || JsonAccess.AsInteger(port.Get("port")) is not null)
            {
                c.Messages(pp + ".port", number, NameRules.IsValidPortNum(number));
            }
            string? protocol = c.String(port, "protocol", pp + ".protocol");
            c.OneOf(protocol, pp + ".protocol", Protocols);
            ValidatePortNumOrName(c.IntOrString(port, "targetPort", pp + ".targetPort"), pp + ".targetPort", c);
            if (c.String(port, "appProtocol", pp + ".appProtocol") is { } appProtocol)
            {
                c.Messages(pp + ".appProtocol", appProtocol, NameRules.IsQualifiedName(appProtocol));
            }
            long nodePort = c.Integer(port, "nodePort", pp + ".nodePort") ?? 0;
            if (nodePort != 0)
            {
                if (type is not ("NodePort" or "LoadBalancer"))
                {
                    c.Add(FieldError.Forbidden(pp + ".nodePort", $"may not be used when `type` is '{type}'"));
                }
                else
                {
                    c.Messages(pp + ".nodePort", nodePort, NameRules.IsValidPortNum(nodePort));
                    if (!seenNodePorts.Add((protocol ?? "TCP", nodePort)))
                    {
                        c.Add(FieldError.Duplicate(pp + ".nodePort", nodePort));
                    }
                }
            }
            if (!seenPorts.Add((protocol ?? "TCP", number)))
            {
                c.Add(FieldError.DuplicateRaw(pp, $"{{\"port\":{number.ToString(CultureInfo.InvariantCulture)},\"protocol\":\"{protocol ?? "TCP"}\"}}"));
            }
            if (type == "LoadBalancer" && number == KubeletPort)
            {
                c.Add(FieldError.Invalid(pp, number, $"may not expose port {KubeletPort} externally since it is used by kubelet"));
            }
        }

        ValidateLabels(c.StringMap(spec, "selector", "spec.selector"), "spec.selector", c);

        string? affinity = c.String(spec, "sessionAffinity", "spec.sessionAffinity");
        c.OneOf(affinity, "spec.sessionAffinity", s_affinities);
        var affinityConfig = c.Object(spec, "sessionAffinityConfig", "spec.sessionAffinityConfig");
        if (affinity == "ClientIP" && affinityConfig is not null)
        {
            var clientIP = c.Object(affinityConfig, "clientIP", "spec.sessionAffinityConfig.clientIP");
            const string timeoutPath = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
            if (c.Integer(clientIP, "timeoutSeconds", timeoutPath) is { } timeout && timeout is <= 0 or > MaxClientIPServiceAffinitySeconds)
            {
                c.Add(FieldError.Invalid(timeoutPath, timeout, $"must be greater than 0 and less than {MaxClientIPServiceAffinitySeconds}"));
            }
        }
        else if (affinity is "None" or null && affinityConfig is not null)
        {
            c.Add(FieldError.Forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
        }

        foreach (var (ip, p) in c.Strings(spec, "externalIPs", "spec.externalIPs") ?? [])
        {
            if (!IpSyntax.TryParseIp(ip, out var addr))
            {
                c.Add(FieldError.Invalid(p, ip, IpSyntax.IpExample));
            }
            else if (IpSyntax.SpecialIpProblem(addr) is { } problem)
            {
                c.Add(FieldError.Invalid(p, ip, problem));
            }
        }

        string? etp = c.String(spec, "externalTrafficPolicy", "spec.externalTrafficPolicy");
        if (externallyAccessible)
        {
            c.OneOf(etp, "spec.externalTrafficPolicy", s_trafficPolicies);
        }
        else if (!string.IsNullOrEmpty(etp))
        {
            c.Add(FieldError.Invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"));
        }
        c.OneOf(c.String(spec, "internalTrafficPolicy", "spec.internalTrafficPolicy"), "spec.internalTrafficPolicy", s_trafficPolicies);

        long hcnp = c.Integer(spec, "healthCheckNodePort", "spec.healthCheckNodePort") ?? 0;
        if (hcnp != 0)
        {
            if (!(type == "LoadBalancer" && etp == "Local"))
            {
                c.Add(FieldError.Invalid("spec.healthCheckNodePort", hcnp, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
            }
            else
            {
                c.Messages("spec.healthCheckNodePort", hcnp, NameRules.IsValidPortNum(hcnp));
            }
        }

        if (c.Boolean(spec, "allocateLoadBalancerNodePorts", "spec.allocateLoadBalancerNodePorts") is not null && type != "LoadBalancer")
        {
            c.Add(FieldError.Forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"));
        }
        var ranges = c.Strings(spec, "loadBalancerSourceRanges", "spec.loadBalancerSourceRanges") ?? [];
        if (ranges.Count > 0)
        {
            if (type != "LoadBalancer")
            {
                c.Add(FieldError.Forbidden("spec.loadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"));
            }
            foreach (var (range, p) in ranges)
            {
                // Space-padding is tolerated: a historical accident from the annotation this field replaced.
                ValidateCidr(range.Trim(), p, c);
            }
        }
        c.Boolean(spec, "publishNotReadyAddresses", "spec.publishNotReadyAddresses");

        var status = c.Object(obj, "status", "status");
        var lb = c.Object(status, "loadBalancer", "status.loadBalancer");
        foreach (var (ingress, p) in c.Items(lb, "ingress", "status.loadBalancer.ingress"))
        {
            string? ip = c.String(ingress, "ip", p + ".ip");
            if (!string.IsNullOrEmpty(ip))
            {
                ValidateIp(ip, p + ".ip", c);
            }
            if (c.String(ingress, "hostname", p + ".hostname") is { Length: > 0 } hostname)
            {
                c.Messages(p + ".hostname", hostname, NameRules.IsDns1123Subdomain(hostname));
                if (IpSyntax.TryParseIp(hostname, out _))
                {
                    c.Add(FieldError.Invalid(p + ".hostname", hostname, "must be a DNS name, not an IP address"));
                }
            }
            string? ipMode = c.String(ingress, "ipMode", p + ".ipMode");
            if (ipMode is not null)
            {
                if (string.IsNullOrEmpty(ip))
                {
                    c.Add(FieldError.Forbidden(p + ".ipMode", "may not be specified when `ip` is not set"));
                }
                else
                {
                    c.OneOf(ipMode, p + ".ipMode", s_ipModes);
                }
            }
        }
    }

    private static void ValidateClusterIPs(string clusterIP, List<(string Value, string Path)> clusterIPs, FieldChecker c)
    {
        if (clusterIP.Length > 0 && clusterIP != "None")
        {
            ValidateIp(clusterIP, "spec.clusterIP", c);
        }
        if (clusterIPs.Count == 0)
        {
            return;
        }
        if (clusterIP.Length > 0 && clusterIPs[0].Value != clusterIP)
        {
            c.Add(FieldError.Invalid(clusterIPs[0].Path, clusterIPs[0].Value, "must match `clusterIP`"));
        }
        if (clusterIPs.Count > 2)
        {
            c.Add(FieldError.Invalid("spec.clusterIPs", string.Join(",", clusterIPs.Select(x => x.Value)), "may only hold up to 2 values"));
        }
        if (clusterIPs.Any(x => x.Value == "None") && clusterIPs.Count > 1)
        {
            c.Add(FieldError.Invalid("spec.clusterIPs", string.Join(",", clusterIPs.Select(x => x.Value)), "'None' must be the first and only value"));
            return;
        }
        var families = new List<AddressFamily>();
        for (int i = 0; i < clusterIPs.Count; i++)
        {
            var (ip, path) = clusterIPs[i];
            if (ip == "None" || (i == 0 && ip == clusterIP))
            {
                if (IpSyntax.TryParseIp(ip, out var a0))
                {
                    families.Add(a0.AddressFamily);
                }
                continue;
            }
            if (!IpSyntax.TryParseIp(ip, out var addr))
            {
                c.Add(FieldError.Invalid(path, ip, IpSyntax.IpExample));
                continue;
            }
            if (families.Contains(addr.AddressFamily))
            {
                c.Add(FieldError.Invalid(path, ip, "may specify no more than one IP for each IP family"));
            }
            families.Add(addr.AddressFamily);
        }
    }
}
