using System.Text.Json.Nodes;
using Trellis.Core.Dns;
using Trellis.Core.Objects;

namespace Trellis.Dns.Tests;

/// <summary>The kubelet's pod resolv.conf (pkg/kubelet/network/dns GetPodDNS), case by case.</summary>
public sealed class PodResolvConfTests
{
    private static readonly ResolverConfig s_node = new(["172.30.0.1"], ["corp.example"], ["timeout:3"]);

    private static string For(string spec, string ns = "app", IReadOnlyList<string>? clusterDns = null, string domain = "cluster.local") =>
        PodResolvConf.For(new PodView((JsonObject)JsonNode.Parse($$"""{"metadata":{"name":"p","namespace":"{{ns}}"},"spec":{{spec}}}""")!),
            clusterDns ?? ["10.96.0.10"], domain, s_node).Format();

    [Fact]
    public void ClusterFirst_is_the_cluster_dns_the_cluster_search_path_then_the_nodes_and_ndots_5() =>
        Assert.Equal("search app.svc.cluster.local svc.cluster.local cluster.local corp.example\nnameserver 10.96.0.10\noptions ndots:5\n",
            For("{}"));

    [Theory]
    [InlineData("""{"dnsPolicy":"Default"}""")]
    [InlineData("""{"dnsPolicy":"ClusterFirst","hostNetwork":true}""")]
    public void Default_and_ClusterFirst_on_the_host_network_use_the_nodes_resolver(string spec) =>
        Assert.Equal("search corp.example\nnameserver 172.30.0.1\noptions timeout:3\n", For(spec));

    [Fact]
    public void ClusterFirstWithHostNet_is_cluster_dns_even_on_the_host_network() =>
        Assert.StartsWith("search app.svc.cluster.local", For("""{"dnsPolicy":"ClusterFirstWithHostNet","hostNetwork":true}"""), StringComparison.Ordinal);

    [Fact]
    public void ClusterFirst_without_cluster_dns_falls_back_to_the_node() =>
        Assert.Equal("search corp.example\nnameserver 172.30.0.1\noptions timeout:3\n", For("{}", clusterDns: []));

    [Fact]
    public void None_is_exactly_the_pods_dns_config()
    {
        Assert.Equal("", For("""{"dnsPolicy":"None"}"""));
        Assert.Equal("search a.example\nnameserver 192.0.2.1\noptions ndots:2 edns0\n",
            For("""{"dnsPolicy":"None","dnsConfig":{"nameservers":["192.0.2.1"],"searches":["a.example"],"options":[{"name":"ndots","value":"2"},{"name":"edns0"}]}}"""));
    }

    [Fact]
    public void DnsConfig_is_appended_without_duplicates_and_its_options_win_by_name()
    {
        Assert.Equal("search app.svc.cluster.local svc.cluster.local cluster.local corp.example b.example\nnameserver 10.96.0.10\nnameserver 192.0.2.1\noptions ndots:1 single-request\n",
            For("""{"dnsConfig":{"nameservers":["10.96.0.10","192.0.2.1"],"searches":["cluster.local","b.example"],"options":[{"name":"ndots","value":"1"},{"name":"single-request"}]}}"""));
        // An empty value means the bare option, as in the kubelet.
        Assert.EndsWith("options ndots\n", For("""{"dnsConfig":{"options":[{"name":"ndots","value":""}]}}"""), StringComparison.Ordinal);
    }

    [Fact]
    public void Limits_three_nameservers_32_search_domains_and_2048_characters()
    {
        string many = string.Join(',', Enumerable.Range(1, 5).Select(i => $"\"192.0.2.{i}\""));
        Assert.Equal(3, For($$$"""{"dnsPolicy":"None","dnsConfig":{"nameservers":[{{{many}}}]}}""").Split('\n').Count(l => l.StartsWith("nameserver ", StringComparison.Ordinal)));
        string searches = string.Join(',', Enumerable.Range(1, 40).Select(i => $"\"s{i}.example\""));
        var line = For($$$"""{"dnsPolicy":"None","dnsConfig":{"nameservers":["192.0.2.1"],"searches":[{{{searches}}}]}}""").Split('\n')[0];
        Assert.Equal(32, line.Split(' ').Length - 1);
        string longOnes = string.Join(',', Enumerable.Range(1, 20).Select(i => $"\"{new string('a', 60)}.{new string('b', 60)}.s{i}.example\""));
        line = For($$$"""{"dnsPolicy":"None","dnsConfig":{"nameservers":["192.0.2.1"],"searches":[{{{longOnes}}}]}}""").Split('\n')[0];
        Assert.InRange(line.Length - "search ".Length, 1, 2048);
        Assert.Equal(15, line.Split(' ').Length - 1); // 15 × 132 characters + spaces fit, the 16th does not
    }
}
