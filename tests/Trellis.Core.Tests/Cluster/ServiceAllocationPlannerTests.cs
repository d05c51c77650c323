using System.Net;
using System.Text.Json.Nodes;
using CsCheck;
using Trellis.Core.Cluster;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Cluster;

public class ServiceAllocationPlannerTests
{
    private static readonly ClusterNetworkConfig s_config = ClusterNetworkConfig.Default with
    {
        LoadBalancerPools = [IPNetwork.Parse("172.30.0.240/28")],
    };

    private static JsonObject Svc(string yaml) =>
        ObjectDefaults.ForCreate(Assert.Single(Manifests.Parse(yaml, "t.yaml")), "uid-1", DateTimeOffset.UnixEpoch);

    [Fact]
    public void ClusterIP_service_needs_one_address_from_the_first_service_cidr()
    {
        var plan = ServiceAllocationPlanner.Plan(s_config, Svc("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n"));
        Assert.Empty(plan.Errors);
        Assert.Empty(plan.Claims);
        Assert.Equal(IPNetwork.Parse("10.96.0.0/16"), plan.AllocateClusterIP!.Value.Network);
        Assert.Empty(plan.AllocateNodePortsFor);
        Assert.False(plan.AllocateLoadBalancerIP);
    }

    [Theory]
    [InlineData("None")]
    public void Headless_and_ExternalName_allocate_nothing(string clusterIP)
    {
        Assert.True(ServiceAllocationPlanner.Plan(s_config, Svc($"apiVersion: v1\nkind: Service\nmetadata: {{name: a}}\nspec: {{clusterIP: {clusterIP}, ports: [{{port: 80}}]}}\n")).IsEmpty);
        Assert.True(ServiceAllocationPlanner.Plan(s_config, Svc("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: ExternalName, externalName: x.example.com}\n")).IsEmpty);
    }

