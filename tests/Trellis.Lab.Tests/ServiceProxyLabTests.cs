using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;
using static Trellis.Lab.Tests.ServiceLab;

namespace Trellis.Lab.Tests;

/// <summary>
/// One 3-node lab with every kind of Service, shared by the tests of <see cref="ServiceProxyLabTests"/>.
/// web-1 serves on node-1 (port 8080), web-2 on node-2 (port 8081: the named targetPort "http" resolves
/// per pod); node-3 has only a client. Every server reports the client address it saw.
/// </summary>
public sealed class ServiceProxyLabFixture : IDisposable
{
    public const string Ns = "svc";
    public const string ExternalIp = "192.0.2.10";

    public LabDriver Lab { get; } = new("s");

    public ServiceProxyLabFixture()
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
            Lab.Dispose(); // xunit does not dispose a fixture whose constructor threw
            throw;
        }
    }

    private void Setup()
    {
        string config = Path.Combine(Path.GetTempPath(), $"{Lab.Name}.yaml");
        File.WriteAllText(config, """
            apiVersion: trellis.dev/v1alpha1
            kind: Lab
            nodes: 3
            loadBalancerPools: [172.30.0.240/28]
            """);
        try
        {
            Lab.Must("lab", "up", "--name", Lab.Name, "--config", config);
        }
        finally
        {
            File.Delete(config);
        }
        Lab.Apply($"""
            apiVersion: v1
            kind: Namespace
            metadata: {"{"}name: {Ns}{"}"}
            ---
            {WebPod(Ns, "web-1", "node-1", 8080)}
            {WebPod(Ns, "web-2", "node-2", 8081)}
            {ClientPod(Ns, "client-1", "node-1")}
            {ClientPod(Ns, "client-3", "node-3")}
            """ + "\n" + """
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: svc}
            spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP, targetPort: dns}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web-np, namespace: svc}
            spec: {type: NodePort, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}, {name: dns, port: 53, protocol: UDP, targetPort: dns, nodePort: 30080}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web-local, namespace: svc}
            spec: {type: LoadBalancer, externalTrafficPolicy: Local, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http, nodePort: 30081}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web-fw, namespace: svc}
            spec: {type: LoadBalancer, loadBalancerSourceRanges: [172.30.0.1/32], selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web-ext, namespace: svc}
            spec: {externalIPs: [192.0.2.10], selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web-aff, namespace: svc}
            spec: {sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web-itp, namespace: svc}
            spec: {internalTrafficPolicy: Local, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web-1-only, namespace: svc}
            spec: {selector: {name: web-1}, ports: [{name: http, port: 80, targetPort: http}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: empty, namespace: svc}
            spec: {selector: {app: nothing}, ports: [{name: t, port: 80}, {name: u, port: 53, protocol: UDP}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: other-proxy, namespace: svc, labels: {service.kubernetes.io/service-proxy-name: someone-else}}
            spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
            """);
        Lab.WaitReady(Ns, 4);
        // The external IP is routed to node-1 by the "network" (the underlay), as an operator would.
        Sh.Must("ip", "-n", $"trl-{Lab.Name}-ul", "route", "replace", $"{ExternalIp}/32", "via", "172.30.0.11");
    }

    public void Dispose() => Lab.Dispose();
}

/// <summary>
/// Services in the lab with real packets, checked the way kube-proxy's packet-flow tests state them: who
/// answers, and which client address the endpoint saw (masqueraded only where kube-proxy masquerades).
/// </summary>
[Collection("lab")]
public sealed class ServiceProxyLabTests(ServiceProxyLabFixture f) : IClassFixture<ServiceProxyLabFixture>
{
    private const string Ns = ServiceProxyLabFixture.Ns;
    private LabDriver Lab => f.Lab;

    private HashSet<string?> Names(string from, string target, int tries = 12, string protocol = "tcp")
    {
        var names = new HashSet<string?>();
        for (int i = 0; i < tries; i++)
        {
            var s = Connect(Lab, from, target, protocol);
            Assert.True(s.Exit == 0, $"{from} -> {target}/{protocol}: {s}");
            names.Add(s.Name);
        }
        return names;
    }

