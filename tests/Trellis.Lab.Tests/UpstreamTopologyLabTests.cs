using Trellis.Cni.Tests.Infrastructure;
using static Trellis.Lab.Tests.ServiceLab;

namespace Trellis.Lab.Tests;

/// <summary>
/// kube-proxy's test topology (pkg/proxy/nftables/proxier_test.go) built as a real lab: node-1 at 192.168.0.2
/// (testNodeIP) on underlay 192.168.0.0/24, cluster CIDR 10.0.0.0/8, service CIDR 172.30.0.0/16, pods at fixed
/// 10.180.x.y addresses. Services are selector-less with explicit ClusterIPs and hand-written EndpointSlices, as in
/// the unit tests. A handful of the packet-flow cases of tests/Trellis.Core.Tests/ProxyFlow/cases run here with
/// real packets and must end as the tracer predicted there.
/// </summary>
/// <remarks>
/// What the lab cannot express of the upstream topology: 10.180.0.1 and 10.180.2.1 (upstream's endpoints) are the
/// gateways (bridge addresses) of the pod CIDRs 10.180.0.0/24 and 10.180.2.0/24, so the endpoints here are
/// 10.180.0.11 and 10.180.2.11; the outside client is the underlay host 192.168.0.1, not 203.0.113.2 (the lab
/// has no routed external network); LB IPs (1.2.3.4) are not routed to the nodes by anything in this config.
/// </remarks>
public sealed class UpstreamTopologyLabFixture : IDisposable
{
    public const string Ns = "ns1";
    public const string Outside = "192.168.0.1";
    public const string Node1 = "192.168.0.2";
    public const string Node2 = "192.168.0.3";
    public const string Web1 = "10.180.0.11";
    public const string Web2 = "10.180.2.11";
    public const string Client = "10.180.0.12"; // not .2: the lab's DNS pod takes the first free address of node-1

    public LabDriver Lab { get; } = new("pf");

    public UpstreamTopologyLabFixture()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }
        try
        {
            Setup();
        }
        catch
        {
            Lab.Dispose(); // xunit does not dispose a fixture whose constructor threw: the lab would be left running
            throw;
        }
    }

    private void Setup()
    {
        string config = Path.Combine(Path.GetTempPath(), $"{Lab.Name}.yaml");
        File.WriteAllText(config, """
            apiVersion: trellis.dev/v1alpha1
            kind: Lab
            underlay: 192.168.0.0/24
            outsideIP: 192.168.0.1
            clusterCIDR: 10.0.0.0/8
            serviceCIDR: 172.30.0.0/16
            dnsIP: 172.30.0.10
            nodePortRange: 30000-32767
            nodes:
            - {name: node-1, ip: 192.168.0.2, podCIDR: 10.180.0.0/24}
            - {name: node-2, ip: 192.168.0.3, podCIDR: 10.180.2.0/24}
            """);
        try
        {
            Lab.Must("lab", "up", "--name", Lab.Name, "--config", config);
        }
        finally
        {
            File.Delete(config);
        }
        Lab.Apply(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns1}\n---\n"
            + Pod("web-1", "node-1", Web1, serve: true)
            + Pod("web-2", "node-2", Web2, serve: true)
            + Pod("client", "node-1", Client, serve: false)
            // TestClusterIPGeneral's svc1 (one endpoint) and svc2 (two endpoints, TCP only on port 80).
            + Service("svc1", "172.30.0.41", "ClusterIP", "")
            + Slice("svc1", (Web1, "node-1"))
            + Service("svc2", "172.30.0.42", "ClusterIP", "")
            + Slice("svc2", (Web1, "node-1"), (Web2, "node-2"))
            // TestExternalTrafficPolicyCluster / Local, on NodePorts.
            + Service("np-cluster", "172.30.0.43", "NodePort", ", nodePort: 30001")
            + Slice("np-cluster", (Web1, "node-1"), (Web2, "node-2"))
            + Service("np-local", "172.30.0.44", "NodePort", ", nodePort: 30002", "externalTrafficPolicy: Local")
            + Slice("np-local", (Web1, "node-1"), (Web2, "node-2"))
            // TestNoEndpointsReject's ClusterIP.
            + Service("svc6", "172.30.0.46", "ClusterIP", ""));
        Lab.WaitReady(Ns, 3);
    }

    private static string Pod(string name, string node, string ip, bool serve)
    {
        string container = serve
            ? "    command: [\"" + LabDriver.Trellis + "\", \"serve-hostname\", \"--name\", \"" + name + "\", \"--port\", \"80\", \"80/udp\", \"--report-client\"]\n"
              + "    ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]\n"
            : "    ports: [{containerPort: 9999}]\n";
        return "apiVersion: v1\nkind: Pod\n"
            + "metadata: {name: " + name + ", namespace: ns1, annotations: {trellis.dev/ip: \"" + ip + "\"}}\n"
            + "spec:\n  nodeName: " + node + "\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: c\n    image: agnhost\n"
            + container + "---\n";
    }

    private static string Service(string name, string clusterIP, string type, string nodePort, string extra = "") => $$"""
        apiVersion: v1
        kind: Service
        metadata: {name: {{name}}, namespace: ns1}
        spec:
          type: {{type}}
          clusterIP: {{clusterIP}}
          {{extra}}
          ports: [{name: p80, port: 80, protocol: TCP{{nodePort}}}]
        ---

        """;

    private static string Slice(string service, params (string Ip, string Node)[] endpoints) =>
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        + "metadata: {name: " + service + "-1, namespace: ns1, labels: {kubernetes.io/service-name: " + service + "}}\n"
        + "addressType: IPv4\nports: [{name: p80, port: 80, protocol: TCP}]\nendpoints:\n"
        + string.Concat(endpoints.Select(e => "- {addresses: [" + e.Ip + "], nodeName: " + e.Node + ", conditions: {ready: true}}\n"))
        + "---\n";

    public void Dispose() => Lab.Dispose();
}

