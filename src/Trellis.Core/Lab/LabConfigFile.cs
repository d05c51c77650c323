using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Core.Lab;

/// <summary>
/// lab.yaml, Kubernetes-style (as kind's cluster config):
/// <code>
/// apiVersion: trellis.dev/v1alpha1
/// kind: Lab
/// name: mylab
/// nodes: 3                       # or a list: [{name: a, ip: 172.30.0.21, podCIDR: 10.244.7.0/24}, …]
/// backend: vxlan                 # vxlan | host-gw | bgp
/// directRouting: false           # vxlan only: host-gw routes to nodes on the same L2 subnet
/// underlay: 172.30.0.0/24
/// outsideIP: 172.30.0.1
/// clusterCIDR: 10.244.0.0/16
/// nodeSubnetLength: 24
/// serviceCIDR: 10.96.0.0/16
/// dnsIP: 10.96.0.10
/// domain: cluster.local
/// nodePortRange: 30000-32767
/// vni: 1
/// vxlanPort: 8472
/// underlayMTU: 1500
/// proxy: {masqueradeAll: false, nodePortAddresses: [172.30.0.0/24]}
/// loadBalancerPools: [172.30.0.240/28]   # LoadBalancer ingress IPs (MetalLB-style); [] for none; default: the underlay's top /28
/// </code>
/// Unknown keys are errors (a typo must not silently give a default), each naming the field.
/// </summary>
public static class LabConfigFile
{
    public const string ApiVersion = "trellis.dev/v1alpha1";
    public const string Kind = "Lab";

    private static readonly HashSet<string> s_known =
    [
        "apiVersion", "kind", "name", "nodes", "backend", "underlay", "outsideIP", "clusterCIDR", "nodeSubnetLength",
        "serviceCIDR", "dnsIP", "domain", "nodePortRange", "vni", "vxlanPort", "underlayMTU", "proxy", "demo", "directRouting", "loadBalancerPools",
    ];

