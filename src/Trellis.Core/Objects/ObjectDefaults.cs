using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// What the API server fills in on write, as pure functions returning new trees (the input is never changed):
/// the SetDefaults_* of each kind, and on create/update the system metadata and the status rules of
/// DESIGN.md §4. Allocation (ClusterIP, NodePort) is not done here; updates keep allocated values that the
/// manifest omits, as the Service REST storage does.
/// </summary>
public static class ObjectDefaults
{
    public const string DefaultNamespace = "default";

    /// <summary>
    /// Prepares a manifest for creation: field defaults, <c>metadata.namespace</c> (<paramref name="defaultNamespace"/>
    /// when omitted on a namespaced kind, removed on a cluster-scoped one), the caller's uid and creationTimestamp,
    /// no resourceVersion or deletionTimestamp, and <c>status</c> dropped — except a Service's
    /// <c>status.loadBalancer.ingress</c> (no controller sets it); a Pod starts <c>Pending</c>, a Namespace <c>Active</c>.
    /// </summary>
    public static JsonObject ForCreate(JsonObject manifest, string uid, DateTimeOffset creationTimestamp, string defaultNamespace = DefaultNamespace)
    {
        ArgumentException.ThrowIfNullOrEmpty(uid);
        var obj = WithDefaults(manifest, defaultNamespace);
        if (obj.Get("metadata") is JsonObject meta)
        {
            meta["uid"] = uid;
            meta["creationTimestamp"] = Timestamps.Format(creationTimestamp);
            meta.Remove("resourceVersion");
            meta.Remove("deletionTimestamp");
        }
        ReplaceStatus(obj, Kinds.Find(obj), previous: null);
        return obj;
    }

    /// <summary>
    /// Prepares a manifest that replaces <paramref name="existing"/> (kubectl apply of a changed file): as
    /// <see cref="ForCreate"/>, but uid (when the manifest has none), creationTimestamp, deletionTimestamp and
    /// status come from the stored object, and so do values the server or a controller set that the manifest
    /// omits: a Service's clusterIP(s), IP families and nodePorts (matched by port name), a Pod's nodeName, a
    /// Node's podCIDR(s). Run <see cref="ObjectValidator.ValidateUpdate"/> on the result.
    /// </summary>
    public static JsonObject ForUpdate(JsonObject existing, JsonObject manifest, string defaultNamespace = DefaultNamespace)
    {
        ArgumentNullException.ThrowIfNull(existing);
        var obj = WithDefaults(manifest, defaultNamespace);
        var kind = Kinds.Find(obj);
        var oldMeta = existing.Obj("metadata");
        if (obj.Get("metadata") is JsonObject meta)
        {
            if (string.IsNullOrEmpty(meta.Str("uid")) && oldMeta.Str("uid") is { } uid)
            {
                meta["uid"] = uid;
            }
            SetOrRemove(meta, "creationTimestamp", oldMeta.Get("creationTimestamp"));
            SetOrRemove(meta, "deletionTimestamp", oldMeta.Get("deletionTimestamp"));
        }
        if (kind == Kinds.Service)
        {
            PatchServiceAllocations(existing, obj);
        }
        else if (kind == Kinds.Pod && obj.Obj("spec") is { } podSpec && string.IsNullOrEmpty(podSpec.Str("nodeName"))
            && existing.Obj("spec").Str("nodeName") is { Length: > 0 } nodeName)
        {
            podSpec["nodeName"] = nodeName;
        }
        else if (kind == Kinds.Node && existing.Obj("spec") is { } oldNodeSpec && obj.Get("spec") is null or JsonObject)
        {
            if (obj.Get("spec") is not JsonObject nodeSpec)
            {
                nodeSpec = [];
                obj["spec"] = nodeSpec;
            }
            if (string.IsNullOrEmpty(nodeSpec.Str("podCIDR")) && nodeSpec.Arr("podCIDRs") is null or { Count: 0 })
            {
                CopyIfPresent(oldNodeSpec, nodeSpec, "podCIDR");
                CopyIfPresent(oldNodeSpec, nodeSpec, "podCIDRs");
            }
        }
        ReplaceStatus(obj, kind, previous: existing);
        return obj;
    }