[Collection("lab")]
public sealed class UpstreamTopologyLabTests(UpstreamTopologyLabFixture f) : IClassFixture<UpstreamTopologyLabFixture>
{
    private const string Pod = UpstreamTopologyLabFixture.Ns + "/client";
    private LabDriver Lab => f.Lab;

    private HashSet<string?> Names(string from, string target, int tries = 12)
    {
        var names = new HashSet<string?>();
        for (int i = 0; i < tries; i++)
        {
            var s = Connect(Lab, from, target);
            Assert.True(s.Exit == 0, $"{from} -> {target}: {s}");
            names.Add(s.Name);
        }
        return names;
    }

    [LabFact]
    public void The_lab_has_kube_proxys_addresses()
    {
        Assert.Contains($"inet {UpstreamTopologyLabFixture.Node1}/24", Sh.Run("ip", "-n", NodeNetns(Lab, "node-1"), "addr").Out, StringComparison.Ordinal);
        Assert.Equal(UpstreamTopologyLabFixture.Web1, PodIp(Lab, UpstreamTopologyLabFixture.Ns, "web-1"));
        Assert.Equal(UpstreamTopologyLabFixture.Web2, PodIp(Lab, UpstreamTopologyLabFixture.Ns, "web-2"));
        Assert.Equal(UpstreamTopologyLabFixture.Client, PodIp(Lab, UpstreamTopologyLabFixture.Ns, "client"));
    }

    [LabFact]
    public void ClusterIP_flows_of_TestClusterIPGeneral()
    {
        // "simple clusterIP": one endpoint, not masqueraded.
        var seen = Eventually(Lab, Pod, "172.30.0.41:80", s => s.Exit == 0);
        Assert.Equal("web-1", seen.Name);
        Assert.Equal(UpstreamTopologyLabFixture.Client, seen.ClientIp);
        // "clusterIP with multiple endpoints": both answer, from two nodes.
        Assert.Equal(["web-1", "web-2"], Names(Pod, "172.30.0.42:80").Order());
        // "hairpin to cluster IP": masqueraded, or the endpoint would answer itself directly and the reply be dropped.
        var hairpin = Eventually(Lab, "ns1/web-1", "172.30.0.41:80", s => s.Exit == 0);
        Assert.Equal("web-1", hairpin.Name);
        Assert.NotEqual(UpstreamTopologyLabFixture.Web1, hairpin.ClientIp);
        // "TCP-only port does not match UDP traffic": REJECT, which `connect` reports as refused (exit 1).
        Assert.Equal(1, Connect(Lab, Pod, "172.30.0.42:80", "udp").Exit);
        // "svc1 does not accept svc2's ports" (here: an unknown port): REJECT.
        Assert.Equal(1, Connect(Lab, Pod, "172.30.0.41:443").Exit);
        // "packet to unallocated cluster ip": DROP, so the client times out (exit 3).
        Assert.Equal(3, Connect(Lab, Pod, "172.30.0.50:80").Exit);
    }

    [LabFact]
    public void No_endpoints_rejects_from_pod_and_node()
    {
        // TestNoEndpointsReject "pod to cluster IP with no endpoints", and the same from the node (output hook).
        Eventually(Lab, Pod, "172.30.0.46:80", s => s.Exit == 1);
        Assert.Equal(1, Connect(Lab, "node-1", "172.30.0.46:80").Exit);
    }

    [LabFact]
    public void NodePort_flows_of_the_externalTrafficPolicy_tests()
    {
        string np = UpstreamTopologyLabFixture.Node1;
        // TestExternalTrafficPolicyCluster "external to NodePort hits both endpoints, masqueraded".
        Eventually(Lab, "outside", $"{np}:30001", s => s.Exit == 0);
        Assert.Equal(["web-1", "web-2"], Names("outside", $"{np}:30001").Order());
        var masq = Connect(Lab, "outside", $"{np}:30001");
        Assert.NotEqual(UpstreamTopologyLabFixture.Outside, masq.ClientIp);

        // TestExternalTrafficPolicyLocal "external to NodePort hits only local endpoint, unmasqueraded", on each node.
        Assert.Equal(["web-1"], Names("outside", $"{np}:30002"));
        Assert.Equal(UpstreamTopologyLabFixture.Outside, Connect(Lab, "outside", $"{np}:30002").ClientIp);
        Assert.Equal(["web-2"], Names("outside", $"{UpstreamTopologyLabFixture.Node2}:30002"));
        // "pod to NodePort hits both endpoints, unmasqueraded" (eTP Local short-circuit for pods).
        Assert.Equal(["web-1", "web-2"], Names(Pod, $"{np}:30002").Order());
        Assert.Equal(UpstreamTopologyLabFixture.Client, Connect(Lab, Pod, $"{np}:30002").ClientIp);
        // TestNodePorts "node to nodePort": masqueraded, reaches every endpoint.
        Assert.Equal(["web-1", "web-2"], Names("node-1", $"{np}:30001").Order());
    }
}
