using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Model;

namespace Trellis.Core.Cluster;

/// <summary>A value the Service holds or asks for by number, and the field that names it (for errors).</summary>
public sealed record AllocationClaim(Allocation Allocation, string Field);

/// <summary>
/// What admission must allocate for one Service (the Service REST storage's allocation step), worked out
/// without I/O: the values the object already names (requested or kept from the stored object), which must
/// each get their key, and the slots still empty that need a free value.
/// </summary>
public sealed record ServiceAllocationPlan
{
    public IReadOnlyList<FieldError> Errors { get; init; } = [];

    /// <summary>Values the object names: each must be free or already this Service's.</summary>
    public IReadOnlyList<AllocationClaim> Claims { get; init; } = [];

    /// <summary>The range a new ClusterIP comes from, when the object has none and needs one.</summary>
    public ServiceIPRange? AllocateClusterIP { get; init; }

    /// <summary>Port numbers (spec.ports[].port) whose ports need a new nodePort: one per number, shared by its TCP and UDP ports.</summary>
    public IReadOnlyList<int> AllocateNodePortsFor { get; init; } = [];

    public bool AllocateHealthCheckNodePort { get; init; }

    /// <summary>A LoadBalancer with no ingress and a pool to take from.</summary>
    public bool AllocateLoadBalancerIP { get; init; }

    /// <summary>spec.loadBalancerIP inside a pool, to become the ingress IP (it is also among <see cref="Claims"/>).</summary>
    public string? RequestedLoadBalancerIP { get; init; }

    public bool IsEmpty => Errors.Count == 0 && Claims.Count == 0 && AllocateClusterIP is null && AllocateNodePortsFor.Count == 0
        && !AllocateHealthCheckNodePort && !AllocateLoadBalancerIP;
}

/// <summary>The values chosen for a plan's empty slots.</summary>
public sealed record ServiceAllocationChoice
{
    public string? ClusterIP { get; init; }

    public IReadOnlyDictionary<int, int> NodePortsByPort { get; init; } = new Dictionary<int, int>();

    public int? HealthCheckNodePort { get; init; }

    public string? LoadBalancerIP { get; init; }
}

/// <summary>
/// ClusterIP, NodePort and load-balancer IP allocation for Services, as pure functions over the cluster
/// network config: <see cref="Plan"/> (what to claim and allocate), <see cref="Fill"/> (write the chosen
/// values into the object) and <see cref="Held"/> (which allocations a stored Service holds: what delete
/// releases and what the repair keeps).
/// </summary>
public static class ServiceAllocationPlanner
{
    public static ServiceAllocationPlan Plan(ClusterNetworkConfig config, JsonObject desired)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(desired);
        if (Kinds.Find(desired) != Kinds.Service || desired.Obj("spec") is not { } spec)
        {
            return new ServiceAllocationPlan();
        }
        var errors = new List<FieldError>();
        var claims = new List<AllocationClaim>();
        string type = spec.Str("type") ?? "ClusterIP";
        ServiceIPRange? allocateClusterIP = null;

        if (type != "ExternalName")
        {
            var ips = spec.StrList("clusterIPs");
            if (ips.Count == 0 && spec.Str("clusterIP") is { Length: > 0 } single)
            {
                ips = [single];
            }
            if (ips.Count == 0)
            {
                if (config.ServiceCidrs.Count == 0)
                {
                    errors.Add(new FieldError("spec.clusterIP", $"failed to allocate a ClusterIP: {ClusterNetworkConfig.Key} has no serviceCIDRs"));
                }
                else
                {
                    allocateClusterIP = new ServiceIPRange(config.ServiceCidrs[0]);
                }
            }
            for (int i = 0; i < ips.Count; i++)
            {
                string field = i == 0 ? "spec.clusterIP" : $"spec.clusterIPs[{i}]";
                if (ips[i] == "None" || !IpSyntax.TryParseIp(ips[i], out var ip))
                {
                    continue; // headless, or a syntax error the validator reports
                }
                if (ServiceRangeOf(config, ip) is null)
                {
                    errors.Add(FieldError.Invalid(field, ips[i],
                        $"failed to allocate IP {ips[i]}: the provided IP ({ips[i]}) is not in the valid range. The range of valid IPs is {string.Join(",", config.ServiceCidrs)}"));
                    continue;
                }
                claims.Add(new AllocationClaim(new Allocation(AllocationKind.ClusterIP, ip.ToString()), field));
            }
        }

