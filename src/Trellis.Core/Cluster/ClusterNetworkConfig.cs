using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trellis.Model;

namespace Trellis.Core.Cluster;

/// <summary>
/// The cluster-wide network settings that admission and the controllers need, stored as Trellis'
/// own kind beside the Kubernetes objects (DESIGN.md §2) under <see cref="Key"/> — what the API
/// server's <c>--service-cluster-ip-range</c> and <c>--service-node-port-range</c> flags, and
/// MetalLB's IPAddressPool, hold in a real cluster. `lab up` writes it; store-only use without it
/// gets <see cref="Default"/>, so admission behaves the same either way.
/// <code>{"clusterCIDRs":["10.244.0.0/16"],"serviceCIDRs":["10.96.0.0/16"],"nodePortRange":"30000-32767",
///  "loadBalancerPools":["172.30.0.200/29"],"dnsIP":"10.96.0.10","domain":"cluster.local"}</code>
/// </summary>
public sealed record ClusterNetworkConfig
{
    public const string Key = "/trellis/config/cluster-network";

    public static ClusterNetworkConfig Default { get; } = new();

    public IReadOnlyList<IPNetwork> ClusterCidrs { get; init; } = [IPNetwork.Parse("10.244.0.0/16")];

    public IReadOnlyList<IPNetwork> ServiceCidrs { get; init; } = [IPNetwork.Parse("10.96.0.0/16")];

    public int NodePortMin { get; init; } = 30000;

    public int NodePortMax { get; init; } = 32767;

    /// <summary>Addresses handed to LoadBalancer Services that have no <c>status.loadBalancer.ingress</c> of their own (MetalLB's pool).</summary>
    public IReadOnlyList<IPNetwork> LoadBalancerPools { get; init; } = [];

    public IPAddress DnsIp { get; init; } = IPAddress.Parse("10.96.0.10");

    public string Domain { get; init; } = "cluster.local";

    public byte[] ToJson()
    {
        var o = new JsonObject
        {
            ["clusterCIDRs"] = new JsonArray([.. ClusterCidrs.Select(c => (JsonNode)JsonValue.Create(c.ToString()))]),
            ["serviceCIDRs"] = new JsonArray([.. ServiceCidrs.Select(c => (JsonNode)JsonValue.Create(c.ToString()))]),
            ["nodePortRange"] = string.Create(CultureInfo.InvariantCulture, $"{NodePortMin}-{NodePortMax}"),
            ["loadBalancerPools"] = new JsonArray([.. LoadBalancerPools.Select(c => (JsonNode)JsonValue.Create(c.ToString()))]),
            ["dnsIP"] = DnsIp.ToString(),
            ["domain"] = Domain,
        };
        return System.Text.Encoding.UTF8.GetBytes(o.ToJsonString());
    }

    /// <summary>
    /// Reads the stored form. Store contents are untrusted (DESIGN §9): a malformed value is a
    /// <see cref="FormatException"/> naming the field; absent members keep their defaults.
    /// </summary>
    public static ClusterNetworkConfig Parse(ReadOnlySpan<byte> json)
    {
        JsonObject o;
        try
        {
            o = JsonNode.Parse(json) as JsonObject ?? throw new FormatException($"{Key}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{Key}: not JSON: {e.Message}", e);
        }
        var c = Default;
        if (o["clusterCIDRs"] is not null)
        {
            c = c with { ClusterCidrs = Cidrs(o, "clusterCIDRs") };
        }
        if (o["serviceCIDRs"] is not null)
        {
            c = c with { ServiceCidrs = Cidrs(o, "serviceCIDRs") };
        }
        if (o["loadBalancerPools"] is not null)
        {
            c = c with { LoadBalancerPools = Cidrs(o, "loadBalancerPools") };
        }
        if (o["nodePortRange"] is { } r)
        {
            var parts = (r.GetValueKind() == JsonValueKind.String ? r.GetValue<string>() : "").Split('-');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int lo)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int hi) || lo < 1 || hi > 65535 || lo > hi)
            {
                throw new FormatException($"{Key}: nodePortRange: '{r.ToJsonString()}' is not MIN-MAX within 1-65535");
            }
            c = c with { NodePortMin = lo, NodePortMax = hi };
        }
        if (o["dnsIP"] is { } d)
        {
            if (d.GetValueKind() != JsonValueKind.String || !IPAddress.TryParse(d.GetValue<string>(), out var ip))
            {
                throw new FormatException($"{Key}: dnsIP: '{d.ToJsonString()}' is not an IP address");
            }
            c = c with { DnsIp = ip };
        }
        if (o["domain"] is { } dom)
        {
            if (dom.GetValueKind() != JsonValueKind.String || dom.GetValue<string>().Length == 0)
            {
                throw new FormatException($"{Key}: domain: must be a non-empty string");
            }
            c = c with { Domain = dom.GetValue<string>() };
        }
        return c;
    }

    private static List<IPNetwork> Cidrs(JsonObject o, string field)
    {
        if (o[field] is not JsonArray a)
        {
            throw new FormatException($"{Key}: {field}: must be a list of CIDRs");
        }
        var list = new List<IPNetwork>();
        for (int i = 0; i < a.Count; i++)
        {
            string? s = a[i] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
            if (s is null || !IPCidr.TryParse(s, out var cidr) || !cidr.Network.BaseAddress.Equals(cidr.Address))
            {
                throw new FormatException($"{Key}: {field}[{i}]: '{a[i]?.ToJsonString()}' is not a network in CIDR notation");
            }
            list.Add(cidr.Network);
        }
        return list;
    }
}