    [LabFact]
    public void ClusterIP_balances_over_both_endpoints_from_pods_and_nodes_without_NAT_for_pods()
    {
        string ip = ClusterIp(Lab, Ns, "web");
        Eventually(Lab, "svc/client-3", $"{ip}:80", s => s.Exit == 0);
        // The named targetPort "http" is 8080 on web-1 and 8081 on web-2: both are reached.
        Assert.Equal(["web-1", "web-2"], Names("svc/client-3", $"{ip}:80").Order());
        Assert.Equal(["web-1", "web-2"], Names("svc/client-3", $"{ip}:53", protocol: "udp").Order());
        // A pod's own address is what the endpoint sees: no masquerade inside the cluster CIDR.
        string client = PodIp(Lab, Ns, "client-3");
        var seen = Connect(Lab, "svc/client-3", $"{ip}:80");
        Assert.Equal(client, seen.ClientIp);
        seen = Connect(Lab, "svc/client-1", $"{ip}:53", "udp");
        Assert.Equal(PodIp(Lab, Ns, "client-1"), seen.ClientIp);
        // From a node's own netns (hostNetwork): answered, masqueraded (the source is outside the cluster CIDR).
        var fromNode = Connect(Lab, "node-3", $"{ip}:80");
        Assert.True(fromNode.Exit == 0, fromNode.ToString());
        Assert.DoesNotContain("172.30.0.13", fromNode.ClientIp ?? "", StringComparison.Ordinal);
    }

