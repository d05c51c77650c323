using System.Net;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Core.Routing;

namespace Trellis.Bgp.Tests.Backend;

/// <summary>The bgp backend's pure halves: who peers with whom (Calico's rules) and which learned routes reach the kernel.</summary>
public sealed class BgpCompilerTests
{
    private static NodeView Node(string name, string ip, string? clusterId = null, string labels = "{}")
    {
        string annotations = clusterId is null ? "{}" : $"{{\"trellis.dev/route-reflector-cluster-id\":\"{clusterId}\"}}";
        return new((JsonObject)JsonNode.Parse($$$"""
            {"apiVersion":"v1","kind":"Node","metadata":{"name":"{{{name}}}","labels":{{{labels}}},"annotations":{{{annotations}}}},
             "status":{"addresses":[{"type":"InternalIP","address":"{{{ip}}}"}]}}
            """)!);
    }

    private static BgpPeerView Peer(string name, string spec) =>
        new((JsonObject)JsonNode.Parse($$"""{"apiVersion":"trellis.dev/v1alpha1","kind":"BGPPeer","metadata":{"name":"{{name}}"},"spec":{{spec}}}""")!);

    private static BgpConfigurationView Config(string spec) =>
        new((JsonObject)JsonNode.Parse($$"""{"apiVersion":"trellis.dev/v1alpha1","kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{{spec}}}""")!);

    private static readonly NodeView[] s_three = [Node("node-1", "172.30.0.11"), Node("node-2", "172.30.0.12"), Node("node-3", "172.30.0.13")];

    [Fact]
    public void Without_reflectors_every_node_peers_with_every_other_in_AS_64512()
    {
        var t = BgpTopologyCompiler.Compile("node-1", s_three, null, []);
        Assert.Equal("as 64512\npeer 172.30.0.12 as 64512 (node-mesh)\npeer 172.30.0.13 as 64512 (node-mesh)\n", t.Dump());
        Assert.Equal(TimeSpan.FromSeconds(90), t.HoldTime);
    }

    [Fact]
    public void Mesh_disabled_leaves_only_BGPPeers_selected_by_node_or_selector()
    {
        NodeView[] nodes = [Node("node-1", "172.30.0.11", labels: """{"rack":"a"}"""), Node("node-2", "172.30.0.12", labels: """{"rack":"b"}""")];
        BgpPeerView[] peers =
        [
            Peer("tor-a", """{"peerIP":"172.30.0.2","asNumber":65001,"nodeSelector":"rack=a"}"""),
            Peer("tor-b", """{"peerIP":"172.30.0.3","asNumber":65002,"nodeSelector":"rack=b"}"""),
            Peer("only-2", """{"peerIP":"172.30.0.4:1179","asNumber":65003,"node":"node-2","password":"k"}"""),
            Peer("global", """{"peerIP":"172.30.0.5","asNumber":4200000000}"""),
        ];
        var config = Config("""{"asNumber":65000,"nodeToNodeMeshEnabled":false,"holdTime":"9s"}""");
        Assert.Equal("as 65000\npeer 172.30.0.5 as 4200000000 (BGPPeer/global)\npeer 172.30.0.2 as 65001 (BGPPeer/tor-a)\n",
            BgpTopologyCompiler.Compile("node-1", nodes, config, peers).Dump());
        var t2 = BgpTopologyCompiler.Compile("node-2", nodes, config, peers);
        Assert.Equal("as 65000\npeer 172.30.0.5 as 4200000000 (BGPPeer/global)\npeer 172.30.0.4:1179 as 65003 md5 (BGPPeer/only-2)\npeer 172.30.0.3 as 65002 (BGPPeer/tor-b)\n", t2.Dump());
        Assert.Equal(TimeSpan.FromSeconds(9), t2.HoldTime);
    }

    [Fact]
    public void A_reflector_peers_with_everyone_its_clients_only_with_reflectors()
    {
        NodeView[] nodes = [Node("node-1", "172.30.0.11", "244.0.0.1"), Node("node-2", "172.30.0.12"), Node("node-3", "172.30.0.13"), Node("node-4", "172.30.0.14", "244.0.0.1")];
        Assert.Equal("as 64512 route-reflector 244.0.0.1\npeer 172.30.0.12 as 64512 rr-client (route-reflector)\npeer 172.30.0.13 as 64512 rr-client (route-reflector)\npeer 172.30.0.14 as 64512 (route-reflector)\n",
            BgpTopologyCompiler.Compile("node-1", nodes, null, []).Dump());
        Assert.Equal("as 64512\npeer 172.30.0.11 as 64512 (route-reflector)\npeer 172.30.0.14 as 64512 (route-reflector)\n",
            BgpTopologyCompiler.Compile("node-2", nodes, null, []).Dump());
    }

