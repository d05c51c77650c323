using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Objects;

public class KindsTests
{
    [Theory]
    [InlineData("pods", "Pod")]
    [InlineData("pod", "Pod")]
    [InlineData("po", "Pod")]
    [InlineData("Pod", "Pod")]
    [InlineData("PODS", "Pod")]
    [InlineData("pods.v1.", "Pod")]
    [InlineData("svc", "Service")]
    [InlineData("services", "Service")]
    [InlineData("no", "Node")]
    [InlineData("nodes", "Node")]
    [InlineData("ns", "Namespace")]
    [InlineData("namespace", "Namespace")]
    [InlineData("netpol", "NetworkPolicy")]
    [InlineData("networkpolicies", "NetworkPolicy")]
    [InlineData("networkpolicies.networking.k8s.io", "NetworkPolicy")]
    [InlineData("NetworkPolicy", "NetworkPolicy")]
    [InlineData("endpointslices", "EndpointSlice")]
    [InlineData("endpointslice", "EndpointSlice")]
    [InlineData("eps", "EndpointSlice")]
    [InlineData("endpointslices.discovery.k8s.io", "EndpointSlice")]
    [InlineData("endpointslices.v1.discovery.k8s.io", "EndpointSlice")]
    public void Cli_names_resolve_as_kubectl_resolves_them(string name, string kind)
    {
        Assert.True(Kinds.TryResolve(name, out var k));
        Assert.Equal(kind, k.Kind);
    }

    [Theory]
    [InlineData("deployments")]
    [InlineData("ep")]
    [InlineData("netpols")]
    [InlineData("pods.apps")]
    [InlineData("")]
    [InlineData("networkpolicies.v1")]
    public void Unknown_names_do_not_resolve(string name)
    {
        Assert.False(Kinds.TryResolve(name, out _));
        Assert.Throws<ArgumentException>(() => Kinds.Resolve(name));
    }

    [Fact]
    public void Store_keys_follow_the_api_server_layout()
    {
        Assert.Equal("/registry/pods/default/web", Kinds.Pod.StoreKey("default", "web"));
        Assert.Equal("/registry/nodes/node-1", Kinds.Node.StoreKey(null, "node-1"));
        Assert.Equal("/registry/namespaces/demo", Kinds.Namespace.StoreKey("ignored", "demo"));
        Assert.Equal("/registry/endpointslices/demo/web-abc", Kinds.EndpointSlice.StoreKey("demo", "web-abc"));
        Assert.Equal("/registry/networkpolicies/x/deny", Kinds.NetworkPolicy.StoreKey("x", "deny"));
        Assert.Equal("/registry/services/", Kinds.Service.StorePrefix());
        Assert.Equal("/registry/services/demo/", Kinds.Service.StorePrefix("demo"));
        Assert.Equal("/registry/nodes/", Kinds.Node.StorePrefix("demo"));
        Assert.ThrowsAny<ArgumentException>(() => Kinds.Pod.StoreKey(null, "web"));
        var obj = JsonNode.Parse("""{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"n"}}""")!.AsObject();
        Assert.Equal("/registry/services/n/s", Kinds.StoreKey(obj));
    }

    [Fact]
    public void Registry_describes_each_kind()
    {
        // The six Kubernetes kinds, then Trellis' own cluster-scoped BGP kinds (Calico's BGPPeer, BGPConfiguration).
        Assert.Equal(8, Kinds.All.Length);
        Assert.Equal(["BGPPeer", "BGPConfiguration"], Kinds.All.Where(k => k.Group == "trellis.dev").Select(k => k.Kind));
        Assert.Equal(["ns", "no", "po", "svc", "eps", "netpol"], Kinds.All.SelectMany(k => k.ShortNames));
        Assert.All(Kinds.All, k => Assert.Same(k, Kinds.Find(k.ApiVersion, k.Kind)));
        Assert.Equal(["Pod", "Service", "EndpointSlice", "NetworkPolicy"], Kinds.All.Where(k => k.Namespaced).Select(k => k.Kind));
        Assert.Equal("discovery.k8s.io", Kinds.EndpointSlice.Group);
        Assert.Equal("", Kinds.Pod.Group);
        Assert.Null(Kinds.Find("networking.k8s.io/v1beta1", "NetworkPolicy"));
        Assert.Null(Kinds.Find("v1", "pod"));
    }
}