    public static (LabConfig Config, IReadOnlyList<string> Errors) Parse(string yaml, string source, LabConfig defaults)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        var errors = new List<string>();
        IReadOnlyList<JsonObject> docs;
        try
        {
            docs = Manifests.Parse(yaml, source);
        }
        catch (ManifestException e)
        {
            return (defaults, [e.Message]);
        }
        if (docs.Count != 1)
        {
            return (defaults, [$"{source}: expected one document, found {docs.Count}"]);
        }
        var o = docs[0];
        if (o["apiVersion"]?.ToString() != ApiVersion || o["kind"]?.ToString() != Kind)
        {
            errors.Add($"{source}: apiVersion/kind: expected {ApiVersion} {Kind}");
        }
        foreach (var (key, _) in o)
        {
            if (!s_known.Contains(key))
            {
                errors.Add($"{source}: {key}: unknown field");
            }
        }
        var c = defaults;
        c = c with { Name = Str(o, "name", source, errors) ?? c.Name };
        c = c with { Backend = Str(o, "backend", source, errors) ?? c.Backend };
        c = c with { Domain = Str(o, "domain", source, errors) ?? c.Domain };
        c = c with { Underlay = Net(o, "underlay", source, errors) ?? c.Underlay };
        c = c with { OutsideIp = Ip(o, "outsideIP", source, errors) ?? c.OutsideIp };
        c = c with { ClusterCidr = Net(o, "clusterCIDR", source, errors) ?? c.ClusterCidr };
        c = c with { NodeSubnetLength = Int(o, "nodeSubnetLength", source, errors) ?? c.NodeSubnetLength };
        c = c with { ServiceCidr = Net(o, "serviceCIDR", source, errors) ?? c.ServiceCidr };
        c = c with { DnsIp = Ip(o, "dnsIP", source, errors) ?? c.DnsIp };
        c = c with { Vni = Int(o, "vni", source, errors) ?? c.Vni };
        c = c with { VxlanPort = Int(o, "vxlanPort", source, errors) ?? c.VxlanPort };
        c = c with { UnderlayMtu = Int(o, "underlayMTU", source, errors) ?? c.UnderlayMtu };
        if (o["demo"] is JsonValue dv)
        {
            c = dv.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? c with { Demo = dv.GetValue<bool>() } : Err(c, errors, $"{source}: demo: must be true or false");
        }
        if (o["directRouting"] is JsonValue drv)
        {
            c = drv.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? c with { DirectRouting = drv.GetValue<bool>() } : Err(c, errors, $"{source}: directRouting: must be true or false");
        }
        if (Str(o, "nodePortRange", source, errors) is { } range)
        {
            var parts = range.Split('-');
            if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out int lo) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out int hi))
            {
                c = c with { NodePortMin = lo, NodePortMax = hi };
            }
            else
            {
                errors.Add($"{source}: nodePortRange: '{range}' is not MIN-MAX");
            }
        }
        switch (o["loadBalancerPools"])
        {
            case null:
                break;
            case JsonArray poolList:
                var pools = new List<IPNetwork>();
                for (int i = 0; i < poolList.Count; i++)
                {
                    string path = $"loadBalancerPools[{i}]";
                    string? text = poolList[i] is JsonValue pv && pv.GetValueKind() == JsonValueKind.String ? pv.GetValue<string>() : null;
                    if (text is null)
                    {
                        errors.Add($"{source}: {path}: must be a CIDR string");
                    }
                    else if (IPNetwork.TryParse(text, out var pool) && text.StartsWith(pool.BaseAddress.ToString() + "/", StringComparison.Ordinal)
                        && pool.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                    {
                        pools.Add(pool);
                    }
                    else
                    {
                        errors.Add($"{source}: {path}: '{text}' is not an IPv4 network in CIDR notation (host bits must be zero)");
                    }
                }
                c = c with { LoadBalancerPoolsSetting = pools };
                break;
            default:
                errors.Add($"{source}: loadBalancerPools: must be a list of CIDRs");
                break;
        }
        switch (o["nodes"])
        {
            case null:
                break;
            case JsonValue v when AsInt(v) is int n:
                c = c with { NodeCount = n };
                break;
            case JsonArray list:
                var nodes = new List<LabNode>();
                for (int i = 0; i < list.Count; i++)
                {
                    if (list[i] is not JsonObject no)
                    {
                        errors.Add($"{source}: nodes[{i}]: must be an object with name, ip, podCIDR");
                        continue;
                    }
                    string path = $"nodes[{i}]";
                    string? name = Str(no, "name", source, errors, path);
                    var ip = Ip(no, "ip", source, errors, path);
                    var cidr = Net(no, "podCIDR", source, errors, path);
                    if (name is null || ip is null || cidr is null)
                    {
                        errors.Add($"{source}: {path}: name, ip and podCIDR are all required");
                        continue;
                    }
                    nodes.Add(new LabNode(name, ip, cidr.Value));
                }
                c = c with { ExplicitNodes = nodes, NodeCount = nodes.Count };
                break;
            default:
                errors.Add($"{source}: nodes: must be a number or a list of nodes");
                break;
        }
        if (o["proxy"] is JsonObject proxy)
        {
            if (proxy["masqueradeAll"] is JsonValue m && m.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
            {
                c = c with { MasqueradeAll = m.GetValue<bool>() };
            }
            else if (proxy["masqueradeAll"] is not null)
            {
                errors.Add($"{source}: proxy.masqueradeAll: must be true or false");
            }
            if (proxy["nodePortAddresses"] is JsonArray addrs)
            {
                c = c with { NodePortAddresses = addrs.Select(a => a?.ToString() ?? "").ToList() };
            }
        }
        else if (o["proxy"] is not null)
        {
            errors.Add($"{source}: proxy: must be an object");
        }
        return (c, errors);
    }

    /// <summary>A whole JSON number as an int, whatever CLR type the YAML reader stored it as.</summary>
    private static int? AsInt(JsonValue v) =>
        v.GetValueKind() == JsonValueKind.Number && int.TryParse(v.ToJsonString(), NumberStyles.None, CultureInfo.InvariantCulture, out int i) ? i : null;

    private static LabConfig Err(LabConfig c, List<string> errors, string message)
    {
        errors.Add(message);
        return c;
    }

    private static string? Str(JsonObject o, string key, string source, List<string> errors, string? parent = null)
    {
        var n = o[key];
        if (n is null)
        {
            return null;
        }
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            return v.GetValue<string>();
        }
        errors.Add($"{source}: {Path(parent, key)}: must be a string");
        return null;
    }

    private static int? Int(JsonObject o, string key, string source, List<string> errors)
    {
        var n = o[key];
        if (n is null)
        {
            return null;
        }
        if (n is JsonValue v && AsInt(v) is int i)
        {
            return i;
        }
        errors.Add($"{source}: {key}: must be a whole number");
        return null;
    }

    private static IPAddress? Ip(JsonObject o, string key, string source, List<string> errors, string? parent = null)
    {
        if (Str(o, key, source, errors, parent) is not { } s)
        {
            return null;
        }
        if (IPAddress.TryParse(s, out var ip) && s.Contains('.', StringComparison.Ordinal))
        {
            return ip;
        }
        errors.Add($"{source}: {Path(parent, key)}: '{s}' is not an IPv4 address");
        return null;
    }

    private static IPNetwork? Net(JsonObject o, string key, string source, List<string> errors, string? parent = null)
    {
        if (Str(o, key, source, errors, parent) is not { } s)
        {
            return null;
        }
        // IPNetwork.TryParse quietly masks host bits ("10.244.1.0/16" -> 10.244.0.0/16): a typo must not pass.
        if (IPNetwork.TryParse(s, out var net) && s.StartsWith(net.BaseAddress.ToString() + "/", StringComparison.Ordinal))
        {
            return net;
        }
        errors.Add($"{source}: {Path(parent, key)}: '{s}' is not a network in CIDR notation (host bits must be zero)");
        return null;
    }

    private static string Path(string? parent, string key) => parent is null ? key : $"{parent}.{key}";
}