        var allocateNodePorts = new List<int>();
        bool allocateHealthCheck = false;
        if (type is "NodePort" or "LoadBalancer")
        {
            bool allocate = type == "NodePort" || (spec.Bool("allocateLoadBalancerNodePorts") ?? true);
            var ports = spec.Objects("ports").ToList();
            // A port number served over TCP and UDP shares one nodePort: the one requested on either, else one new one.
            var requestedByPort = new Dictionary<long, long>();
            foreach (var p in ports)
            {
                if ((p.Int("nodePort") ?? 0) is long np and not 0 && p.Int("port") is long number)
                {
                    requestedByPort.TryAdd(number, np);
                }
            }
            var claimed = new HashSet<long>();
            for (int i = 0; i < ports.Count; i++)
            {
                string field = $"spec.ports[{i}].nodePort";
                long np = ports[i].Int("nodePort") ?? 0;
                long number = ports[i].Int("port") ?? 0;
                if (np != 0)
                {
                    if (np < config.NodePortMin || np > config.NodePortMax)
                    {
                        errors.Add(FieldError.Invalid(field, np, $"provided port is not in the valid range. The range of valid ports is {config.NodePortMin}-{config.NodePortMax}"));
                    }
                    else if (claimed.Add(np))
                    {
                        claims.Add(new AllocationClaim(new Allocation(AllocationKind.NodePort, np.ToString(CultureInfo.InvariantCulture)), field));
                    }
                }
                else if (allocate && !requestedByPort.ContainsKey(number) && !allocateNodePorts.Contains((int)number))
                {
                    allocateNodePorts.Add((int)number);
                }
            }
            if (type == "LoadBalancer" && spec.Str("externalTrafficPolicy") == "Local")
            {
                long hc = spec.Int("healthCheckNodePort") ?? 0;
                if (hc == 0)
                {
                    allocateHealthCheck = true;
                }
                else if (hc < config.NodePortMin || hc > config.NodePortMax)
                {
                    errors.Add(FieldError.Invalid("spec.healthCheckNodePort", hc, $"provided port is not in the valid range. The range of valid ports is {config.NodePortMin}-{config.NodePortMax}"));
                }
                else if (claimed.Add(hc))
                {
                    claims.Add(new AllocationClaim(new Allocation(AllocationKind.NodePort, hc.ToString(CultureInfo.InvariantCulture)), "spec.healthCheckNodePort"));
                }
                else
                {
                    errors.Add(FieldError.Duplicate("spec.healthCheckNodePort", hc));
                }
            }
        }

        bool allocateLb = false;
        string? requestedLb = null;
        if (type == "LoadBalancer")
        {
            var ingress = desired.Obj("status").Obj("loadBalancer").Objects("ingress").ToList();
            for (int i = 0; i < ingress.Count; i++)
            {
                if (ingress[i].Str("ip") is { } text && IpSyntax.TryParseIp(text, out var ip) && InPool(config, ip))
                {
                    claims.Add(new AllocationClaim(new Allocation(AllocationKind.LoadBalancerIP, ip.ToString()), $"status.loadBalancer.ingress[{i}].ip"));
                }
            }
            if (ingress.Count == 0 && config.LoadBalancerPools.Count > 0)
            {
                if (spec.Str("loadBalancerIP") is { Length: > 0 } wanted)
                {
                    if (!IpSyntax.TryParseIp(wanted, out var ip))
                    {
                        errors.Add(FieldError.Invalid("spec.loadBalancerIP", wanted, IpSyntax.IpExample));
                    }
                    else if (!InPool(config, ip))
                    {
                        errors.Add(FieldError.Invalid("spec.loadBalancerIP", wanted, $"is not in a load-balancer pool ({string.Join(",", config.LoadBalancerPools)})"));
                    }
                    else
                    {
                        requestedLb = ip.ToString();
                        claims.Add(new AllocationClaim(new Allocation(AllocationKind.LoadBalancerIP, requestedLb), "spec.loadBalancerIP"));
                    }
                }
                else
                {
                    allocateLb = true;
                }
            }
        }

