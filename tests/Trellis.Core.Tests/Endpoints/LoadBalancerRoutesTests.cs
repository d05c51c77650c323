using System.Text.Json.Nodes;
using Trellis.Core.Endpoints;
using Trellis.Core.Objects;
using static Trellis.Core.Tests.Endpoints.EndpointSliceBuilderTests;

namespace Trellis.Core.Tests.Endpoints;

public class LoadBalancerRoutesTests
{
    private static ServiceView Lb(string name, string ip, string policy = "Cluster", string type = "LoadBalancer") =>
        new((JsonObject)JsonNode.Parse(J("""
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"@0@","namespace":"demo","uid":"u-@1@"},
             "spec":{"type":"@2@","selector":{"app":"web"},"ports":[{"port":80}],"externalTrafficPolicy":"@3@"},
             "status":{"loadBalancer":{"ingress":[{"ip":"@4@"}]}}}
            """, name, name, type, policy, ip))!);

    private static readonly NodeView[] s_nodes =
    [
        Node("node-2", ip: "172.30.0.12"),
        Node("node-1", ip: "172.30.0.11"),
        Node("node-3", ip: "172.30.0.13", ready: false),
    ];

    private static string Show(IEnumerable<LoadBalancerRoute> routes) =>
        string.Join("; ", routes.Select(r => $"{r.Destination} via {string.Join(",", r.NextHops)}"));

    [Fact]
    public void Cluster_policy_goes_via_every_ready_node_by_name()
    {
        Assert.Equal("172.30.0.200 via 172.30.0.11,172.30.0.12", Show(LoadBalancerRoutes.Compute([Lb("a", "172.30.0.200")], s_nodes, [])));
    }

    [Fact]
    public void Local_policy_goes_only_via_ready_nodes_with_a_ready_endpoint()
    {
        var pods = new[] { Pod("p1", node: "node-2", ip: "10.244.2.5"), Pod("p2", node: "node-3", ip: "10.244.3.5"), Pod("p3", node: "node-1", ip: "10.244.1.5", ready: false) };
        var svc = Lb("a", "172.30.0.200", policy: "Local");
        var slices = Apply([], EndpointSliceBuilder.Plan(svc, pods, s_nodes, [], () => "a-xxxxx"));
        Assert.Equal("172.30.0.200 via 172.30.0.12", Show(LoadBalancerRoutes.Compute([svc], s_nodes, slices)));
        // No ready endpoint anywhere: the address is not announced at all.
        var none = Apply([], EndpointSliceBuilder.Plan(svc, [pods[2]], s_nodes, [], () => "a-xxxxx"));
        Assert.Empty(LoadBalancerRoutes.Compute([svc], s_nodes, none));
    }

    [Fact]
    public void Other_types_missing_or_ipv6_ingress_and_no_ready_node_give_no_route()
    {
        Assert.Empty(LoadBalancerRoutes.Compute([Lb("a", "172.30.0.200", type: "NodePort")], s_nodes, []));
        Assert.Empty(LoadBalancerRoutes.Compute([Lb("a", "fd00::1")], s_nodes, []));
        Assert.Empty(LoadBalancerRoutes.Compute([Lb("a", "not-an-ip")], s_nodes, []));
        Assert.Empty(LoadBalancerRoutes.Compute([Lb("a", "172.30.0.200")], [Node("n", ready: false)], []));
    }

    [Fact]
    public void Services_sharing_an_ip_share_one_route()
    {
        var routes = LoadBalancerRoutes.Compute([Lb("a", "172.30.0.200"), Lb("b", "172.30.0.200"), Lb("c", "172.30.0.201")], s_nodes, []);
        Assert.Equal(2, routes.Count);
        Assert.Equal(["demo/a", "demo/b"], routes[0].Services);
    }
}
