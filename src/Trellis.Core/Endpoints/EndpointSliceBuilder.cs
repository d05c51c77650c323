using System.Globalization;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Core.Endpoints;

/// <summary>
/// The writes that bring one Service's managed EndpointSlices to what its pods say: slices to
/// create (named, without uid), slices to update (the existing object with new contents, so its
/// uid, creationTimestamp and resourceVersion travel with it for compare-and-swap) and slices to
/// delete. Empty when the store already matches.
/// </summary>
public sealed record EndpointSlicePlan(IReadOnlyList<JsonObject> Create, IReadOnlyList<JsonObject> Update, IReadOnlyList<EndpointSliceView> Delete)
{
    public static EndpointSlicePlan Nothing { get; } = new([], [], []);

    public bool IsEmpty => Create.Count == 0 && Update.Count == 0 && Delete.Count == 0;
}

/// <summary>One set of resolved ports and the endpoints that have exactly that set.</summary>
public sealed record EndpointGroup(string PortKey, JsonArray Ports, IReadOnlyList<JsonObject> Endpoints);

/// <summary>
/// kube-controller-manager's EndpointSlice reconciler as a pure function (pkg/controller/endpointslice,
/// staging/src/k8s.io/endpointslice): (Service, pods, nodes, existing slices) → writes.
/// <list type="bullet">
/// <item>Pods are selected by the Service's selector in its namespace; pods without an IPv4 address
/// and Succeeded/Failed pods are left out (ShouldPodBeInEndpoints with includeTerminating); a pod
/// whose node does not exist is left out unless publishNotReadyAddresses.</item>
/// <item>Ports are resolved per pod (podutil.FindPort): a named targetPort is the pod's container port
/// of that name and protocol; a Service port a pod cannot resolve is dropped for that pod only. Pods
/// are grouped by their resolved port set and each group gets its own slices.</item>
/// <item>Conditions: serving = pod Ready; terminating = deletionTimestamp set; ready =
/// publishNotReadyAddresses || (serving &amp;&amp; !terminating).</item>
/// <item>At most <see cref="MaxEndpointsPerSlice"/> endpoints per slice; an endpoint stays in the slice
/// it is already in, new ones fill existing slices before a new slice is made, so reconciles are stable
/// and a change of one pod rewrites one slice.</item>
/// <item>No pods at all: one placeholder slice with no endpoints and no ports, as upstream keeps.</item>
/// <item>Selector-less Services: nothing (their slices are the user's); the caller deletes managed slices
/// of Services that lost their selector with <see cref="Orphans"/>.</item>
/// </list>
/// </summary>
public static class EndpointSliceBuilder
{
    /// <summary>The managed-by label value of upstream's controller: slices carrying it are ours to rewrite or delete.</summary>
    public const string ManagedBy = "endpointslice-controller.k8s.io";

    public const int MaxEndpointsPerSlice = 100;

    public const string ZoneLabel = "topology.kubernetes.io/zone";

    /// <summary>apiserver's names.SimpleNameGenerator alphabet (no vowels, no confusable characters).</summary>
    private const string NameAlphabet = "bcdfghjklmnpqrstvwxz2456789";

    /// <summary>A slice this controller owns (managed-by label), of any Service.</summary>
    public static bool IsManaged(EndpointSliceView slice) => slice.Metadata.Label(EndpointSliceView.ManagedByLabel) == ManagedBy;

    /// <summary>A generateName-style name: "&lt;service&gt;-" (base cut to 58 characters, as the apiserver does) + 5 random characters.</summary>
    public static string GenerateName(string serviceName, Random random)
    {
        ArgumentNullException.ThrowIfNull(serviceName);
        ArgumentNullException.ThrowIfNull(random);
        string prefix = serviceName + "-";
        if (prefix.Length > 58)
        {
            prefix = prefix[..58];
        }
        return string.Create(prefix.Length + 5, (prefix, random), static (span, s) =>
        {
            s.prefix.AsSpan().CopyTo(span);
            for (int i = s.prefix.Length; i < span.Length; i++)
            {
                span[i] = NameAlphabet[s.random.Next(NameAlphabet.Length)];
            }
        });
    }