    [LabFact]
    public void No_endpoints_is_refused_at_once_a_wrong_port_is_refused_an_unallocated_address_is_dropped()
    {
        string empty = ClusterIp(Lab, Ns, "empty");
        string web = ClusterIp(Lab, Ns, "web");
        Eventually(Lab, "svc/client-1", $"{empty}:80", s => s.Exit == 1);
        var started = DateTime.UtcNow;
        Assert.Equal(1, Connect(Lab, "svc/client-1", $"{empty}:80", timeout: "3s").Exit);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(2.5), "refused, not timed out");
        Assert.Equal(1, Connect(Lab, "svc/client-1", $"{empty}:53", "udp", timeout: "3s").Exit);
        Assert.Equal(1, Connect(Lab, "svc/client-1", $"{web}:81").Exit);
        Assert.Equal(1, Connect(Lab, "node-2", $"{web}:81").Exit);
        // 10.96.255.254 is inside the service CIDR and allocated to nothing: dropped, the client times out.
        Assert.Equal(3, Connect(Lab, "svc/client-1", "10.96.255.254:80").Exit);
        // A Service labelled for another proxy is left alone: its ClusterIP is not programmed, so dropped too.
        Assert.Equal(3, Connect(Lab, "svc/client-1", $"{ClusterIp(Lab, Ns, "other-proxy")}:80").Exit);
        Assert.DoesNotContain("other-proxy", ProxyTable(Lab, "node-1"), StringComparison.Ordinal);
    }

    [LabFact]
    public void NodePort_with_Cluster_policy_answers_on_every_node_and_masquerades_outside_clients()
    {
        foreach (var node in new[] { "172.30.0.11", "172.30.0.12", "172.30.0.13" })
        {
            var s = Eventually(Lab, "outside", $"{node}:30080", x => x.Exit == 0);
            Assert.Contains(s.Name, new[] { "web-1", "web-2" });
            // Cluster policy: the endpoint may be on another node, so the source is masqueraded to the node.
            Assert.NotEqual("172.30.0.1", s.ClientIp);
            var u = Eventually(Lab, "outside", $"{node}:30080", x => x.Exit == 0, "udp");
            Assert.NotEqual("172.30.0.1", u.ClientIp);
        }
        // From a pod to a node's NodePort.
        Assert.Equal(0, Connect(Lab, "svc/client-3", "172.30.0.12:30080").Exit);
        // Not on the node's bridge address: by default NodePorts are on the primary address only, so
        // the gateway's port 30080 is just a closed port of the node.
        string client1 = PodIp(Lab, Ns, "client-1");
        string gateway = client1[..client1.LastIndexOf('.')] + ".1";
        Assert.Equal(1, Connect(Lab, "svc/client-1", $"{gateway}:30080").Exit);
    }

    [LabFact]
    public void ExternalTrafficPolicy_Local_keeps_the_client_address_drops_on_nodes_without_endpoints_and_reports_health()
    {
        var s = Eventually(Lab, "outside", "172.30.0.11:30081", x => x.Exit == 0);
        Assert.Equal("web-1", s.Name);
        Assert.Equal("172.30.0.1", s.ClientIp);
        Assert.Equal("web-2", Connect(Lab, "outside", "172.30.0.12:30081").Name);
        // node-3 has no local endpoint: dropped (not refused — the LB should not have sent it there).
        Assert.Equal(3, Connect(Lab, "outside", "172.30.0.13:30081").Exit);

        var svc = Service(Lab, Ns, "web-local");
        int hc = svc["spec"]!["healthCheckNodePort"]!.GetValue<int>();
        string h1 = HttpStatus(Lab, $"172.30.0.11:{hc}");
        Assert.StartsWith("HTTP/1.1 200", h1, StringComparison.Ordinal);
        Assert.Contains("\"localEndpoints\":1", h1, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 503", HttpStatus(Lab, $"172.30.0.13:{hc}"), StringComparison.Ordinal);

        // The LoadBalancer IP, routed by the lab's "router" only to nodes with a local endpoint.
        string lb = svc["status"]!["loadBalancer"]!["ingress"]![0]!["ip"]!.GetValue<string>();
        var viaLb = Eventually(Lab, "outside", $"{lb}:80", x => x.Exit == 0);
        Assert.Contains(viaLb.Name, new[] { "web-1", "web-2" });
        Assert.Equal("172.30.0.1", viaLb.ClientIp);
    }

    [LabFact]
    public void LoadBalancer_source_ranges_admit_only_the_listed_clients()
    {
        var svc = Service(Lab, Ns, "web-fw");
        string lb = svc["status"]!["loadBalancer"]!["ingress"]![0]!["ip"]!.GetValue<string>();
        Eventually(Lab, "outside", $"{lb}:80", x => x.Exit == 0);
        // node-3's own address is not in loadBalancerSourceRanges: its connection to the LB IP is dropped.
        Assert.Equal(3, Connect(Lab, "node-3", $"{lb}:80").Exit);
        // The NodePort of the same Service is not subject to the source ranges (as kube-proxy).
        int nodePort = svc["spec"]!["ports"]![0]!["nodePort"]!.GetValue<int>();
        Assert.Equal(0, Eventually(Lab, "node-3", $"172.30.0.11:{nodePort}", x => x.Exit == 0).Exit);
    }

    [LabFact]
    public void ExternalIPs_are_served_from_outside_and_from_pods()
    {
        var s = Eventually(Lab, "outside", $"{ServiceProxyLabFixture.ExternalIp}:80", x => x.Exit == 0);
        Assert.Contains(s.Name, new[] { "web-1", "web-2" });
        Assert.Equal(0, Connect(Lab, "svc/client-3", $"{ServiceProxyLabFixture.ExternalIp}:80").Exit);
    }

    [LabFact]
    public void Session_affinity_sends_one_client_to_one_endpoint()
    {
        string ip = ClusterIp(Lab, Ns, "web-aff");
        Eventually(Lab, "svc/client-3", $"{ip}:80", s => s.Exit == 0);
        Assert.Single(Names("svc/client-3", $"{ip}:80", tries: 10));
        Assert.Single(Names("svc/client-1", $"{ip}:80", tries: 10));
    }

    [LabFact]
    public void InternalTrafficPolicy_Local_uses_only_the_nodes_own_endpoints()
    {
        string ip = ClusterIp(Lab, Ns, "web-itp");
        Eventually(Lab, "svc/client-1", $"{ip}:80", s => s.Exit == 0);
        Assert.Equal(["web-1"], Names("svc/client-1", $"{ip}:80", tries: 8));
        // node-3 has none: dropped.
        Assert.Equal(3, Connect(Lab, "svc/client-3", $"{ip}:80").Exit);
    }

    [LabFact]
    public void Hairpin_a_pod_reaching_itself_through_its_Service_is_masqueraded()
    {
        string ip = ClusterIp(Lab, Ns, "web-1-only");
        var s = Eventually(Lab, "svc/web-1", $"{ip}:80", x => x.Exit == 0);
        Assert.Equal("web-1", s.Name);
        // Without masquerade the reply would go straight back inside the pod and never match the connection.
        Assert.NotEqual(PodIp(Lab, Ns, "web-1"), s.ClientIp);
        // Another pod through the same Service keeps its own address.
        Assert.Equal(PodIp(Lab, Ns, "client-1"), Connect(Lab, "svc/client-1", $"{ip}:80").ClientIp);
    }

    [LabFact]
    public void The_proxy_table_uses_verdict_maps_and_the_CLI_shows_services_and_slices()
    {
        string table = ProxyTable(Lab, "node-1");
        Assert.Contains("map service-ips", table, StringComparison.Ordinal);
        Assert.Contains("vmap @service-ips", table, StringComparison.Ordinal);
        string wide = Lab.Must("get", "svc", "-n", Ns, "-o", "wide");
        Assert.Contains("80:30080/TCP", wide, StringComparison.Ordinal);
        Assert.Contains(ClusterIp(Lab, Ns, "web"), wide, StringComparison.Ordinal);
        string slices = Lab.Must("get", "endpointslices", "-n", Ns);
        Assert.Contains(PodIp(Lab, Ns, "web-1"), slices, StringComparison.Ordinal);
        var json = JsonNode.Parse(Lab.Must("get", "endpointslices", "-n", Ns, "-o", "json"))!["items"]!.AsArray();
        Assert.Contains(json, s => s!["metadata"]!["labels"]!["kubernetes.io/service-name"]!.GetValue<string>() == "web");
    }
}
