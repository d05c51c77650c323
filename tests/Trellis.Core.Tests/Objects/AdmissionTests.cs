using CsCheck;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Objects;

/// <summary>ObjectDefaults.ForCreate/ForUpdate and ObjectValidator.ValidateUpdate: what apply does to an existing object.</summary>
public class AdmissionTests
{
    private static readonly DateTimeOffset s_t0 = Golden.CreatedAt;

    private static JsonObject Parse(string yaml) => Assert.Single(Manifests.Parse(yaml, "t.yaml"));

    private static JsonObject Create(string yaml, string uid = "uid-1") => ObjectDefaults.ForCreate(Parse(yaml), uid, s_t0);

    private const string PodYaml = """
        apiVersion: v1
        kind: Pod
        metadata: {name: web, labels: {app: web}}
        spec:
          containers:
          - name: c
            image: agnhost
            ports: [{containerPort: 80}]
        """;

    private const string NodePortYaml = """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: demo}
        spec:
          type: NodePort
          selector: {app: web}
          ports:
          - {name: http, port: 80}
          - {name: https, port: 443}
        """;

    [Fact]
    public void Defaulting_never_changes_its_input()
    {
        var manifest = Parse(NodePortYaml);
        string before = manifest.ToJsonString();
        ObjectDefaults.ForCreate(manifest, "u", s_t0);
        ObjectDefaults.WithDefaults(manifest);
        ObjectDefaults.ForUpdate(Create(NodePortYaml), manifest);
        Assert.Equal(before, manifest.ToJsonString());
    }

    [Fact]
    public void Defaulting_is_idempotent()
    {
        foreach (var dir in Directory.GetDirectories(Golden.Dir("cases")).Where(d => File.Exists(Path.Combine(d, "expected.json"))))
        {
            foreach (var obj in Manifests.Parse(File.ReadAllText(Path.Combine(dir, "input.yaml")), dir))
            {
                var once = ObjectDefaults.ForCreate(obj, "u", s_t0);
                var twice = ObjectDefaults.ForCreate(once, "u", s_t0);
                Assert.Equal(once.ToJsonString(), twice.ToJsonString());
            }
        }
    }

