using System.Text.Json.Nodes;
using CsCheck;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;
using static Trellis.Core.Tests.Proxy.ProxyInputs;

namespace Trellis.Core.Tests.Proxy;

public class ProxyCompilerTests
{
    private const string P80 = "[{\"name\":\"p80\",\"port\":80}]";

    [Fact]
    public void Chain_names_are_kube_proxys()
    {
        // The names kube-proxy's nftables proxier_test.go expects for ns1/svc1 port p80 and endpoint 10.180.0.1:80.
        var r = ProxyCompiler.Compile(Input([Service("ns1", "svc1", "172.30.0.41", P80)],
            [Slice("ns1", "svc1", "svc1-1", "[{\"name\":\"p80\",\"port\":80}]", Endpoint("10.180.0.1"))]));
        Assert.Contains("service-ULMVA6XW-ns1/svc1/tcp/p80", r.Chains.Keys);
        Assert.Contains("endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80", r.Chains.Keys);
    }

    [Fact]
    public void Service_ports_report_endpoints_and_their_categories()
    {
        var svc = Service("a", "web", "10.96.0.10", extraSpec: ",\"type\":\"LoadBalancer\",\"externalTrafficPolicy\":\"Local\",\"healthCheckNodePort\":32100",
            portsJson: "[{\"name\":\"http\",\"port\":80,\"nodePort\":30080}]", status: "{\"loadBalancer\":{\"ingress\":[{\"ip\":\"192.0.2.1\"}]}}");
        var r = ProxyCompiler.Compile(Input([svc], [Slice("a", "web", "w", "[{\"name\":\"http\",\"port\":8080}]",
            Endpoint("10.244.1.5", "node-1"), Endpoint("10.244.2.5", "node-2"), Endpoint("10.244.2.6", "node-2", ready: false))]));
        var sp = Assert.Single(r.ServicePorts);
        Assert.Equal(("a", "web", "http", "TCP", 80, 30080), (sp.Namespace, sp.Name, sp.PortName, sp.Protocol, sp.Port, sp.NodePort));
        Assert.Equal(3, sp.Endpoints.Count);
        Assert.Equal(["10.244.1.5:8080", "10.244.2.5:8080"], sp.ClusterEndpoints.Select(e => e.ToString()));
        Assert.Equal(["10.244.1.5:8080"], sp.LocalEndpoints.Select(e => e.ToString()));
        Assert.True(sp.ExternalPolicyLocal);
        Assert.False(sp.InternalPolicyLocal);
        Assert.Equal(32100, sp.HealthCheckNodePort);
        Assert.Equal("192.0.2.1", Assert.Single(sp.LoadBalancerIPs).ToString());
        Assert.True(sp.LocalEndpoints[0].IsLocal);
    }

    [Fact]
    public void Endpoint_conditions_default_as_the_api_says()
    {
        var r = ProxyCompiler.Compile(Input([Service("a", "web", "10.96.0.10", P80)], [Slice("a", "web", "w", "[{\"name\":\"p80\",\"port\":80}]",
            Endpoint("10.244.1.1", ready: null), Endpoint("10.244.1.2", ready: false), Endpoint("10.244.1.3", ready: false, serving: true, terminating: true))]));
        var eps = r.ServicePorts[0].Endpoints;
        Assert.Equal((true, true, false), (eps[0].Ready, eps[0].Serving, eps[0].Terminating));
        Assert.Equal((false, false, false), (eps[1].Ready, eps[1].Serving, eps[1].Terminating));
        Assert.Equal((false, true, true), (eps[2].Ready, eps[2].Serving, eps[2].Terminating));
        // A ready endpoint exists, so the terminating one is not used.
        Assert.Equal(["10.244.1.1:80"], r.ServicePorts[0].ClusterEndpoints.Select(e => e.ToString()));
    }

    [Fact]
    public void The_same_endpoint_in_two_slices_is_programmed_once_preferring_ready()
    {
        var r = ProxyCompiler.Compile(Input([Service("a", "web", "10.96.0.10", P80)], [
            Slice("a", "web", "w1", "[{\"name\":\"p80\",\"port\":80}]", Endpoint("10.244.1.1", ready: false)),
            Slice("a", "web", "w2", "[{\"name\":\"p80\",\"port\":80}]", Endpoint("10.244.1.1"))]));
        var ep = Assert.Single(r.ServicePorts[0].Endpoints);
        Assert.True(ep.Ready);
    }