    [Fact]
    public void A_BGPPeer_replaces_the_mesh_session_to_the_same_address_and_bad_ones_are_named()
    {
        BgpPeerView[] peers = [Peer("n2", """{"peerIP":"172.30.0.12","asNumber":64512,"password":"x"}"""), Peer("bad", """{"peerIP":"nope","asNumber":1}""")];
        var t = BgpTopologyCompiler.Compile("node-1", s_three, null, peers);
        Assert.Equal("as 64512\npeer 172.30.0.12 as 64512 md5 (BGPPeer/n2)\npeer 172.30.0.13 as 64512 (node-mesh)\nerror BGPPeer bad: spec.peerIP: 'nope' is not an IP address\n", t.Dump());
        Assert.Contains("no InternalIP", BgpTopologyCompiler.Compile("node-9", s_three, null, []).Errors[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Learned_routes_become_proto_203_routes_one_best_path_each_never_our_own_or_off_link()
    {
        var self = IPAddress.Parse("172.30.0.11");
        BgpLearnedRoute[] learned =
        [
            new(IPNetwork.Parse("10.244.2.0/24"), IPAddress.Parse("172.30.0.12"), IPAddress.Parse("172.30.0.12")),
            new(IPNetwork.Parse("10.244.2.0/24"), IPAddress.Parse("172.30.0.3"), IPAddress.Parse("172.30.0.3"), AsPathLength: 2),
            new(IPNetwork.Parse("10.99.0.0/16"), IPAddress.Parse("172.30.0.3"), IPAddress.Parse("172.30.0.3"), AsPathLength: 1),
            new(IPNetwork.Parse("10.99.0.0/16"), IPAddress.Parse("172.30.0.4"), IPAddress.Parse("172.30.0.4"), AsPathLength: 1, LocalPref: 200),
            new(IPNetwork.Parse("10.244.1.0/24"), self, IPAddress.Parse("172.30.0.2")),
            new(IPNetwork.Parse("10.244.1.128/25"), IPAddress.Parse("172.30.0.12"), IPAddress.Parse("172.30.0.12")),
            new(IPNetwork.Parse("10.55.0.0/24"), IPAddress.Parse("192.0.2.1"), IPAddress.Parse("172.30.0.3")),
        ];
        var c = BgpRouteCompiler.Compile(self, IPNetwork.Parse("172.30.0.0/24"), IPNetwork.Parse("10.244.1.0/24"), "eth0", learned);
        Assert.Equal("""
            10.99.0.0/16 via 172.30.0.4 dev eth0 proto 203
            10.244.2.0/24 via 172.30.0.12 dev eth0 proto 203
            error 10.244.1.128/25: overlaps this node's pod CIDR 10.244.1.0/24; not installed
            error 10.55.0.0/24 from 172.30.0.3: next hop 192.0.2.1 is not on this node's subnet 172.30.0.0/24; not installed

            """.Replace("\r", "", StringComparison.Ordinal), c.Dump());
    }

    [Theory]
    [InlineData("""{"kind":"BGPPeer","spec":{"asNumber":65001}}""", "spec.peerIP: Required value")]
    [InlineData("""{"kind":"BGPPeer","spec":{"peerIP":"10.0.0.1:x","asNumber":65001}}""", "spec.peerIP: Invalid value")]
    [InlineData("""{"kind":"BGPPeer","spec":{"peerIP":"10.0.0.1","asNumber":0}}""", "spec.asNumber: Invalid value")]
    [InlineData("""{"kind":"BGPPeer","spec":{"peerIP":"10.0.0.1","asNumber":1,"nodeSelector":"a in (b"}}""", "spec.nodeSelector")]
    [InlineData("""{"kind":"BGPConfiguration","metadata":{"name":"other"},"spec":{}}""", "metadata.name")]
    [InlineData("""{"kind":"BGPConfiguration","spec":{"holdTime":"2s"}}""", "spec.holdTime")]
    public void Bad_BGP_objects_are_refused_naming_the_field(string json, string expected)
    {
        var obj = (JsonObject)JsonNode.Parse(json)!;
        obj["apiVersion"] = "trellis.dev/v1alpha1";
        if (obj["metadata"] is null)
        {
            obj["metadata"] = new JsonObject { ["name"] = "default" };
        }
        var errors = ObjectValidator.Validate(obj);
        Assert.Contains(errors, e => e.ToString().Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Good_BGP_objects_pass()
    {
        Assert.Empty(ObjectValidator.Validate((JsonObject)JsonNode.Parse("""{"apiVersion":"trellis.dev/v1alpha1","kind":"BGPPeer","metadata":{"name":"tor"},"spec":{"peerIP":"172.30.0.2","asNumber":65001,"nodeSelector":"rack=a","password":"k"}}""")!));
        Assert.Empty(ObjectValidator.Validate((JsonObject)JsonNode.Parse("""{"apiVersion":"trellis.dev/v1alpha1","kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"asNumber":64512,"nodeToNodeMeshEnabled":false,"holdTime":"6s"}}""")!));
    }
}