    [Fact]
    public void Create_uses_the_callers_namespace_uid_and_time()
    {
        var obj = ObjectDefaults.ForCreate(Parse(PodYaml), "abc", new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.FromHours(2)), defaultNamespace: "team");
        var meta = new PodView(obj).Metadata;
        Assert.Equal("team", meta.Namespace);
        Assert.Equal("abc", meta.Uid);
        Assert.Equal("2025-06-01T10:00:00Z", obj["metadata"]!["creationTimestamp"]!.GetValue<string>());
        Assert.Equal(["name", "namespace", "labels", "uid", "creationTimestamp"], obj["metadata"]!.AsObject().Select(p => p.Key));
        Assert.Equal("""{"phase":"Pending"}""", obj["status"]!.ToJsonString());
    }

    [Fact]
    public void Update_keeps_identity_status_and_the_scheduled_node()
    {
        var stored = Create(PodYaml);
        stored["spec"]!["nodeName"] = "node-2";
        stored["status"] = JsonNode.Parse("""{"phase":"Running","podIP":"10.244.2.7"}""");
        var manifest = Parse(PodYaml.Replace("app: web", "app: web, tier: front", StringComparison.Ordinal));
        var updated = ObjectDefaults.ForUpdate(stored, manifest);
        Assert.Empty(ObjectValidator.ValidateUpdate(stored, updated));
        var pod = new PodView(updated);
        Assert.Equal("uid-1", pod.Metadata.Uid);
        Assert.Equal(s_t0, pod.Metadata.CreationTimestamp);
        Assert.Equal("front", pod.Metadata.Labels["tier"]);
        Assert.Equal("node-2", pod.NodeName);
        Assert.Equal("10.244.2.7", pod.PodIP);
    }

    [Fact]
    public void A_pod_spec_change_is_refused_naming_the_first_difference()
    {
        var stored = Create(PodYaml);
        var updated = ObjectDefaults.ForUpdate(stored, Parse(PodYaml.Replace("containerPort: 80", "containerPort: 8080", StringComparison.Ordinal)));
        var error = Assert.Single(ObjectValidator.ValidateUpdate(stored, updated));
        Assert.Equal("spec: Forbidden: pod updates may not change the spec (first difference: spec.containers[0].ports[0].containerPort)", error.ToString());

        updated = ObjectDefaults.ForUpdate(stored, Parse(PodYaml + "\n  - {name: d, image: x}\n"));
        Assert.Equal("spec: Forbidden: pod updates may not change the spec (first difference: spec.containers[1])", Assert.Single(ObjectValidator.ValidateUpdate(stored, updated)).ToString());

        updated = ObjectDefaults.ForUpdate(stored, Parse(PodYaml + "\n  hostNetwork: true\n"));
        Assert.Contains("first difference: spec.", Assert.Single(ObjectValidator.ValidateUpdate(stored, updated)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Identity_fields_are_immutable()
    {
        var stored = Create(PodYaml);
        var manifest = Parse(PodYaml);
        manifest["metadata"]!["uid"] = "other";
        var updated = ObjectDefaults.ForUpdate(stored, manifest);
        Assert.Equal(["metadata.uid: Invalid value: \"other\": field is immutable"], ObjectValidator.ValidateUpdate(stored, updated).Select(e => e.ToString()));

        var moved = ObjectDefaults.ForUpdate(stored, Parse(PodYaml), defaultNamespace: "elsewhere");
        Assert.Contains("metadata.namespace: Invalid value: \"elsewhere\": field is immutable", ObjectValidator.ValidateUpdate(stored, moved).Select(e => e.ToString()));

        var renamed = ObjectDefaults.ForUpdate(stored, Parse(PodYaml.Replace("name: web", "name: web2", StringComparison.Ordinal)));
        Assert.Contains("metadata.name: Invalid value: \"web2\": field is immutable", ObjectValidator.ValidateUpdate(stored, renamed).Select(e => e.ToString()));
    }

    [Fact]
    public void Service_update_keeps_allocated_cluster_ip_and_node_ports()
    {
        var stored = Create(NodePortYaml);
        stored["spec"]!["clusterIP"] = "10.96.0.42";
        stored["spec"]!["clusterIPs"] = new JsonArray("10.96.0.42");
        stored["spec"]!["ports"]![0]!["nodePort"] = 30001;
        stored["spec"]!["ports"]![1]!["nodePort"] = 30002;
        var manifest = Parse(NodePortYaml.Replace("{name: https, port: 443}", "{name: https, port: 8443}", StringComparison.Ordinal));
        var updated = ObjectDefaults.ForUpdate(stored, manifest);
        Assert.Empty(ObjectValidator.ValidateUpdate(stored, updated));
        var svc = new ServiceView(updated);
        Assert.Equal("10.96.0.42", svc.ClusterIP);
        Assert.Equal(["10.96.0.42"], svc.ClusterIPs);
        Assert.Equal([30001, 30002], svc.Ports.Select(p => p.NodePort));
        Assert.Equal(8443, svc.Ports[1].Port);
    }

    [Fact]
    public void Service_node_ports_are_not_reused_for_another_port()
    {
        var stored = Create(NodePortYaml);
        stored["spec"]!["ports"]![0]!["nodePort"] = 30001;
        stored["spec"]!["ports"]![1]!["nodePort"] = 30002;
        // The manifest gives https the node port http had: http must not get it back as well.
        var manifest = Parse(NodePortYaml.Replace("{name: https, port: 443}", "{name: https, port: 443, nodePort: 30001}", StringComparison.Ordinal));
        var svc = new ServiceView(ObjectDefaults.ForUpdate(stored, manifest));
        Assert.Equal([null, 30001], svc.Ports.Select(p => p.NodePort));
    }

    [Fact]
    public void Service_cluster_ip_is_immutable_once_set_except_across_ExternalName()
    {
        var stored = Create(NodePortYaml);
        stored["spec"]!["clusterIP"] = "10.96.0.42";
        stored["spec"]!["clusterIPs"] = new JsonArray("10.96.0.42");
        var manifest = Parse(NodePortYaml.Replace("type: NodePort", "type: NodePort\n  clusterIP: 10.96.0.43", StringComparison.Ordinal));
        var updated = ObjectDefaults.ForUpdate(stored, manifest);
        Assert.Contains("spec.clusterIP: Invalid value: \"10.96.0.43\": field is immutable", ObjectValidator.ValidateUpdate(stored, updated).Select(e => e.ToString()));

        var toExternal = ObjectDefaults.ForUpdate(stored, Parse("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec: {type: ExternalName, externalName: example.com}\n"));
        Assert.Empty(ObjectValidator.ValidateUpdate(stored, toExternal));
        Assert.Null(new ServiceView(toExternal).ClusterIP);
    }

    [Fact]
    public void Service_status_comes_from_the_manifest_other_kinds_keep_theirs()
    {
        var lb = Parse("apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\nstatus: {loadBalancer: {ingress: [{ip: 172.30.0.200}]}}\n");
        var stored = ObjectDefaults.ForCreate(lb, "u", s_t0);
        Assert.Equal("""{"loadBalancer":{"ingress":[{"ip":"172.30.0.200","ipMode":"VIP"}]}}""", stored["status"]!.ToJsonString());
        lb.Remove("status");
        // A re-apply that does not mention status keeps the ingress (an address from the pool must not be lost)…
        Assert.Equal(stored["status"]!.ToJsonString(), ObjectDefaults.ForUpdate(stored, lb)["status"]!.ToJsonString());
        // …until the Service stops being a LoadBalancer.
        var clusterIP = Parse("apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: ClusterIP, ports: [{port: 80}]}\n");
        Assert.Null(ObjectDefaults.ForUpdate(stored, clusterIP)["status"]);

        var ns = Create("apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\nstatus: {phase: Terminating}\n");
        Assert.Equal("Active", new NamespaceView(ns).Phase);
        ns["status"]!["phase"] = "Terminating";
        Assert.Equal("Terminating", new NamespaceView(ObjectDefaults.ForUpdate(ns, Parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n"))).Phase);
    }

    [Fact]
    public void EndpointSlice_address_type_and_node_pod_cidr_are_immutable()
    {
        const string slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4\nendpoints: []\n";
        var stored = Create(slice);
        var updated = ObjectDefaults.ForUpdate(stored, Parse(slice.Replace("IPv4", "IPv6", StringComparison.Ordinal)));
        Assert.Equal(["addressType: Invalid value: \"IPv6\": field is immutable"], ObjectValidator.ValidateUpdate(stored, updated).Select(e => e.ToString()));

        const string node = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec: {podCIDR: 10.244.1.0/24}\n";
        var storedNode = Create(node);
        var keep = ObjectDefaults.ForUpdate(storedNode, Parse("apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {a: b}}\n"));
        Assert.Equal(["10.244.1.0/24"], new NodeView(keep).PodCIDRs);
        Assert.Empty(ObjectValidator.ValidateUpdate(storedNode, keep));
        var change = ObjectDefaults.ForUpdate(storedNode, Parse(node.Replace("10.244.1.0", "10.244.9.0", StringComparison.Ordinal)));
        Assert.Equal(["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"], ObjectValidator.ValidateUpdate(storedNode, change).Select(e => e.ToString()));
    }

    [Fact]
    public void Annotations_may_total_at_most_256_KiB()
    {
        var ns = Create("apiVersion: v1\nkind: Namespace\nmetadata: {name: big}\n");
        ns["metadata"]!["annotations"] = new JsonObject { ["a"] = new string('x', (256 * 1024) - 1) };
        Assert.Empty(ObjectValidator.Validate(ns));
        ns["metadata"]!["annotations"] = new JsonObject { ["ab"] = new string('x', (256 * 1024) - 1) };
        Assert.Equal(["metadata.annotations: Too long: may not be more than 262144 bytes"], ObjectValidator.Validate(ns).Select(e => e.ToString()));
    }

    [Fact]
    public void Validation_never_throws_on_arbitrary_json_shapes()
    {
        var values = Gen.OneOf<JsonNode?>(null, 0, -1, 70000, 1.5, true, "", "x", "TCP", "None", "10.0.0.1", "10.0.0.0/8", "Ingress", new JsonArray(), new JsonObject(), new JsonArray(1, "a"));
        var paths = Gen.OneOf(
            "spec", "spec.containers", "spec.containers[0]", "spec.containers[0].ports", "spec.containers[0].ports[0]", "spec.containers[0].ports[0].containerPort",
            "spec.containers[0].readinessProbe", "spec.dnsConfig", "spec.dnsConfig.nameservers", "spec.ports", "spec.ports[0].targetPort", "spec.ports[0].nodePort",
            "spec.type", "spec.clusterIP", "spec.clusterIPs", "spec.sessionAffinityConfig", "spec.podSelector", "spec.podSelector.matchExpressions",
            "spec.ingress", "spec.ingress[0].from", "spec.ingress[0].from[0].ipBlock", "spec.ingress[0].ports[0].endPort", "spec.egress",
            "endpoints", "endpoints[0].addresses", "ports", "addressType", "metadata", "metadata.labels", "metadata.annotations", "metadata.name", "status", "status.loadBalancer.ingress");
        var kinds = Gen.OneOf(Kinds.All.ToArray());
        Gen.Select(kinds, Gen.Select(paths, values).Array[1, 6]).Sample((kind, edits) =>
        {
            var obj = new JsonObject { ["apiVersion"] = kind.ApiVersion, ["kind"] = kind.Kind, ["metadata"] = new JsonObject { ["name"] = "n" } };
            foreach (var (path, value) in edits)
            {
                Set(obj, path, value?.DeepClone());
            }
            var defaulted = ObjectDefaults.ForCreate(obj, "u", s_t0);
            _ = ObjectValidator.Validate(defaulted);
            _ = ObjectValidator.ValidateUpdate(defaulted, ObjectDefaults.ForUpdate(defaulted, obj));
            _ = TablePrinter.Print(kind, [defaulted], s_t0, wide: true, allNamespaces: true);
            _ = ObjectPrinter.ToYaml(defaulted);
        }, iter: 3000);
    }

    // Sets a value at "a.b[0].c", creating objects and arrays on the way; a non-container in the way is replaced.
    private static void Set(JsonObject root, string path, JsonNode? value)
    {
        var parts = path.Replace("[", ".[", StringComparison.Ordinal).Split('.');
        JsonNode current = root;
        for (int i = 0; i < parts.Length; i++)
        {
            bool last = i == parts.Length - 1;
            bool nextIsIndex = !last && parts[i + 1].StartsWith('[');
            JsonNode? Make() => last ? value : nextIsIndex ? new JsonArray() : new JsonObject();
            if (parts[i].StartsWith('['))
            {
                if (current is not JsonArray arr)
                {
                    return;
                }
                if (arr.Count == 0)
                {
                    arr.Add(Make());
                }
                else if (last || arr[0] is not (JsonObject or JsonArray))
                {
                    arr[0] = Make();
                }
                if (!last)
                {
                    current = arr[0]!;
                }
            }
            else
            {
                if (current is not JsonObject obj)
                {
                    return;
                }
                if (last || obj[parts[i]] is not (JsonObject or JsonArray))
                {
                    obj[parts[i]] = Make();
                }
                if (!last)
                {
                    current = obj[parts[i]]!;
                }
            }
        }
    }
}
