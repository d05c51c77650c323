using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Objects;

public class ViewTests
{
    private static T View<T>(string yaml, Func<System.Text.Json.Nodes.JsonObject, T> make) =>
        make(ObjectDefaults.WithDefaults(Assert.Single(Manifests.Parse(yaml, "v.yaml"))));

    [Fact]
    public void Pod_view_reads_spec_and_status()
    {
        var pod = View("""
            apiVersion: v1
            kind: Pod
            metadata:
              name: a
              namespace: x
              labels: {pod: a}
              uid: u-1
              resourceVersion: "7"
              creationTimestamp: "2025-01-02T03:04:05Z"
              deletionTimestamp: "2025-01-02T04:00:00Z"
            spec:
              nodeName: node-2
              hostNetwork: false
              dnsConfig:
                nameservers: [1.1.1.1]
                searches: [a.b]
                options: [{name: ndots, value: "2"}, {name: rotate}]
              containers:
              - name: c
                image: agnhost
                command: [/agnhost]
                args: [serve-hostname, --port, "80"]
                ports: [{name: serve-80-tcp, containerPort: 80}, {containerPort: 82, protocol: SCTP, hostPort: 8082}]
                readinessProbe: {tcpSocket: {port: 80}}
              - name: d
                image: agnhost
            status:
              phase: Running
              podIP: 10.244.1.5
              podIPs: [{ip: 10.244.1.5}, {ip: "fd00::5"}]
              hostIP: 172.30.0.11
              conditions:
              - {type: Ready, status: "True"}
            """, j => new PodView(j));
        Assert.Equal("a", pod.Name);
        Assert.Equal("x", pod.Namespace);
        Assert.Equal("x/a", pod.ToString());
        Assert.Equal("a", pod.Metadata.Labels["pod"]);
        Assert.Equal("u-1", pod.Metadata.Uid);
        Assert.Equal("7", pod.Metadata.ResourceVersion);
        Assert.Equal(new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero), pod.Metadata.CreationTimestamp);
        Assert.True(pod.IsTerminating);
        Assert.Equal("node-2", pod.NodeName);
        Assert.Equal("ClusterFirst", pod.DnsPolicy);
        Assert.Equal("Always", pod.RestartPolicy);
        Assert.False(pod.HostNetwork);
        Assert.Equal(["1.1.1.1"], pod.DnsConfig!.Nameservers);
        Assert.Equal(["a.b"], pod.DnsConfig.Searches);
        Assert.Equal([new("ndots", "2"), new KeyValuePair<string, string?>("rotate", null)], pod.DnsConfig.Options);
        var c = pod.Containers[0];
        Assert.Equal("c", c.Name);
        Assert.Equal(["/agnhost"], c.Command);
        Assert.Equal(["serve-hostname", "--port", "80"], c.Args);
        Assert.True(c.HasReadinessProbe);
        Assert.False(pod.Containers[1].HasReadinessProbe);
        Assert.Equal("serve-80-tcp", c.Ports[0].Name);
        Assert.Equal(80, c.Ports[0].ContainerPort);
        Assert.Equal("TCP", c.Ports[0].Protocol);
        Assert.Equal("SCTP", c.Ports[1].Protocol);
        Assert.Equal(8082, c.Ports[1].HostPort);
        Assert.Equal("Running", pod.Phase);
        Assert.Equal("10.244.1.5", pod.PodIP);
        Assert.Equal(["10.244.1.5", "fd00::5"], pod.PodIPs);
        Assert.Equal("172.30.0.11", pod.HostIP);
        Assert.True(pod.IsReady);
    }

    [Fact]
    public void Views_tolerate_missing_and_mistyped_fields()
    {
        var pod = View("apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: [x]}\nspec: {containers: {}}\nstatus: 3\n", j => new PodView(j));
        Assert.Empty(pod.Containers);
        Assert.Empty(pod.Metadata.Labels);
        Assert.Empty(pod.PodIPs);
        Assert.False(pod.IsReady);
        Assert.Null(pod.Phase);
        Assert.Null(pod.DnsConfig);
        var svc = View("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: x}, 3]}\n", j => new ServiceView(j));
        var port = Assert.Single(svc.Ports);
        Assert.Equal(0, port.Port);
        Assert.Null(port.NodePort);
    }

    [Fact]
    public void Service_view_reads_what_the_proxy_needs()
    {
        var svc = View("""
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              labels: {service.kubernetes.io/service-proxy-name: other}
            spec:
              type: LoadBalancer
              clusterIP: 10.96.0.20
              selector: {app: web}
              externalIPs: [172.30.0.9]
              sessionAffinity: ClientIP
              externalTrafficPolicy: Local
              loadBalancerSourceRanges: [10.0.0.0/8]
              publishNotReadyAddresses: true
              healthCheckNodePort: 32000
              ports:
              - {name: http, port: 80, targetPort: http, nodePort: 30080}
              - {name: dns, port: 53, protocol: UDP}
            status:
              loadBalancer:
                ingress: [{ip: 172.30.0.200}]
            """, j => new ServiceView(j));
        Assert.Equal("LoadBalancer", svc.Type);
        Assert.Equal("10.96.0.20", svc.ClusterIP);
        Assert.Equal(["10.96.0.20"], svc.ClusterIPs);
        Assert.False(svc.IsHeadless);
        Assert.True(svc.HasSelector);
        Assert.Equal("web", svc.Selector["app"]);
        Assert.Equal(["172.30.0.9"], svc.ExternalIPs);
        Assert.Equal("ClientIP", svc.SessionAffinity);
        Assert.Equal(10800, svc.SessionAffinityTimeoutSeconds);
        Assert.Equal("Local", svc.ExternalTrafficPolicy);
        Assert.Equal("Cluster", svc.InternalTrafficPolicy);
        Assert.Equal(["10.0.0.0/8"], svc.LoadBalancerSourceRanges);
        Assert.True(svc.PublishNotReadyAddresses);
        Assert.Equal(32000, svc.HealthCheckNodePort);
        Assert.Equal("other", svc.ServiceProxyName);
        Assert.True(svc.IsExternallyAccessible);
        Assert.Equal(IntOrString.FromString("http"), svc.Ports[0].TargetPort);
        Assert.Equal(30080, svc.Ports[0].NodePort);
        Assert.Equal(IntOrString.FromInt(53), svc.Ports[1].TargetPort);
        Assert.Equal("UDP", svc.Ports[1].Protocol);
        Assert.Equal([new LoadBalancerIngress("172.30.0.200", null, "VIP")], svc.LoadBalancerIngress);
        var headless = View("apiVersion: v1\nkind: Service\nmetadata: {name: h}\nspec: {clusterIP: None}\n", j => new ServiceView(j));
        Assert.True(headless.IsHeadless);
        Assert.False(headless.HasSelector);
        Assert.Null(headless.SessionAffinityTimeoutSeconds);
    }

    [Fact]
    public void EndpointSlice_view_reads_conditions_and_refs()
    {
        var slice = View("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, namespace: d, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            endpoints:
            - addresses: [10.244.1.5]
              conditions: {ready: true, serving: true, terminating: false}
              nodeName: node-1
              hostname: web-0
              zone: z1
              targetRef: {kind: Pod, namespace: d, name: web-0, uid: u}
            - addresses: [10.244.2.5]
            ports:
            - {name: http, port: 8080}
            - {port: 53, protocol: UDP}
            """, j => new EndpointSliceView(j));
        Assert.Equal("web", slice.ServiceName);
        Assert.Equal("IPv4", slice.AddressType);
        var e = slice.Endpoints[0];
        Assert.Equal(["10.244.1.5"], e.Addresses);
        Assert.True(e.Ready);
        Assert.True(e.Serving);
        Assert.False(e.Terminating);
        Assert.Equal("node-1", e.NodeName);
        Assert.Equal("web-0", e.Hostname);
        Assert.Equal("z1", e.Zone);
        Assert.Equal(new ObjectReference("Pod", "d", "web-0", "u"), e.TargetRef);
        Assert.Null(slice.Endpoints[1].Ready);
        Assert.Null(slice.Endpoints[1].TargetRef);
        Assert.Equal("http", slice.Ports[0].Name);
        Assert.Equal(8080, slice.Ports[0].Port);
        Assert.Equal("", slice.Ports[1].Name);
        Assert.Equal("UDP", slice.Ports[1].Protocol);
    }

    [Fact]
    public void NetworkPolicy_view_reads_rules_peers_and_ports()
    {
        var np = View(File.ReadAllText(Golden.Dir("cases", "netpol-ns-and-pod-selector", "input.yaml")), j => new NetworkPolicyView(j));
        Assert.Equal("pod=a", np.PodSelector.ToString());
        Assert.Equal(["Ingress", "Egress"], np.PolicyTypes);
        Assert.True(np.AffectsIngress);
        Assert.True(np.AffectsEgress);
        var rule = Assert.Single(np.Ingress);
        Assert.True(rule.HasPeers);
        var peer = Assert.Single(rule.Peers);
        Assert.Equal("ns notin (x)", peer.NamespaceSelector!.ToString());
        Assert.Equal("pod in (b,c)", peer.PodSelector!.ToString());
        Assert.Null(peer.IpBlock);
        Assert.Equal(
            [new NetworkPolicyPort("TCP", IntOrString.FromString("serve-80-tcp"), null), new NetworkPolicyPort("UDP", IntOrString.FromInt(81), null), new NetworkPolicyPort("SCTP", IntOrString.FromInt(82), null)],
            rule.Ports);
        Assert.Equal(2, np.Egress.Count);
        Assert.False(np.Egress[0].HasPorts);
        Assert.False(np.Egress[1].HasPeers);

        var ipb = View(File.ReadAllText(Golden.Dir("cases", "netpol-ipblock-except", "input.yaml")), j => new NetworkPolicyView(j));
        var block = ipb.Ingress[0].Peers[0].IpBlock!;
        Assert.Equal("172.17.0.0/16", block.Cidr);
        Assert.Equal(["172.17.1.0/24"], block.Except);
        var range = View(File.ReadAllText(Golden.Dir("cases", "netpol-endport", "input.yaml")), j => new NetworkPolicyView(j));
        Assert.Equal(new NetworkPolicyPort("TCP", IntOrString.FromInt(32000), 32768), range.Egress[0].Ports[0]);
        Assert.Equal(["Egress"], range.PolicyTypes);
        Assert.False(range.AffectsIngress);
        Assert.True(new NetworkPolicyView(new System.Text.Json.Nodes.JsonObject()).PodSelector.IsEverything);
    }

    [Fact]
    public void Node_view_reads_addresses_cidrs_conditions_and_roles()
    {
        var node = new NodeView(Assert.Single(Manifests.Parse("""
            apiVersion: v1
            kind: Node
            metadata:
              name: node-1
              labels: {node-role.kubernetes.io/control-plane: "", node-role.kubernetes.io/worker: "", kubernetes.io/role: edge}
              annotations: {flannel.alpha.coreos.com/public-ip: 172.30.0.11}
            spec: {podCIDR: 10.244.1.0/24, unschedulable: true}
            status:
              addresses: [{type: Hostname, address: node-1}, {type: InternalIP, address: 172.30.0.11}]
              conditions: [{type: Ready, status: "False", reason: KubeletNotReady}]
              nodeInfo: {kubeletVersion: v1.31.0}
            """, "n.yaml")));
        Assert.Equal("172.30.0.11", node.InternalIP);
        Assert.Equal(["10.244.1.0/24"], node.PodCIDRs);
        Assert.False(node.IsReady);
        Assert.Equal("KubeletNotReady", node.Conditions[0].Reason);
        Assert.True(node.Unschedulable);
        Assert.Equal("v1.31.0", node.KubeletVersion);
        Assert.Equal("172.30.0.11", node.Annotations["flannel.alpha.coreos.com/public-ip"]);
        Assert.Equal(["control-plane", "edge", "worker"], node.Roles);
    }

    [Fact]
    public void IntOrString_keeps_quoted_numbers_as_names()
    {
        Assert.Equal(IntOrString.FromInt(80), IntOrString.FromJson(80));
        Assert.Equal(IntOrString.FromString("80"), IntOrString.FromJson("80"));
        Assert.Null(IntOrString.FromJson(true));
        Assert.Null(IntOrString.FromJson(1.5));
        Assert.Equal("80", IntOrString.FromJson("80")!.Value.ToString());
        Assert.Equal("\"http\"", IntOrString.FromString("http").ToJson().ToJsonString());
    }
}