        return new ServiceAllocationPlan
        {
            Errors = errors,
            Claims = claims,
            AllocateClusterIP = allocateClusterIP,
            AllocateNodePortsFor = allocateNodePorts,
            AllocateHealthCheckNodePort = allocateHealthCheck,
            AllocateLoadBalancerIP = allocateLb,
            RequestedLoadBalancerIP = requestedLb,
        };
    }

    /// <summary>Writes the chosen values into <paramref name="service"/> (in place): clusterIP(s), nodePorts, healthCheckNodePort, LB ingress.</summary>
    public static void Fill(JsonObject service, ServiceAllocationPlan plan, ServiceAllocationChoice choice)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(choice);
        if (service.Obj("spec") is not { } spec)
        {
            return;
        }
        if (choice.ClusterIP is { } ip)
        {
            spec["clusterIP"] = ip;
            spec["clusterIPs"] = new JsonArray(ip);
            if (spec.Get("ipFamilies") is null)
            {
                spec["ipFamilies"] = new JsonArray(IPAddress.Parse(ip).AddressFamily == AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4");
            }
            if (spec.Get("ipFamilyPolicy") is null)
            {
                spec["ipFamilyPolicy"] = "SingleStack";
            }
        }
        var ports = spec.Objects("ports").ToList();
        var shared = new Dictionary<long, long>();
        foreach (var p in ports)
        {
            if ((p.Int("nodePort") ?? 0) is long np and not 0 && p.Int("port") is long number)
            {
                shared.TryAdd(number, np);
            }
        }
        foreach (var (number, np) in choice.NodePortsByPort)
        {
            shared.TryAdd(number, np);
        }
        string type = spec.Str("type") ?? "ClusterIP";
        bool allocate = type == "NodePort" || (type == "LoadBalancer" && (spec.Bool("allocateLoadBalancerNodePorts") ?? true));
        foreach (var p in ports)
        {
            // A port number's ports share its nodePort: the one requested on any of them, or the new one.
            // Without allocation (allocateLoadBalancerNodePorts: false) an empty nodePort stays empty, as upstream.
            if (allocate && (p.Int("nodePort") ?? 0) == 0 && p.Int("port") is long number && shared.TryGetValue(number, out long np))
            {
                p["nodePort"] = np;
            }
        }
        if (choice.HealthCheckNodePort is { } hc)
        {
            spec["healthCheckNodePort"] = hc;
        }
        if ((choice.LoadBalancerIP ?? plan.RequestedLoadBalancerIP) is { } lb)
        {
            if (service.Get("status") is not JsonObject status)
            {
                status = [];
                service["status"] = status;
            }
            status["loadBalancer"] = new JsonObject { ["ingress"] = new JsonArray(new JsonObject { ["ip"] = lb, ["ipMode"] = "VIP" }) };
        }
    }

    /// <summary>
    /// The allocations a Service holds (for delete, type changes and the repair): its ClusterIPs inside a service
    /// CIDR, its nodePorts and healthCheckNodePort while its type has them, its ingress IPs inside a pool.
    /// </summary>
    public static IReadOnlySet<Allocation> Held(ClusterNetworkConfig config, JsonObject service)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(service);
        var held = new HashSet<Allocation>();
        var spec = service.Obj("spec");
        if (spec is null)
        {
            return held;
        }
        string type = spec.Str("type") ?? "ClusterIP";
        if (type != "ExternalName")
        {
            var ips = spec.StrList("clusterIPs");
            foreach (var text in ips.Count > 0 ? ips : spec.Str("clusterIP") is { Length: > 0 } s ? [s] : [])
            {
                if (IpSyntax.TryParseIp(text, out var ip) && ServiceRangeOf(config, ip) is not null)
                {
                    held.Add(new Allocation(AllocationKind.ClusterIP, ip.ToString()));
                }
            }
        }
        if (type is "NodePort" or "LoadBalancer")
        {
            foreach (var p in spec.Objects("ports"))
            {
                if ((p.Int("nodePort") ?? 0) is long np and > 0 and <= 65535)
                {
                    held.Add(new Allocation(AllocationKind.NodePort, np.ToString(CultureInfo.InvariantCulture)));
                }
            }
            if ((spec.Int("healthCheckNodePort") ?? 0) is long hc and > 0 and <= 65535)
            {
                held.Add(new Allocation(AllocationKind.NodePort, hc.ToString(CultureInfo.InvariantCulture)));
            }
        }
        if (type == "LoadBalancer")
        {
            foreach (var ingress in service.Obj("status").Obj("loadBalancer").Objects("ingress"))
            {
                if (ingress.Str("ip") is { } text && IpSyntax.TryParseIp(text, out var ip) && InPool(config, ip))
                {
                    held.Add(new Allocation(AllocationKind.LoadBalancerIP, ip.ToString()));
                }
            }
        }
        return held;
    }

    /// <summary>The service CIDR range an address is allocatable from, or null.</summary>
    public static ServiceIPRange? ServiceRangeOf(ClusterNetworkConfig config, IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(config);
        foreach (var cidr in config.ServiceCidrs)
        {
            var range = new ServiceIPRange(cidr);
            if (range.OffsetOf(ip) is not null)
            {
                return range;
            }
        }
        return null;
    }

    public static bool InPool(ClusterNetworkConfig config, IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.LoadBalancerPools.Any(p => p.BaseAddress.AddressFamily == ip.AddressFamily && p.Contains(ip));
    }

    /// <summary>
    /// The pools' addresses in order, lowest first, as MetalLB hands them out — skipping IPv4 addresses ending
    /// in .0 or .255 (MetalLB's avoidBuggyIPs: some clients refuse them). At most 65536 per pool.
    /// </summary>
    public static IEnumerable<IPAddress> PoolAddresses(ClusterNetworkConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        foreach (var pool in config.LoadBalancerPools)
        {
            ulong size = Math.Min(IPAddressMath.Size(pool), 65536UL);
            for (ulong i = 0; i < size; i++)
            {
                var ip = IPAddressMath.Add(pool.BaseAddress, (long)i);
                if (ip.AddressFamily == AddressFamily.InterNetwork)
                {
                    byte last = ip.GetAddressBytes()[3];
                    if (last is 0 or 255)
                    {
                        continue;
                    }
                }
                yield return ip;
            }
        }
    }
}