    /// <summary>The kind's field defaults only (SetDefaults_*), plus the namespace rule; metadata and status otherwise untouched.</summary>
    public static JsonObject WithDefaults(JsonObject manifest, string defaultNamespace = DefaultNamespace)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentException.ThrowIfNullOrEmpty(defaultNamespace);
        var obj = (JsonObject)manifest.DeepClone();
        var kind = Kinds.Find(obj);
        if (kind is null)
        {
            return obj;
        }
        DefaultNamespaceField(obj, kind, defaultNamespace);
        if (kind == Kinds.Namespace)
        {
            DefaultNamespaceLabel(obj);
        }
        else if (kind == Kinds.Pod)
        {
            DefaultPod(obj.Get("spec") as JsonObject);
        }
        else if (kind == Kinds.Service)
        {
            DefaultService(obj.Get("spec") as JsonObject);
            // LoadBalancerIPMode: an ingress IP without a mode is a VIP.
            foreach (var ingress in (obj.Get("status") as JsonObject).Obj("loadBalancer").Objects("ingress"))
            {
                if (ingress.Str("ip") is { Length: > 0 } && ingress.Get("ipMode") is null)
                {
                    ingress["ipMode"] = "VIP";
                }
            }
        }
        else if (kind == Kinds.EndpointSlice)
        {
            foreach (var port in obj.Objects("ports"))
            {
                port.TryAdd("name", "");
                DefaultString(port, "protocol", "TCP");
            }
        }
        else if (kind == Kinds.NetworkPolicy)
        {
            DefaultNetworkPolicy(obj.Get("spec") as JsonObject);
        }
        else if (kind == Kinds.Node && obj.Get("spec") is JsonObject nodeSpec
            && nodeSpec.Str("podCIDR") is { Length: > 0 } podCidr && nodeSpec.Arr("podCIDRs") is null or { Count: 0 })
        {
            nodeSpec["podCIDRs"] = new JsonArray(podCidr);
        }
        return obj;
    }

    private static void DefaultNamespaceField(JsonObject obj, KindInfo kind, string defaultNamespace)
    {
        if (obj.Get("metadata") is not JsonObject meta)
        {
            if (obj.Get("metadata") is not null)
            {
                return; // the wrong type: validation reports it
            }
            meta = [];
            obj["metadata"] = meta;
        }
        if (!kind.Namespaced)
        {
            // The API server clears a namespace sent with a cluster-scoped object.
            meta.Remove("namespace");
            return;
        }
        var ns = meta.Get("namespace");
        if (ns is null || JsonAccess.AsString(ns) is { Length: 0 })
        {
            meta.Remove("namespace");
            int at = meta.IndexOf("name");
            meta.Insert(at < 0 ? 0 : at + 1, "namespace", defaultNamespace);
        }
    }

    // Every Namespace carries kubernetes.io/metadata.name=<name> (NamespaceDefaultLabelName), whatever the manifest says.
    private static void DefaultNamespaceLabel(JsonObject obj)
    {
        var meta = obj.Obj("metadata");
        if (meta?.Str("name") is not { Length: > 0 } name)
        {
            return;
        }
        if (meta.Get("labels") is null)
        {
            meta["labels"] = new JsonObject();
        }
        if (meta.Get("labels") is JsonObject labels)
        {
            labels[NamespaceView.NameLabel] = name;
        }
    }

    private static void DefaultPod(JsonObject? spec)
    {
        if (spec is null)
        {
            return;
        }
        bool hostNetwork = spec.Bool("hostNetwork") ?? false;
        foreach (string list in (ReadOnlySpan<string>)["initContainers", "containers"])
        {
            foreach (var container in spec.Objects(list))
            {
                foreach (var port in container.Objects("ports"))
                {
                    DefaultString(port, "protocol", "TCP");
                    // SetDefaults_Pod: with hostNetwork the host port is the container port.
                    if (hostNetwork && (port.Int("hostPort") ?? 0) == 0 && port.Int("containerPort") is { } cp)
                    {
                        port["hostPort"] = cp;
                    }
                }
            }
        }
        DefaultString(spec, "restartPolicy", "Always");
        DefaultString(spec, "dnsPolicy", "ClusterFirst");
    }

    private static void DefaultService(JsonObject? spec)
    {
        if (spec is null)
        {
            return;
        }
        DefaultString(spec, "type", "ClusterIP");
        DefaultString(spec, "sessionAffinity", "None");
        string? affinity = spec.Str("sessionAffinity");
        if (affinity == "None")
        {
            spec.Remove("sessionAffinityConfig");
        }
        else if (affinity == "ClientIP" && spec.Obj("sessionAffinityConfig").Obj("clientIP").Get("timeoutSeconds") is null)
        {
            if (spec.Get("sessionAffinityConfig") is not JsonObject config)
            {
                config = [];
                spec["sessionAffinityConfig"] = config;
            }
            if (config.Get("clientIP") is not JsonObject clientIP)
            {
                clientIP = [];
                config["clientIP"] = clientIP;
            }
            clientIP["timeoutSeconds"] = 10800; // v1.DefaultClientIPServiceAffinitySeconds
        }
        foreach (var port in spec.Objects("ports"))
        {
            DefaultString(port, "protocol", "TCP");
            var target = port.Get("targetPort");
            bool unset = target is null || JsonAccess.AsInteger(target) == 0 || JsonAccess.AsString(target) is { Length: 0 };
            if (unset && port.Get("port") is { } p && JsonAccess.IsNumber(p))
            {
                port["targetPort"] = p.DeepClone();
            }
        }
        string? type = spec.Str("type");
        bool externallyAccessible = type is "NodePort" or "LoadBalancer" || (type == "ClusterIP" && spec.Arr("externalIPs") is { Count: > 0 });
        if (externallyAccessible)
        {
            DefaultString(spec, "externalTrafficPolicy", "Cluster");
        }
        if (type is "ClusterIP" or "NodePort" or "LoadBalancer" && spec.Get("internalTrafficPolicy") is null)
        {
            spec["internalTrafficPolicy"] = "Cluster";
        }
        if (type == "LoadBalancer" && spec.Get("allocateLoadBalancerNodePorts") is null)
        {
            spec["allocateLoadBalancerNodePorts"] = true;
        }
        // normalizeClusterIPs on create: a client that sets only the singular field gets the plural one.
        if (type != "ExternalName" && spec.Str("clusterIP") is { Length: > 0 } ip && spec.Arr("clusterIPs") is null or { Count: 0 } && spec.Get("clusterIPs") is null or JsonArray)
        {
            spec["clusterIPs"] = new JsonArray(ip);
        }
    }

    private static void DefaultNetworkPolicy(JsonObject? spec)
    {
        if (spec is null)
        {
            return;
        }
        if (spec.Get("policyTypes") is null or JsonArray { Count: 0 })
        {
            var types = new JsonArray("Ingress");
            if (spec.Arr("egress") is { Count: > 0 })
            {
                types.Add((JsonNode)"Egress");
            }
            spec["policyTypes"] = types;
        }
        foreach (string direction in (ReadOnlySpan<string>)["ingress", "egress"])
        {
            foreach (var rule in spec.Objects(direction))
            {
                foreach (var port in rule.Objects("ports"))
                {
                    DefaultString(port, "protocol", "TCP");
                }
            }
        }
    }

    private static void PatchServiceAllocations(JsonObject existing, JsonObject obj)
    {
        var oldSpec = existing.Obj("spec");
        var spec = obj.Obj("spec");
        if (oldSpec is null || spec is null)
        {
            return;
        }
        string? oldType = oldSpec.Str("type");
        string? newType = spec.Str("type");
        if (oldType != "ExternalName" && newType != "ExternalName")
        {
            if (string.IsNullOrEmpty(spec.Str("clusterIP")))
            {
                CopyIfPresent(oldSpec, spec, "clusterIP");
            }
            if (spec.Arr("clusterIPs") is null or { Count: 0 })
            {
                CopyIfPresent(oldSpec, spec, "clusterIPs");
            }
            if (spec.Get("ipFamilies") is null)
            {
                CopyIfPresent(oldSpec, spec, "ipFamilies");
            }
            if (spec.Get("ipFamilyPolicy") is null)
            {
                CopyIfPresent(oldSpec, spec, "ipFamilyPolicy");
            }
        }
        if (oldType is "NodePort" or "LoadBalancer" && newType is "NodePort" or "LoadBalancer")
        {
            // Keyed by port name, skipping node ports the new object already uses (patchAllocatedValues).
            var used = spec.Objects("ports").Select(p => p.Int("nodePort") ?? 0).Where(n => n != 0).ToHashSet();
            var byName = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var p in oldSpec.Objects("ports"))
            {
                byName[p.Str("name") ?? ""] = p.Int("nodePort") ?? 0;
            }
            foreach (var p in spec.Objects("ports"))
            {
                if ((p.Int("nodePort") ?? 0) == 0 && byName.TryGetValue(p.Str("name") ?? "", out long np) && np != 0 && !used.Contains(np))
                {
                    p["nodePort"] = np;
                    used.Add(np);
                }
            }
            if ((spec.Int("healthCheckNodePort") ?? 0) == 0)
            {
                CopyIfPresent(oldSpec, spec, "healthCheckNodePort");
            }
        }
    }

    private static void ReplaceStatus(JsonObject obj, KindInfo? kind, JsonObject? previous)
    {
        var manifestStatus = obj.Get("status");
        obj.Remove("status");
        JsonObject? status = null;
        if (kind == Kinds.Service)
        {
            if (manifestStatus is JsonObject ms && ms.Obj("loadBalancer")?.Get("ingress") is { } ingress)
            {
                status = new JsonObject { ["loadBalancer"] = new JsonObject { ["ingress"] = ingress.DeepClone() } };
            }
            else if (previous is not null && previous.Obj("spec").Str("type") == "LoadBalancer" && obj.Obj("spec").Str("type") == "LoadBalancer"
                && previous.Obj("status").Obj("loadBalancer")?.Get("ingress") is JsonArray { Count: > 0 } kept)
            {
                // An address from the pool (or an earlier manifest) stays across re-applies that do not mention status.
                status = new JsonObject { ["loadBalancer"] = new JsonObject { ["ingress"] = kept.DeepClone() } };
            }
        }
        else if (previous is not null)
        {
            status = previous.Get("status")?.DeepClone() as JsonObject;
        }
        else if (kind == Kinds.Pod)
        {
            status = new JsonObject { ["phase"] = "Pending" };
        }
        else if (kind == Kinds.Namespace)
        {
            status = new JsonObject { ["phase"] = "Active" };
        }
        if (status is not null)
        {
            obj["status"] = status;
        }
    }

    private static void DefaultString(JsonObject obj, string key, string value)
    {
        var v = obj.Get(key);
        if (v is null || JsonAccess.AsString(v) is { Length: 0 })
        {
            obj[key] = value;
        }
    }

    private static void CopyIfPresent(JsonObject from, JsonObject to, string key)
    {
        if (from.Get(key) is { } v)
        {
            to[key] = v.DeepClone();
        }
    }

    private static void SetOrRemove(JsonObject obj, string key, JsonNode? value)
    {
        if (value is null)
        {
            obj.Remove(key);
        }
        else
        {
            obj[key] = value.DeepClone();
        }
    }
}
