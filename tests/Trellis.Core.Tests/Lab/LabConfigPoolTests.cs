using System.Net;
using Trellis.Core.Cluster;
using Trellis.Core.Lab;

namespace Trellis.Core.Tests.Lab;

public sealed class LabConfigPoolTests
{
    private static (LabConfig Config, IReadOnlyList<string> Errors) Parse(string body) =>
        LabConfigFile.Parse("apiVersion: trellis.dev/v1alpha1\nkind: Lab\n" + body, "lab.yaml", new LabConfig());

    [Fact]
    public void A_lab_has_the_underlays_top_slash_28_as_pool_by_default()
    {
        var c = new LabConfig();
        Assert.Equal([IPNetwork.Parse("172.30.0.240/28")], c.LoadBalancerPools);
        Assert.Empty(c.Validate());
        var (other, errors) = Parse("underlay: 192.168.50.0/24\noutsideIP: 192.168.50.1\n");
        Assert.Empty(errors);
        Assert.Equal([IPNetwork.Parse("192.168.50.240/28")], other.LoadBalancerPools);
    }

    [Fact]
    public void The_default_pool_steps_aside_for_a_node_that_uses_it_and_an_empty_list_means_none()
    {
        var (c, errors) = Parse("nodes:\n- {name: a, ip: 172.30.0.241, podCIDR: 10.244.7.0/24}\n");
        Assert.Empty(errors);
        Assert.Empty(c.LoadBalancerPools);
        Assert.Empty(c.Validate());
        var (none, e2) = Parse("loadBalancerPools: []\n");
        Assert.Empty(e2);
        Assert.Empty(none.LoadBalancerPools);
    }

    [Fact]
    public void Pools_are_read_and_written_to_the_cluster_config()
    {
        var (c, errors) = Parse("loadBalancerPools: [172.30.0.200/29, 172.30.0.224/28]\nnodePortRange: 31000-31999\nserviceCIDR: 10.100.0.0/16\ndnsIP: 10.100.0.10\n");
        Assert.Empty(errors);
        Assert.Empty(c.Validate());
        var stored = ClusterNetworkConfig.Parse(c.ToClusterNetworkConfig().ToJson());
        Assert.Equal([IPNetwork.Parse("172.30.0.200/29"), IPNetwork.Parse("172.30.0.224/28")], stored.LoadBalancerPools);
        Assert.Equal([IPNetwork.Parse("10.100.0.0/16")], stored.ServiceCidrs);
        Assert.Equal((31000, 31999), (stored.NodePortMin, stored.NodePortMax));
        Assert.Equal(IPAddress.Parse("10.100.0.10"), stored.DnsIp);
    }

    [Theory]
    [InlineData("loadBalancerPools: 172.30.0.240/28\n", "loadBalancerPools: must be a list")]
    [InlineData("loadBalancerPools: [172.30.0.241/28]\n", "loadBalancerPools[0]: '172.30.0.241/28' is not an IPv4 network")]
    [InlineData("loadBalancerPools: [fd00::/120]\n", "loadBalancerPools[0]:")]
    [InlineData("loadBalancerPools: [5]\n", "loadBalancerPools[0]: must be a CIDR string")]
    public void Bad_pools_are_named_when_read(string body, string expected)
    {
        var (_, errors) = Parse(body);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("loadBalancerPools: [10.0.0.0/28]\n", "loadBalancerPools[0]: 10.0.0.0/28 is not inside the underlay 172.30.0.0/24")]
    [InlineData("loadBalancerPools: [172.30.0.0/28]\n", "loadBalancerPools[0]: 172.30.0.0/28 contains 172.30.0.1, the address of outsideIP")]
    [InlineData("loadBalancerPools: [172.30.0.8/29]\n", "loadBalancerPools[0]: 172.30.0.8/29 contains 172.30.0.11, the address of nodes[0] (node-1)")]
    [InlineData("loadBalancerPools: [172.30.0.240/28, 172.30.0.248/29]\n", "loadBalancerPools[1]: 172.30.0.248/29 overlaps loadBalancerPools[0] (172.30.0.240/28)")]
    [InlineData("loadBalancerPools: [172.30.0.0/16]\n", "loadBalancerPools[0]: 172.30.0.0/16 is not inside the underlay 172.30.0.0/24")]
    public void Pools_that_collide_are_refused_by_validation(string body, string expected)
    {
        var (c, errors) = Parse(body);
        Assert.Empty(errors);
        Assert.Contains(expected, c.Validate());
    }

    [Fact]
    public void With_the_labs_etcd_the_pool_must_avoid_its_members()
    {
        var c = Parse("loadBalancerPools: [172.30.0.2/31]\n").Config with { Store = "etcd" };
        Assert.Contains("loadBalancerPools[0]: 172.30.0.2/31 contains 172.30.0.2, the address of etcd member 1", c.Validate());
    }
}
