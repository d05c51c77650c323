using System.Text.Json.Nodes;
using Trellis.Core.Endpoints;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Endpoints;

public class EndpointSliceBuilderTests
{
    /// <summary>A JSON template with @0@, @1@, … holes (interpolated raw strings cannot hold JSON's closing braces next to a hole).</summary>
    internal static string J(string template, params string?[] values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            template = template.Replace($"@{i}@", values[i], StringComparison.Ordinal);
        }
        return template;
    }

    internal static ServiceView Svc(string ports = """[{"name":"http","port":80,"targetPort":8080}]""", string selector = """{"app":"web"}""",
        string extraSpec = "", string name = "web", string uid = "svc-uid", string labels = "{}") =>
        new((JsonObject)JsonNode.Parse(J("""
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"@0@","namespace":"demo","uid":"@1@","labels":@2@ },
             "spec":{"clusterIP":"10.96.0.20","selector":@3@,"ports":@4@@5@ }}
            """, name, uid, labels, selector, ports, extraSpec))!);

    internal static PodView Pod(string name, string? ip = "10.244.1.5", bool ready = true, string node = "node-1",
        string ports = "[]", string labels = """{"app":"web"}""", string extraMeta = "", string extraSpec = "", string phase = "Running", string ns = "demo")
    {
        string ipPart = ip is null ? "" : J(""","podIP":"@0@","podIPs":[{"ip":"@1@"}]""", ip, ip);
        return new((JsonObject)JsonNode.Parse(J("""
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"@0@","namespace":"@1@","uid":"uid-@2@","labels":@3@@4@ },
             "spec":{"nodeName":"@5@","containers":[{"name":"c","image":"x","ports":@6@ }]@7@ },
             "status":{"phase":"@8@"@9@,"conditions":[{"type":"Ready","status":"@10@"}]}}
            """, name, ns, name, labels, extraMeta, node, ports, extraSpec, phase, ipPart, ready ? "True" : "False"))!);
    }

    internal static NodeView Node(string name, bool ready = true, string ip = "172.30.0.11", string labels = "{}") =>
        new((JsonObject)JsonNode.Parse(J("""
            {"apiVersion":"v1","kind":"Node","metadata":{"name":"@0@","labels":@1@ },
             "status":{"conditions":[{"type":"Ready","status":"@2@"}],"addresses":[{"type":"InternalIP","address":"@3@"}]}}
            """, name, labels, ready ? "True" : "False", ip))!);

    private static readonly NodeView[] s_nodes = [Node("node-1"), Node("node-2", ip: "172.30.0.12")];

    private static Func<string> Names()
    {
        int i = 0;
        return () => $"web-n{i++:D4}";
    }

    private static EndpointSlicePlan Plan(ServiceView svc, IEnumerable<PodView> pods, IEnumerable<EndpointSliceView>? existing = null, IEnumerable<NodeView>? nodes = null) =>
        EndpointSliceBuilder.Plan(svc, pods, nodes ?? s_nodes, existing ?? [], Names());

    /// <summary>Applies a plan to a set of slices as the store would (creates get no uid here; updates replace by name).</summary>
    internal static List<EndpointSliceView> Apply(IEnumerable<EndpointSliceView> existing, EndpointSlicePlan plan)
    {
        var byName = existing.ToDictionary(s => s.Name);
        foreach (var d in plan.Delete)
        {
            Assert.True(byName.Remove(d.Name), $"deleting {d.Name}, which does not exist");
        }
        foreach (var u in plan.Update)
        {
            var v = new EndpointSliceView(u);
            Assert.True(byName.ContainsKey(v.Name), $"updating {v.Name}, which does not exist");
            byName[v.Name] = v;
        }
        foreach (var c in plan.Create)
        {
            var v = new EndpointSliceView(c);
            Assert.True(byName.TryAdd(v.Name, v), $"creating {v.Name}, which exists");
        }
        return [.. byName.Values.OrderBy(s => s.Name, StringComparer.Ordinal)];
    }

    private static EndpointSliceView Single(EndpointSlicePlan plan)
    {
        Assert.Empty(plan.Update);
        Assert.Empty(plan.Delete);
        return new EndpointSliceView(Assert.Single(plan.Create));
    }

    [Fact]
    public void One_ready_pod_gives_one_slice_with_upstream_labels_owner_ports_and_conditions()
    {
        var slice = Single(Plan(Svc(labels: """{"team":"a"}"""), [Pod("web-1")]));
        Assert.Equal("web-n0000", slice.Name);
        Assert.Equal("web-", slice.Json["metadata"]!["generateName"]!.GetValue<string>());
        Assert.Equal("demo", slice.Namespace);
        Assert.Equal("IPv4", slice.AddressType);
        Assert.Equal("web", slice.Metadata.Label("kubernetes.io/service-name"));
        Assert.Equal("endpointslice-controller.k8s.io", slice.Metadata.Label("endpointslice.kubernetes.io/managed-by"));
        Assert.Equal("a", slice.Metadata.Label("team"));
        Assert.Null(slice.Metadata.Label("service.kubernetes.io/headless"));
        var owner = slice.Json["metadata"]!["ownerReferences"]![0]!;
        Assert.Equal("Service", owner["kind"]!.GetValue<string>());
        Assert.Equal("svc-uid", owner["uid"]!.GetValue<string>());
        Assert.True(owner["controller"]!.GetValue<bool>());
        var port = Assert.Single(slice.Ports);
        Assert.Equal(("http", 8080, "TCP"), (port.Name, port.Port, port.Protocol));
        var e = Assert.Single(slice.Endpoints);
        Assert.Equal(["10.244.1.5"], e.Addresses);
        Assert.Equal((true, true, false), (e.Ready, e.Serving, e.Terminating));
        Assert.Equal("node-1", e.NodeName);
        Assert.Equal(new ObjectReference("Pod", "demo", "web-1", "uid-web-1"), e.TargetRef);
        Assert.Null(e.Hostname);
    }

    [Fact]
    public void Unready_pod_is_listed_not_ready_and_not_serving()
    {
        var e = Assert.Single(Single(Plan(Svc(), [Pod("web-1", ready: false)])).Endpoints);
        Assert.Equal((false, false, false), (e.Ready, e.Serving, e.Terminating));
    }

    [Theory]
    [InlineData(true, false, true, true)]   // ready pod being deleted: serving, terminating, never ready
    [InlineData(false, false, false, true)] // unready pod being deleted
    [InlineData(true, true, true, true)]    // publishNotReadyAddresses: ready stays true
    [InlineData(false, true, false, true)]
    public void Terminating_pods_stay_listed_with_upstream_conditions(bool podReady, bool publishNotReady, bool serving, bool ready_when_publish)
    {
        _ = ready_when_publish;
        var svc = Svc(extraSpec: publishNotReady ? ""","publishNotReadyAddresses":true""" : "");
        var pod = Pod("web-1", ready: podReady, extraMeta: ""","deletionTimestamp":"2025-01-01T00:00:00Z","deletionGracePeriodSeconds":30""");
        var e = Assert.Single(Single(Plan(svc, [pod])).Endpoints);
        Assert.Equal(publishNotReady, e.Ready);
        Assert.Equal(serving, e.Serving);
        Assert.True(e.Terminating);
    }

    [Fact]
    public void PublishNotReadyAddresses_makes_an_unready_pod_ready_but_not_serving()
    {
        var e = Assert.Single(Single(Plan(Svc(extraSpec: ""","publishNotReadyAddresses":true"""), [Pod("web-1", ready: false)])).Endpoints);
        Assert.Equal((true, false, false), (e.Ready, e.Serving, e.Terminating));
    }

    [Fact]
    public void Pods_without_ip_finished_pods_other_namespaces_and_unselected_pods_are_left_out()
    {
        var plan = Plan(Svc(), [
            Pod("no-ip", ip: null),
            Pod("done", phase: "Succeeded", ip: "10.244.1.6"),
            Pod("failed", phase: "Failed", ip: "10.244.1.7"),
            Pod("other-ns", ns: "prod", ip: "10.244.1.8"),
            Pod("other-app", labels: """{"app":"db"}""", ip: "10.244.1.9"),
            Pod("ipv6-only", ip: "fd00::5"),
            Pod("ok", ip: "10.244.1.10"),
        ]);
        var e = Assert.Single(Single(plan).Endpoints);
        Assert.Equal("ok", e.TargetRef!.Name);
    }

    [Fact]
    public void A_pod_on_an_unknown_node_is_left_out_unless_not_ready_addresses_are_published()
    {
        Assert.Empty(Single(Plan(Svc(), [Pod("web-1", node: "gone")])).Endpoints);
        var e = Assert.Single(Single(Plan(Svc(extraSpec: ""","publishNotReadyAddresses":true"""), [Pod("web-1", node: "gone")])).Endpoints);
        Assert.Equal("gone", e.NodeName);
    }

    [Fact]
    public void Named_target_port_is_resolved_per_pod_by_name_and_protocol()
    {
        var svc = Svc(ports: """[{"name":"http","port":80,"targetPort":"web"},{"name":"dns","port":53,"targetPort":"dns","protocol":"UDP"}]""");
        var a = Pod("a", ip: "10.244.1.5", ports: """[{"name":"web","containerPort":8080},{"name":"dns","containerPort":5353,"protocol":"UDP"}]""");
        var b = Pod("b", ip: "10.244.2.5", ports: """[{"name":"web","containerPort":9090},{"name":"dns","containerPort":5353,"protocol":"TCP"}]""");
        var plan = Plan(svc, [a, b]);
        Assert.Equal(2, plan.Create.Count);
        var slices = plan.Create.Select(c => new EndpointSliceView(c)).ToList();
        var sa = slices.Single(s => s.Endpoints.Single().TargetRef!.Name == "a");
        var sb = slices.Single(s => s.Endpoints.Single().TargetRef!.Name == "b");
        Assert.Equal(["http/8080/TCP", "dns/5353/UDP"], sa.Ports.Select(p => $"{p.Name}/{p.Port}/{p.Protocol}"));
        // b's "dns" container port is TCP, the Service port UDP: not resolved, so b's slice lacks it.
        Assert.Equal(["http/9090/TCP"], sb.Ports.Select(p => $"{p.Name}/{p.Port}/{p.Protocol}"));
    }

    [Fact]
    public void Pods_resolving_to_the_same_ports_share_a_slice()
    {
        var svc = Svc(ports: """[{"name":"http","port":80,"targetPort":"web"}]""");
        var ports = """[{"name":"web","containerPort":8080}]""";
        var slice = Single(Plan(svc, [Pod("a", ip: "10.244.1.5", ports: ports), Pod("b", ip: "10.244.2.5", ports: ports, node: "node-2")]));
        Assert.Equal(2, slice.Endpoints.Count);
    }

    [Fact]
    public void A_pod_that_resolves_no_port_gets_a_slice_without_ports()
    {
        var svc = Svc(ports: """[{"name":"http","port":80,"targetPort":"web"}]""");
        var plan = Plan(svc, [Pod("a", ip: "10.244.1.5", ports: """[{"name":"web","containerPort":8080}]"""), Pod("b", ip: "10.244.2.5")]);
        var slices = plan.Create.Select(c => new EndpointSliceView(c)).ToList();
        Assert.Equal(2, slices.Count);
        Assert.Empty(slices.Single(s => s.Endpoints.Single().TargetRef!.Name == "b").Ports);
    }

    [Fact]
    public void Omitted_target_port_means_the_service_port_and_app_protocol_is_copied()
    {
        var slice = Single(Plan(Svc(ports: """[{"port":80,"appProtocol":"http"}]"""), [Pod("a")]));
        var p = Assert.Single(slice.Ports);
        Assert.Equal(("", 80, "http"), (p.Name, p.Port, p.AppProtocol));
    }

    [Fact]
    public void Hostname_is_set_only_when_the_pod_subdomain_is_the_service()
    {
        var plan = Plan(Svc(), [
            Pod("a", ip: "10.244.1.5", extraSpec: ""","hostname":"alpha","subdomain":"web" """),
            Pod("b", ip: "10.244.1.6", extraSpec: ""","hostname":"beta","subdomain":"other" """),
            Pod("c", ip: "10.244.1.7", extraSpec: ""","subdomain":"web" """),
        ]);
        var eps = Single(plan).Endpoints.ToDictionary(e => e.TargetRef!.Name!);
        Assert.Equal("alpha", eps["a"].Hostname);
        Assert.Null(eps["b"].Hostname);
        Assert.Null(eps["c"].Hostname);
    }

    [Fact]
    public void Zone_comes_from_the_node_label()
    {
        var e = Assert.Single(Single(Plan(Svc(), [Pod("a")], nodes: [Node("node-1", labels: """{"topology.kubernetes.io/zone":"z1"}""")])).Endpoints);
        Assert.Equal("z1", e.Zone);
    }

    [Fact]
    public void Headless_services_get_the_headless_label()
    {
        var svc = new ServiceView((JsonObject)JsonNode.Parse("""
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"demo","uid":"u"},"spec":{"clusterIP":"None","selector":{"app":"web"}} }
            """)!);
        var slice = Single(Plan(svc, [Pod("a")]));
        Assert.Equal("", slice.Metadata.Label("service.kubernetes.io/headless"));
        Assert.Empty(slice.Ports);
        Assert.Single(slice.Endpoints);
    }

    [Fact]
    public void More_than_100_endpoints_are_split_into_slices_of_at_most_100()
    {
        var pods = Enumerable.Range(0, 250).Select(i => Pod($"p{i:D3}", ip: $"10.244.{1 + i / 200}.{1 + i % 200}")).ToList();
        var plan = Plan(Svc(), pods);
        Assert.Equal([100, 100, 50], plan.Create.Select(c => new EndpointSliceView(c).Endpoints.Count));
        var all = plan.Create.SelectMany(c => new EndpointSliceView(c).Endpoints).Select(e => e.TargetRef!.Name).ToList();
        Assert.Equal(250, all.Distinct().Count());
    }

    [Fact]
    public void Selector_less_services_get_nothing_and_leave_user_slices_alone()
    {
        var svc = Svc(selector: "{}");
        var user = Slice("web-manual", managed: false);
        var plan = Plan(svc, [Pod("a")], [user]);
        Assert.True(plan.IsEmpty);
    }

    [Fact]
    public void A_service_that_lost_its_selector_has_its_managed_slices_deleted()
    {
        var managed = new EndpointSliceView(Single(Plan(Svc(), [Pod("a")])).Json);
        var plan = Plan(Svc(selector: "{}"), [Pod("a")], [managed, Slice("web-manual", managed: false)]);
        Assert.Equal(["web-n0000"], plan.Delete.Select(d => d.Name));
        Assert.Empty(plan.Create);
        Assert.Equal(["web-n0000"], EndpointSliceBuilder.Orphans([managed, Slice("web-manual", managed: false)], (ns, n) => Svc(selector: "{}")).Select(s => s.Name));
        Assert.Equal(["web-n0000"], EndpointSliceBuilder.Orphans([managed], (ns, n) => null).Select(s => s.Name));
        Assert.Empty(EndpointSliceBuilder.Orphans([managed], (ns, n) => Svc()));
    }

    [Fact]
    public void No_pods_gives_one_empty_placeholder_and_it_is_kept()
    {
        var slice = Single(Plan(Svc(), []));
        Assert.Empty(slice.Endpoints);
        Assert.Empty(slice.Ports);
        Assert.True(Plan(Svc(), [], [slice]).IsEmpty);
        // A pod arriving reuses the placeholder's name.
        var plan = Plan(Svc(), [Pod("a")], [slice]);
        Assert.Empty(plan.Create);
        var updated = new EndpointSliceView(Assert.Single(plan.Update));
        Assert.Equal(slice.Name, updated.Name);
        Assert.Single(updated.Endpoints);
    }

    [Fact]
    public void Reconciling_again_changes_nothing_and_names_are_reused()
    {
        var svc = Svc();
        var pods = Enumerable.Range(0, 150).Select(i => Pod($"p{i:D3}", ip: $"10.244.1.{1 + i}")).ToList();
        var slices = Apply([], Plan(svc, pods));
        Assert.True(Plan(svc, pods, slices).IsEmpty);
        // One pod turns unready: exactly one slice is rewritten, under its old name.
        pods[7] = Pod("p007", ip: "10.244.1.8", ready: false);
        var plan = Plan(svc, pods, slices);
        Assert.Empty(plan.Create);
        Assert.Empty(plan.Delete);
        var u = new EndpointSliceView(Assert.Single(plan.Update));
        Assert.Contains(slices, s => s.Name == u.Name);
        Assert.False(u.Endpoints.Single(e => e.TargetRef!.Name == "p007").Ready);
        Assert.Equal(slices.Single(s => s.Name == u.Name).Json["metadata"]!["resourceVersion"]?.ToString(), u.Json["metadata"]!["resourceVersion"]?.ToString());
    }

    [Fact]
    public void New_endpoints_fill_existing_slices_before_new_ones_are_made_and_empty_slices_go()
    {
        var svc = Svc();
        var pods = Enumerable.Range(0, 150).Select(i => Pod($"p{i:D3}", ip: $"10.244.1.{1 + i}")).ToList();
        var slices = Apply([], Plan(svc, pods));
        Assert.Equal(2, slices.Count);
        pods.Add(Pod("zzz", ip: "10.244.2.1"));
        var plan = Plan(svc, pods, slices);
        Assert.Empty(plan.Create);
        slices = Apply(slices, plan);
        Assert.Equal([100, 51], slices.Select(s => s.Endpoints.Count).OrderDescending());
        // All pods of the second slice go away: that slice is deleted, the first untouched.
        var second = slices.Single(s => s.Endpoints.Count == 51).Endpoints.Select(e => e.TargetRef!.Name).ToHashSet();
        plan = Plan(svc, pods.Where(p => !second.Contains(p.Name)), slices);
        Assert.Single(plan.Delete);
        Assert.Empty(plan.Update);
        Assert.Empty(plan.Create);
    }

    [Fact]
    public void A_hand_edited_managed_slice_is_repaired_and_a_foreign_managed_slice_deleted()
    {
        var svc = Svc();
        var slice = Single(Plan(svc, [Pod("a")]));
        var edited = (JsonObject)slice.Json.DeepClone();
        edited["endpoints"]![0]!["conditions"]!["ready"] = false;
        edited["metadata"]!["labels"]!["kubernetes.io/service-name"] = "web";
        var u = new EndpointSliceView(Assert.Single(Plan(svc, [Pod("a")], [new EndpointSliceView(edited)]).Update));
        Assert.True(u.Endpoints.Single().Ready);

        // Left behind by an earlier Service of the same name (another uid): replaced.
        var plan = Plan(Svc(uid: "new-uid"), [Pod("a")], [slice]);
        Assert.Equal([slice.Name], plan.Delete.Select(d => d.Name));
        Assert.Single(plan.Create);
        Assert.NotEqual(slice.Name, new EndpointSliceView(plan.Create[0]).Name);
    }

    [Fact]
    public void Changing_the_port_set_rewrites_the_slice_under_its_old_name()
    {
        var slices = Apply([], Plan(Svc(), [Pod("a")]));
        var plan = Plan(Svc(ports: """[{"name":"http","port":80,"targetPort":9090}]"""), [Pod("a")], slices);
        Assert.Empty(plan.Delete);
        Assert.Empty(plan.Create);
        var u = new EndpointSliceView(Assert.Single(plan.Update));
        Assert.Equal(slices[0].Name, u.Name);
        Assert.Equal(9090, u.Ports.Single().Port);
        Assert.Single(u.Endpoints);
    }

    [Fact]
    public void Generated_names_follow_generate_name()
    {
        var rnd = new Random(1);
        string n = EndpointSliceBuilder.GenerateName("web", rnd);
        Assert.Matches("^web-[bcdfghjklmnpqrstvwxz2456789]{5}$", n);
        string longName = EndpointSliceBuilder.GenerateName(new string('a', 63), rnd);
        Assert.Equal(63, longName.Length);
        Assert.StartsWith(new string('a', 58), longName, StringComparison.Ordinal);
    }

    [Fact]
    public void Name_collisions_with_existing_slices_are_skipped()
    {
        var user = Slice("web-n0000", managed: false);
        var plan = Plan(Svc(), [Pod("a")], [user]);
        Assert.Equal("web-n0001", new EndpointSliceView(Assert.Single(plan.Create)).Name);
    }

    internal static EndpointSliceView Slice(string name, bool managed, string service = "web") =>
        new((JsonObject)JsonNode.Parse(J("""
            {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"@0@","namespace":"demo",
              "labels":{"kubernetes.io/service-name":"@1@"@2@ }},
             "addressType":"IPv4","endpoints":[{"addresses":["10.1.2.3"]}],"ports":[{"name":"http","port":80}]}
            """, name, service, managed ? ",\"endpointslice.kubernetes.io/managed-by\":\"endpointslice-controller.k8s.io\"" : ""))!);
}