    [Fact]
    public void Requested_clusterIP_is_claimed_and_one_outside_the_cidr_is_refused_naming_the_field()
    {
        var ok = ServiceAllocationPlanner.Plan(s_config, Svc("apiVersion: v1\nkind: Service\nmetadata: {name: dns}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 53, protocol: UDP}]}\n"));
        Assert.Null(ok.AllocateClusterIP);
        Assert.Equal(new AllocationClaim(new Allocation(AllocationKind.ClusterIP, "10.96.0.10"), "spec.clusterIP"), Assert.Single(ok.Claims));

        foreach (string ip in new[] { "10.97.0.1", "10.96.0.0", "10.96.255.255" })
        {
            var bad = ServiceAllocationPlanner.Plan(s_config, Svc($"apiVersion: v1\nkind: Service\nmetadata: {{name: a}}\nspec: {{clusterIP: {ip}, ports: [{{port: 80}}]}}\n"));
            var e = Assert.Single(bad.Errors);
            Assert.Equal("spec.clusterIP", e.Path);
            Assert.Contains("not in the valid range", e.Message, StringComparison.Ordinal);
            Assert.Contains("10.96.0.0/16", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void NodePorts_one_per_port_number_shared_by_TCP_and_UDP_requested_ones_claimed()
    {
        var plan = ServiceAllocationPlanner.Plan(s_config, Svc("""
            apiVersion: v1
            kind: Service
            metadata: {name: dns}
            spec:
              type: NodePort
              ports:
              - {name: dns-udp, port: 53, protocol: UDP}
              - {name: dns-tcp, port: 53, protocol: TCP}
              - {name: http, port: 80, nodePort: 30080}
              - {name: http-udp, port: 80, protocol: UDP}
              - {name: metrics, port: 9100}
            """));
        Assert.Empty(plan.Errors);
        Assert.Equal([53, 9100], plan.AllocateNodePortsFor);
        Assert.Equal([new AllocationClaim(new Allocation(AllocationKind.NodePort, "30080"), "spec.ports[2].nodePort")], plan.Claims);

        var svc = Svc("""
            apiVersion: v1
            kind: Service
            metadata: {name: dns}
            spec:
              type: NodePort
              ports:
              - {name: dns-udp, port: 53, protocol: UDP}
              - {name: dns-tcp, port: 53, protocol: TCP}
              - {name: http, port: 80, nodePort: 30080}
              - {name: http-udp, port: 80, protocol: UDP}
            """);
        var p2 = ServiceAllocationPlanner.Plan(s_config, svc);
        ServiceAllocationPlanner.Fill(svc, p2, new ServiceAllocationChoice { ClusterIP = "10.96.200.1", NodePortsByPort = new Dictionary<int, int> { [53] = 31053 } });
        Assert.Equal("80:30080/TCP", "80:" + new ServiceView(svc).Ports[2].NodePort + "/TCP");
        Assert.Equal([31053, 31053, 30080, 30080], new ServiceView(svc).Ports.Select(p => p.NodePort ?? 0));
        Assert.Equal("10.96.200.1", new ServiceView(svc).ClusterIP);
        Assert.Equal(["10.96.200.1"], new ServiceView(svc).ClusterIPs);
    }

    [Fact]
    public void NodePort_outside_the_range_is_refused_naming_the_port()
    {
        var plan = ServiceAllocationPlanner.Plan(s_config, Svc("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: NodePort, ports: [{name: a, port: 80}, {name: b, port: 81, nodePort: 29999}]}\n"));
        var e = Assert.Single(plan.Errors);
        Assert.Equal("spec.ports[1].nodePort", e.Path);
        Assert.Equal("Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767", e.Message);
    }

    [Fact]
    public void LoadBalancer_gets_node_ports_health_check_port_and_a_pool_address_unless_told_otherwise()
    {
        var local = ServiceAllocationPlanner.Plan(s_config, Svc("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}]}\n"));
        Assert.Equal([80], local.AllocateNodePortsFor);
        Assert.True(local.AllocateHealthCheckNodePort);
        Assert.True(local.AllocateLoadBalancerIP);

        var noNodePorts = ServiceAllocationPlanner.Plan(s_config, Svc("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer, allocateLoadBalancerNodePorts: false, ports: [{port: 80}]}\n"));
        Assert.Empty(noNodePorts.AllocateNodePortsFor);
        Assert.False(noNodePorts.AllocateHealthCheckNodePort);

        var noPool = ServiceAllocationPlanner.Plan(ClusterNetworkConfig.Default, Svc("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n"));
        Assert.False(noPool.AllocateLoadBalancerIP);

        var fromManifest = ServiceAllocationPlanner.Plan(s_config, Svc("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\nstatus: {loadBalancer: {ingress: [{ip: 172.30.0.241}, {ip: 192.0.2.1}]}}\n"));
        Assert.False(fromManifest.AllocateLoadBalancerIP);
        Assert.Equal(new AllocationClaim(new Allocation(AllocationKind.LoadBalancerIP, "172.30.0.241"), "status.loadBalancer.ingress[0].ip"),
            Assert.Single(fromManifest.Claims, c => c.Allocation.Kind == AllocationKind.LoadBalancerIP));
    }

    [Fact]
    public void LoadBalancerIP_is_honoured_inside_a_pool_and_refused_outside()
    {
        var svc = Svc("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer, loadBalancerIP: 172.30.0.250, ports: [{port: 80}]}\n");
        var plan = ServiceAllocationPlanner.Plan(s_config, svc);
        Assert.Empty(plan.Errors);
        Assert.Equal("172.30.0.250", plan.RequestedLoadBalancerIP);
        ServiceAllocationPlanner.Fill(svc, plan, new ServiceAllocationChoice());
        Assert.Equal("172.30.0.250", Assert.Single(new ServiceView(svc).LoadBalancerIngress).IP);

        var bad = ServiceAllocationPlanner.Plan(s_config, Svc("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer, loadBalancerIP: 10.1.1.1, ports: [{port: 80}]}\n"));
        Assert.Equal("spec.loadBalancerIP", Assert.Single(bad.Errors).Path);
    }

    [Fact]
    public void Held_follows_the_type()
    {
        var svc = Svc("""
            apiVersion: v1
            kind: Service
            metadata: {name: a}
            spec: {type: LoadBalancer, clusterIP: 10.96.3.4, externalTrafficPolicy: Local, healthCheckNodePort: 32000, ports: [{port: 80, nodePort: 30080}]}
            status: {loadBalancer: {ingress: [{ip: 172.30.0.241}]}}
            """);
        Assert.Equal(
            new HashSet<Allocation>
            {
                new(AllocationKind.ClusterIP, "10.96.3.4"), new(AllocationKind.NodePort, "30080"),
                new(AllocationKind.NodePort, "32000"), new(AllocationKind.LoadBalancerIP, "172.30.0.241"),
            },
            ServiceAllocationPlanner.Held(s_config, svc).ToHashSet());
        svc["spec"]!["type"] = "ClusterIP";
        Assert.Equal([new Allocation(AllocationKind.ClusterIP, "10.96.3.4")], ServiceAllocationPlanner.Held(s_config, svc));
        svc["spec"]!["type"] = "ExternalName";
        Assert.Empty(ServiceAllocationPlanner.Held(s_config, svc));
    }

    [Fact]
    public void Pool_addresses_are_lowest_first_and_skip_dot_0_and_dot_255()
    {
        var addrs = ServiceAllocationPlanner.PoolAddresses(s_config).Select(a => a.ToString()).ToList();
        Assert.Equal(15, addrs.Count);
        Assert.Equal("172.30.0.240", addrs[0]);
        Assert.Equal("172.30.0.254", addrs[^1]);
    }

    [Fact]
    public void Owner_round_trips_and_garbage_is_no_owner()
    {
        var owner = new AllocationOwner("kube-system", "kube-dns", "u-1", new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero));
        Assert.Equal(owner, AllocationKeys.DecodeOwner(AllocationKeys.EncodeOwner(owner)));
        Assert.Null(AllocationKeys.DecodeOwner("not json"u8));
        Assert.Null(AllocationKeys.DecodeOwner("{\"service\":\"noslash\",\"uid\":\"u\"}"u8));
        Assert.Null(AllocationKeys.DecodeOwner("[1]"u8));
        Assert.Equal(new Allocation(AllocationKind.NodePort, "30080"), AllocationKeys.Parse("/trellis/alloc/nodeports/30080"));
        Assert.Null(AllocationKeys.Parse("/trellis/alloc/other/x"));
    }
}

public class RangeAllocatorTests
{
    [Theory]
    [InlineData(65534, 256)] // 10.96.0.0/16: the apiserver reserves 10.96.0.1-10.96.1.0 for static IPs
    [InlineData(254, 16)]
    [InlineData(14, 0)]
    public void ClusterIP_lower_band_is_the_apiservers(long size, long band) =>
        Assert.Equal(band, RangeAllocator.LowerBand(size, 16, 256, 16));

    [Fact]
    public void NodePort_lower_band_is_86_for_the_default_range() =>
        Assert.Equal(86, RangeAllocator.LowerBand(2768, 16, 128, 32));

    [Fact]
    public void Random_choice_stays_in_the_upper_band_until_it_is_full() =>
        Gen.Int[0, 1000].Sample(seed =>
        {
            var random = new Random(seed);
            var taken = new HashSet<long>();
            // 64 values, 16 reserved: the first 48 picks all come from the upper band, the last 16 from the lower one.
            for (int i = 0; i < 64; i++)
            {
                long o = RangeAllocator.Pick(64, 16, taken.Contains, random)!.Value;
                Assert.True(taken.Add(o));
                Assert.True(i < 48 ? o >= 16 : o < 16, $"pick {i} was {o}");
            }
            Assert.Null(RangeAllocator.Pick(64, 16, taken.Contains, random));
        });

    [Fact]
    public void Service_range_excludes_network_and_broadcast_and_dns_ip_stays_in_the_reserved_band()
    {
        var range = new ServiceIPRange(IPNetwork.Parse("10.96.0.0/16"));
        Assert.Equal(65534, range.Size);
        Assert.Null(range.OffsetOf(IPAddress.Parse("10.96.0.0")));
        Assert.Null(range.OffsetOf(IPAddress.Parse("10.96.255.255")));
        Assert.Null(range.OffsetOf(IPAddress.Parse("10.97.0.1")));
        Assert.Equal(0, range.OffsetOf(IPAddress.Parse("10.96.0.1")));
        Assert.True(range.OffsetOf(IPAddress.Parse("10.96.0.10")) < range.LowerBand);
        Assert.Equal("10.96.255.254", range.At(range.Size - 1).ToString());
    }
}