    /// <summary>
    /// The writes for one Service. <paramref name="existing"/> may hold any slices of the namespace; only
    /// managed slices labelled with this Service's name are considered. <paramref name="newName"/> gives a
    /// fresh name for each slice to create (see <see cref="GenerateName"/>); names already taken are skipped.
    /// </summary>
    public static EndpointSlicePlan Plan(ServiceView service, IEnumerable<PodView> pods, IEnumerable<NodeView> nodes,
        IEnumerable<EndpointSliceView> existing, Func<string> newName)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(existing);
        ArgumentNullException.ThrowIfNull(newName);
        var mine = existing.Where(s => IsManaged(s) && s.ServiceName == service.Name && s.Namespace == service.Namespace)
            .OrderBy(s => s.Name, StringComparer.Ordinal)
            .ToList();
        if (!service.HasSelector || service.Type == "ExternalName")
        {
            return new EndpointSlicePlan([], [], mine);
        }
        var groups = Desired(service, pods, nodes);
        var create = new List<JsonObject>();
        var update = new List<JsonObject>();
        var delete = new List<EndpointSliceView>();
        var taken = existing.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);

        // Slices that cannot be kept whatever the pods say: another address type, or left by an
        // earlier Service of the same name (ownerReference to another uid), as upstream's ownedBy check.
        var usable = new List<EndpointSliceView>();
        foreach (var s in mine)
        {
            if (s.AddressType != "IPv4" || !OwnedBy(s, service))
            {
                delete.Add(s);
            }
            else
            {
                usable.Add(s);
            }
        }

        if (groups.Count == 0)
        {
            // Upstream keeps one empty placeholder so consumers can tell "no endpoints" from "not reconciled".
            var keep = usable.FirstOrDefault(s => s.Endpoints.Count == 0 && s.Ports.Count == 0) ?? usable.FirstOrDefault();
            delete.AddRange(usable.Where(s => s != keep));
            var ports = new JsonArray();
            if (keep is null)
            {
                create.Add(NewSlice(service, NextName(), ports, []));
            }
            else if (Rewrite(service, keep, ports, []) is { } changed)
            {
                update.Add(changed);
            }
            return new EndpointSlicePlan(create, update, delete);
        }

        var byPortKey = usable.GroupBy(s => PortKey(s.Ports.Select(p => p.Json))).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        foreach (var (key, slices) in byPortKey)
        {
            if (!groups.Any(g => g.PortKey == key))
            {
                delete.AddRange(slices);
            }
        }
        foreach (var group in groups)
        {
            var remaining = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
            foreach (var e in group.Endpoints)
            {
                remaining[EndpointKey(e)] = e;
            }
            var slices = byPortKey.GetValueOrDefault(group.PortKey) ?? [];
            var contents = new List<List<JsonObject>>();
            // Endpoints stay where they are…
            foreach (var s in slices)
            {
                var kept = new List<JsonObject>();
                foreach (var e in s.Endpoints)
                {
                    if (kept.Count < MaxEndpointsPerSlice && remaining.Remove(EndpointKey(e.Json), out var desired))
                    {
                        kept.Add(desired);
                    }
                }
                contents.Add(kept);
            }
            // …new ones fill the room left, in a stable order…
            var queue = new Queue<JsonObject>(remaining.Values.OrderBy(EndpointKey, StringComparer.Ordinal));
            foreach (var kept in contents)
            {
                while (kept.Count < MaxEndpointsPerSlice && queue.Count > 0)
                {
                    kept.Add(queue.Dequeue());
                }
            }
            for (int i = 0; i < slices.Count; i++)
            {
                if (contents[i].Count == 0)
                {
                    delete.Add(slices[i]);
                }
                else if (Rewrite(service, slices[i], group.Ports, contents[i]) is { } changed)
                {
                    update.Add(changed);
                }
            }
            // …and only the rest gets new slices.
            while (queue.Count > 0)
            {
                var chunk = new List<JsonObject>();
                while (chunk.Count < MaxEndpointsPerSlice && queue.Count > 0)
                {
                    chunk.Add(queue.Dequeue());
                }
                create.Add(NewSlice(service, NextName(), group.Ports, chunk));
            }
        }
        // A slice about to be deleted takes the contents of one about to be created (the placeholder
        // when the first pod arrives, a slice whose port set changed): one update instead of a delete
        // and a create, and its name stays.
        var reusable = delete.Where(usable.Contains).ToList();
        for (int i = 0; i < create.Count && reusable.Count > 0; i++)
        {
            var old = reusable[0];
            reusable.RemoveAt(0);
            delete.Remove(old);
            var ports = (JsonArray)create[i]["ports"]!;
            var endpoints = ((JsonArray)create[i]["endpoints"]!).Select(e => (JsonObject)e!).ToList();
            if (Rewrite(service, old, ports, endpoints) is { } changed)
            {
                update.Add(changed);
            }
            create.RemoveAt(i--);
        }
        return new EndpointSlicePlan(create, update, delete);

        string NextName()
        {
            for (int i = 0; i < 1000; i++)
            {
                string n = newName();
                if (taken.Add(n))
                {
                    return n;
                }
            }
            throw new InvalidOperationException("no free EndpointSlice name after 1000 tries: the name source repeats itself");
        }
    }

    /// <summary>Managed slices whose Service is gone or no longer has a selector: to delete.</summary>
    public static IReadOnlyList<EndpointSliceView> Orphans(IEnumerable<EndpointSliceView> slices, Func<string, string, ServiceView?> service)
    {
        ArgumentNullException.ThrowIfNull(slices);
        ArgumentNullException.ThrowIfNull(service);
        return slices.Where(s => IsManaged(s)
            && (s.ServiceName is not { } name || service(s.Namespace ?? "", name) is not { } svc || !svc.HasSelector || svc.Type == "ExternalName"))
            .ToList();
    }

    /// <summary>The endpoint groups the Service's pods call for, ordered by port key; endpoints ordered by pod.</summary>
    public static IReadOnlyList<EndpointGroup> Desired(ServiceView service, IEnumerable<PodView> pods, IEnumerable<NodeView> nodes)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(pods);
        ArgumentNullException.ThrowIfNull(nodes);
        if (!service.HasSelector)
        {
            return [];
        }
        var selector = LabelSelector.FromSet(service.Selector);
        var nodeByName = new Dictionary<string, NodeView>(StringComparer.Ordinal);
        foreach (var n in nodes)
        {
            nodeByName[n.Name] = n;
        }
        var groups = new SortedDictionary<string, (JsonArray Ports, List<JsonObject> Endpoints)>(StringComparer.Ordinal);
        foreach (var pod in pods.OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            if (pod.Namespace != service.Namespace || !selector.Matches(pod.Metadata.Labels) || !ShouldBeInEndpoints(pod))
            {
                continue;
            }
            var addresses = pod.PodIPs.Where(IsIPv4).ToList();
            if (addresses.Count == 0)
            {
                continue;
            }
            NodeView? node = pod.NodeName is { } nn ? nodeByName.GetValueOrDefault(nn) : null;
            if (node is null && !service.PublishNotReadyAddresses)
            {
                // Upstream skips (and retries) a pod on a node it does not know, so a pod left by a
                // removed node cannot keep an endpoint alive; publishNotReadyAddresses publishes it anyway.
                continue;
            }
            var ports = ResolvePorts(service, pod);
            string key = PortKey(ports.Select(p => (JsonObject)p!));
            if (!groups.TryGetValue(key, out var g))
            {
                groups[key] = g = (ports, []);
            }
            g.Endpoints.Add(ToEndpoint(service, pod, node, addresses[0]));
        }
        return groups.Select(kv => new EndpointGroup(kv.Key, kv.Value.Ports, kv.Value.Endpoints)).ToList();
    }

    /// <summary>podutil.FindPort for every Service port; ports the pod cannot resolve are left out.</summary>
    public static JsonArray ResolvePorts(ServiceView service, PodView pod)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(pod);
        var result = new JsonArray();
        foreach (var sp in service.Ports)
        {
            int? number = null;
            var target = sp.TargetPort;
            if (target.IsInt)
            {
                number = (int)target.IntValue;
            }
            else
            {
                number = pod.Containers.SelectMany(c => c.Ports)
                    .FirstOrDefault(cp => cp.Name == target.StringValue && cp.Protocol == sp.Protocol)?.ContainerPort;
            }
            if (number is not int n || n <= 0 || n > 65535)
            {
                continue;
            }
            var port = new JsonObject
            {
                ["name"] = sp.Name ?? "",
                ["port"] = n,
                ["protocol"] = sp.Protocol,
            };
            if (sp.AppProtocol is { } ap)
            {
                port["appProtocol"] = ap;
            }
            result.Add((JsonNode)port);
        }
        return result;
    }

    /// <summary>endpointsliceutil.ShouldPodBeInEndpoints(pod, includeTerminating: true), addresses checked by the caller.</summary>
    private static bool ShouldBeInEndpoints(PodView pod) => pod.Phase is not ("Succeeded" or "Failed");

    private static JsonObject ToEndpoint(ServiceView service, PodView pod, NodeView? node, string address)
    {
        bool serving = pod.IsReady;
        bool terminating = pod.IsTerminating;
        // "ready" is never true for a terminating pod (compatibility with Endpoints), unless the
        // Service publishes not-ready addresses, in which case it is always true.
        bool ready = service.PublishNotReadyAddresses || (serving && !terminating);
        var e = new JsonObject
        {
            ["addresses"] = new JsonArray(address),
            ["conditions"] = new JsonObject { ["ready"] = ready, ["serving"] = serving, ["terminating"] = terminating },
        };
        if (pod.Hostname is { Length: > 0 } host && pod.Subdomain == service.Name && pod.Namespace == service.Namespace)
        {
            e["hostname"] = host;
        }
        if (pod.NodeName is { Length: > 0 } nodeName)
        {
            e["nodeName"] = nodeName;
        }
        if (node?.Metadata.Label(ZoneLabel) is { Length: > 0 } zone)
        {
            e["zone"] = zone;
        }
        e["targetRef"] = new JsonObject
        {
            ["kind"] = "Pod",
            ["namespace"] = pod.Namespace,
            ["name"] = pod.Name,
            ["uid"] = pod.Metadata.Uid ?? "",
        };
        return e;
    }

    private static bool IsIPv4(string ip) => System.Net.IPAddress.TryParse(ip, out var a) && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;

    /// <summary>endpointsliceutil.NewPortMapKey: the port set, order-independent.</summary>
    private static string PortKey(IEnumerable<JsonObject> ports) =>
        string.Join(";", ports.Select(p => string.Create(CultureInfo.InvariantCulture,
                $"{p.Str("name")}/{p.Str("protocol") ?? "TCP"}/{p.Int("port")}/{p.Str("appProtocol")}"))
            .Order(StringComparer.Ordinal));

    /// <summary>An endpoint's identity across reconciles: its pod's uid (or, for hand-made endpoints, its addresses).</summary>
    private static string EndpointKey(JsonObject e) =>
        e.Obj("targetRef") is { } r && r.Str("uid") is { Length: > 0 } uid ? "pod:" + uid
        : e.Obj("targetRef") is { } r2 && r2.Str("name") is { Length: > 0 } name ? $"name:{r2.Str("namespace")}/{name}"
        : "addr:" + string.Join(",", e.StrList("addresses"));

    private static bool OwnedBy(EndpointSliceView slice, ServiceView service)
    {
        var owners = slice.Json.Obj("metadata").Objects("ownerReferences").ToList();
        return owners.Any(o => o.Str("kind") == "Service"
            && (service.Metadata.Uid is { Length: > 0 } uid ? o.Str("uid") == uid : o.Str("name") == service.Name));
    }

    private static JsonObject NewSlice(ServiceView service, string name, JsonArray ports, IReadOnlyList<JsonObject> endpoints)
    {
        var slice = new JsonObject
        {
            ["apiVersion"] = "discovery.k8s.io/v1",
            ["kind"] = "EndpointSlice",
            ["metadata"] = new JsonObject
            {
                ["name"] = name,
                ["generateName"] = service.Name + "-",
                ["namespace"] = service.Namespace,
            },
        };
        Fill(service, slice, ports, endpoints);
        return slice;
    }

    /// <summary>The existing slice with the desired contents, or null when it already has them.</summary>
    private static JsonObject? Rewrite(ServiceView service, EndpointSliceView existing, JsonArray ports, IReadOnlyList<JsonObject> endpoints)
    {
        var copy = (JsonObject)existing.Json.DeepClone();
        Fill(service, copy, ports, endpoints);
        return JsonAccess.SameValue(copy, existing.Json) ? null : copy;
    }

    private static void Fill(ServiceView service, JsonObject slice, JsonArray ports, IReadOnlyList<JsonObject> endpoints)
    {
        var meta = slice["metadata"] as JsonObject ?? [];
        slice["metadata"] = meta;
        // setEndpointSliceLabels: the Service's labels, the headless marker, then the two reserved labels.
        var labels = new JsonObject();
        foreach (var (k, v) in service.Metadata.Labels.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (k is not (EndpointSliceView.ServiceNameLabel or EndpointSliceView.ManagedByLabel or ServiceView.HeadlessLabel))
            {
                labels[k] = v;
            }
        }
        if (service.IsHeadless)
        {
            labels[ServiceView.HeadlessLabel] = "";
        }
        labels[EndpointSliceView.ServiceNameLabel] = service.Name;
        labels[EndpointSliceView.ManagedByLabel] = ManagedBy;
        meta["labels"] = labels;
        meta["ownerReferences"] = new JsonArray(new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Service",
            ["name"] = service.Name,
            ["uid"] = service.Metadata.Uid ?? "",
            ["controller"] = true,
            ["blockOwnerDeletion"] = true,
        });
        slice["addressType"] = "IPv4";
        slice["endpoints"] = new JsonArray([.. endpoints.OrderBy(EndpointKey, StringComparer.Ordinal).Select(e => (JsonNode)e.DeepClone())]);
        slice["ports"] = ports.DeepClone();
    }
}