    [Fact]
    public void A_nodeport_claimed_twice_goes_to_the_first_service_by_name_and_the_second_is_reported()
    {
        string np = "[{\"name\":\"http\",\"port\":80,\"nodePort\":30080}]";
        var slice = (string svc) => Slice("a", svc, svc + "-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.1"));
        var r = ProxyCompiler.Compile(Input(
            [Service("a", "zeta", "10.96.0.11", np, ",\"type\":\"NodePort\""), Service("a", "alpha", "10.96.0.10", np, ",\"type\":\"NodePort\"")],
            [slice("alpha"), slice("zeta")]));
        Assert.Contains(r.Sets["service-nodeports"].Elements, e => e.StartsWith("tcp . 30080 : goto external-", StringComparison.Ordinal) && e.EndsWith("a/alpha/tcp/http", StringComparison.Ordinal));
        string problem = Assert.Single(r.Problems);
        Assert.StartsWith("Service a/zeta: service-nodeports tcp . 30080 is already taken by a/alpha:http/TCP", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Masquerade_for_cluster_ips_follows_the_cluster_cidr_and_masquerade_all()
    {
        var svc = Service("a", "web", "10.96.0.10", P80);
        var slice = Slice("a", "web", "w", "[{\"name\":\"p80\",\"port\":80}]", Endpoint("10.244.1.1"));
        string Rules(ProxyInput i) => string.Join("\n", ProxyCompiler.Compile(i).Chains.Values.Where(c => c.Name.StartsWith("service-", StringComparison.Ordinal) && c.Name.Contains('/', StringComparison.Ordinal)).SelectMany(c => c.Rules));
        Assert.Contains("ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade", Rules(Input([svc], [slice])), StringComparison.Ordinal);
        Assert.Contains("ip daddr 10.96.0.10 tcp dport 80 jump mark-for-masquerade", Rules(Input([svc], [slice], masqueradeAll: true)), StringComparison.Ordinal);
        Assert.DoesNotContain("mark-for-masquerade", Rules(Input([svc], [slice]) with { ClusterCidrs = [] }), StringComparison.Ordinal);
    }

    [Fact]
    public void Garbage_objects_never_throw_and_are_reported_by_field()
    {
        // Random JSON where the Service and slice fields the proxy reads are expected.
        // JSON texts, parsed per use: a JsonNode can only have one parent.
        var value = Gen.OneOf<string>("null", "0", "-1", "70000", "true", "\"\"", "\"None\"", "\"10.96.0.1\"", "\"10.96.0.300\"", "\"fd00::1\"",
            "\"TCP\"", "\"ICMP\"", "\"Local\"", "\"ClientIP\"", "\"LoadBalancer\"", "\"NodePort\"", "\"http\"", "\"10.0.0.0/8\"", "\"x/33\"", "[]", "{}", "[1,\"a\"]");
        string[] paths = ["spec.clusterIP", "spec.type", "spec.ports", "spec.ports.0.port", "spec.ports.0.protocol", "spec.ports.0.nodePort",
            "spec.externalIPs", "spec.externalIPs.0", "spec.loadBalancerSourceRanges.0", "spec.sessionAffinity", "spec.sessionAffinityConfig",
            "spec.externalTrafficPolicy", "status.loadBalancer.ingress.0.ip", "metadata.name"];
        Gen.Select(Gen.OneOf(paths), value).Array[1, 6].Sample(edits =>
        {
            var json = Service("a", "web", "10.96.0.10", "[{\"name\":\"http\",\"port\":80}]", ",\"type\":\"LoadBalancer\",\"externalIPs\":[\"198.51.100.1\"]",
                "{\"loadBalancer\":{\"ingress\":[{\"ip\":\"192.0.2.1\"}]}}").Json;
            foreach (var (path, v) in edits)
            {
                Set(json, path, JsonNode.Parse(v));
            }
            var slice = Slice("a", "web", "w", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.1")).Json;
            foreach (var (path, v) in edits)
            {
                Set(slice, path.Replace("spec.ports", "ports", StringComparison.Ordinal).Replace("spec.", "endpoints.0.", StringComparison.Ordinal), JsonNode.Parse(v));
            }
            var r = ProxyCompiler.Compile(Input([new ServiceView(json)], [new EndpointSliceView(slice)]));
            new FakeProxyTable().Apply(r.Dump());
        }, iter: 500);
    }

    private static void Set(JsonNode root, string path, JsonNode? value)
    {
        var parts = path.Split('.');
        JsonNode? node = root;
        for (int i = 0; i < parts.Length - 1 && node is not null; i++)
        {
            node = node is JsonArray a ? (int.TryParse(parts[i], out int k) && k < a.Count ? a[k] : null) : node is JsonObject o ? o[parts[i]] : null;
        }
        if (node is JsonObject obj)
        {
            obj[parts[^1]] = value;
        }
        else if (node is JsonArray arr && int.TryParse(parts[^1], out int idx) && idx < arr.Count)
        {
            arr[idx] = value;
        }
    }
}
