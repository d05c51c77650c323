using System.Net;
using Trellis.Core.Lab;

namespace Trellis.Core.Tests.Lab;

public sealed class LabConfigFileTests
{
    private static (LabConfig Config, IReadOnlyList<string> Errors) Parse(string body) =>
        LabConfigFile.Parse("apiVersion: trellis.dev/v1alpha1\nkind: Lab\n" + body, "lab.yaml", new LabConfig());

    [Fact]
    public void Numbers_booleans_and_networks_are_read()
    {
        var (c, errors) = Parse("name: mylab\nnodes: 2\nbackend: host-gw\ndirectRouting: true\nclusterCIDR: 10.200.0.0/16\nnodePortRange: 31000-31999\n");
        Assert.Empty(errors);
        Assert.Equal(("mylab", 2, "host-gw", true), (c.Name, c.NodeCount, c.Backend, c.DirectRouting));
        Assert.Equal(IPNetwork.Parse("10.200.0.0/16"), c.ClusterCidr);
        Assert.Equal((31000, 31999), (c.NodePortMin, c.NodePortMax));
        Assert.Equal(IPNetwork.Parse("10.200.2.0/24"), c.Nodes[1].PodCidr);
    }

    [Fact]
    public void Explicit_nodes_are_read_with_their_addresses()
    {
        var (c, errors) = Parse("nodes:\n- {name: a, ip: 172.30.0.21, podCIDR: 10.244.7.0/24}\n- {name: b, ip: 172.30.0.22, podCIDR: 10.244.8.0/24}\n");
        Assert.Empty(errors);
        Assert.Equal(["a", "b"], c.Nodes.Select(n => n.Name));
        Assert.Equal(IPAddress.Parse("172.30.0.22"), c.Nodes[1].Ip);
        Assert.Empty(c.Validate());
    }

    [Theory]
    [InlineData("nodez: 3\n", "nodez: unknown field")]
    [InlineData("nodes: three\n", "nodes:")]
    [InlineData("directRouting: yes\n", "directRouting:")]
    [InlineData("clusterCIDR: 10.244.1.0/16\n", "clusterCIDR:")]
    [InlineData("underlayMTU: 15.5\n", "underlayMTU:")]
    [InlineData("nodes:\n- {name: a, ip: 10.0.0.300, podCIDR: 10.244.7.0/24}\n", "nodes[0].ip:")]
    public void Bad_fields_are_named(string body, string field)
    {
        var (_, errors) = Parse(body);
        Assert.Contains(errors, e => e.Contains(field, StringComparison.Ordinal));
    }
}
