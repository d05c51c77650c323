using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// kubectl's human-readable tables (pkg/printers/internalversion), column for column, laid out as kubectl's
/// tabwriter does (minimum width 6, padding 3, last column unpadded). Trellis adds POD-CIDR to the wide Node table.
/// </summary>
public static class TablePrinter
{
    /// <summary>
    /// The table for objects of one kind: header and one row each, in the given order. With
    /// <paramref name="allNamespaces"/> a namespaced kind gets a leading NAMESPACE column. Empty input gives "".
    /// </summary>
    public static string Print(KindInfo kind, IEnumerable<JsonObject> objects, DateTimeOffset now, bool wide = false, bool allNamespaces = false)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(objects);
        var rows = new List<string[]>();
        bool nsColumn = allNamespaces && kind.Namespaced;
        foreach (var obj in objects)
        {
            var row = Row(kind, obj, now, wide);
            rows.Add(nsColumn ? [new GenericView(obj).Namespace ?? "", .. row] : row);
        }
        if (rows.Count == 0)
        {
            return "";
        }
        var header = Header(kind, wide);
        rows.Insert(0, nsColumn ? ["NAMESPACE", .. header] : header);
        return Layout(rows);
    }

    /// <summary>kubectl's message (on stderr) when nothing matched.</summary>
    public static string NoResourcesMessage(string? ns) =>
        ns is null ? "No resources found" : $"No resources found in {ns} namespace.";

    private static string[] Header(KindInfo kind, bool wide) => kind.Kind switch
    {
        "Pod" => wide ? ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"] : ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "Service" => wide ? ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"] : ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        "Node" => wide
            ? ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME", "POD-CIDR"]
            : ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "Namespace" => ["NAME", "STATUS", "AGE"],
        // Trellis adds, with -o wide, every endpoint with its true conditions and its node: 10.244.1.5(ready+serving)@node-1.
        "EndpointSlice" => wide ? ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE", "CONDITIONS"] : ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
        "NetworkPolicy" => ["NAME", "POD-SELECTOR", "AGE"],
        _ => ["NAME", "AGE"],
    };

    private static string[] Row(KindInfo kind, JsonObject obj, DateTimeOffset now, bool wide)
    {
        var view = new GenericView(obj);
        string age = HumanDuration.Since(view.Metadata.CreationTimestamp, now);
        switch (kind.Kind)
        {
            case "Pod":
                return PodRow(new PodView(obj), now, wide, age);
            case "Service":
                var svc = new ServiceView(obj);
                string[] svcRow = [svc.Name, svc.Type, NoneIfEmpty(svc.ClusterIP), ServiceExternalIP(svc, wide), ServicePorts(svc), age];
                return wide ? [.. svcRow, FormatLabels(svc.Selector)] : svcRow;
            case "Node":
                var node = new NodeView(obj);
                string[] nodeRow = [node.Name, NodeStatus(node), node.Roles.Count == 0 ? "<none>" : string.Join(",", node.Roles), age, node.KubeletVersion ?? ""];
                if (!wide)
                {
                    return nodeRow;
                }
                var info = obj.Obj("status").Obj("nodeInfo");
                return [.. nodeRow,
                    node.InternalIP ?? "<none>",
                    node.Addresses.FirstOrDefault(a => a.Type == "ExternalIP")?.Address ?? "<none>",
                    UnknownIfEmpty(info.Str("osImage")),
                    UnknownIfEmpty(info.Str("kernelVersion")),
                    UnknownIfEmpty(info.Str("containerRuntimeVersion")),
                    node.PodCIDRs.Count == 0 ? "<none>" : string.Join(",", node.PodCIDRs)];
            case "Namespace":
                return [view.Name, obj.Obj("status").Str("phase") ?? "", age];
            case "EndpointSlice":
                var slice = new EndpointSliceView(obj);
                string[] sliceRow = [slice.Name, slice.AddressType, SlicePorts(slice), SliceEndpoints(slice), age];
                return wide ? [.. sliceRow, SliceConditions(slice)] : sliceRow;
            case "NetworkPolicy":
                var np = new NetworkPolicyView(obj);
                string selector = np.PodSelector.ToString();
                return [np.Name, selector.Length == 0 ? "<none>" : selector, age];
            default:
                return [view.Name, age];
        }
    }

    // printPod: READY counts running+ready containers; STATUS is the phase refined by container states.
    private static string[] PodRow(PodView pod, DateTimeOffset now, bool wide, string age)
    {
        var spec = pod.Json.Obj("spec");
        var status = pod.Json.Obj("status");
        int total = spec.Arr("containers")?.Count ?? 0;
        int ready = 0;
        long restarts = 0;
        DateTimeOffset? lastRestart = null;
        string reason = status.Str("phase") ?? "";
        if (status.Str("reason") is { Length: > 0 } r)
        {
            reason = r;
        }
        bool initializing = false;
        var initStatuses = status.Objects("initContainerStatuses").ToList();
        int initCount = spec.Arr("initContainers")?.Count ?? 0;
        for (int i = 0; i < initStatuses.Count; i++)
        {
            var cs = initStatuses[i];
            restarts += cs.Int("restartCount") ?? 0;
            var terminated = cs.Obj("state").Obj("terminated");
            var waiting = cs.Obj("state").Obj("waiting");
            if (terminated is not null && (terminated.Int("exitCode") ?? 0) == 0)
            {
                continue;
            }
            initializing = true;
            if (terminated is not null)
            {
                reason = terminated.Str("reason") is { Length: > 0 } tr ? "Init:" + tr
                    : (terminated.Int("signal") ?? 0) != 0 ? $"Init:Signal:{terminated.Int("signal")}"
                    : $"Init:ExitCode:{terminated.Int("exitCode")}";
            }
            else if (waiting?.Str("reason") is { Length: > 0 } wr && wr != "PodInitializing")
            {
                reason = "Init:" + wr;
            }
            else
            {
                reason = $"Init:{i}/{initCount}";
            }
            break;
        }
        var statuses = status.Objects("containerStatuses").ToList();
        if (!initializing)
        {
            restarts = 0;
            bool hasRunning = false;
            for (int i = statuses.Count - 1; i >= 0; i--)
            {
                var cs = statuses[i];
                restarts += cs.Int("restartCount") ?? 0;
                if (Timestamps.Parse(cs.Obj("lastState").Obj("terminated").Str("finishedAt")) is { } finished && (lastRestart is null || finished > lastRestart))
                {
                    lastRestart = finished;
                }
                var state = cs.Obj("state");
                var terminated = state.Obj("terminated");
                if (state.Obj("waiting")?.Str("reason") is { Length: > 0 } wr)
                {
                    reason = wr;
                }
                else if (terminated?.Str("reason") is { Length: > 0 } tr)
                {
                    reason = tr;
                }
                else if (terminated is not null)
                {
                    reason = (terminated.Int("signal") ?? 0) != 0 ? $"Signal:{terminated.Int("signal")}" : $"ExitCode:{terminated.Int("exitCode")}";
                }
                else if ((cs.Bool("ready") ?? false) && state.Obj("running") is not null)
                {
                    hasRunning = true;
                    ready++;
                }
            }
            if (reason == "Completed" && hasRunning)
            {
                reason = pod.IsReady ? "Running" : "NotReady";
            }
        }
        // Trellis' lab kubelet may report only the Ready condition: then every container counts as ready with it.
        if (statuses.Count == 0 && pod.IsReady)
        {
            ready = total;
        }
        if (pod.Metadata.DeletionTimestamp is not null)
        {
            reason = status.Str("reason") == "NodeLost" ? "Unknown"
                : status.Str("phase") is "Succeeded" or "Failed" ? reason
                : "Terminating";
        }
        string restartText = restarts.ToString(CultureInfo.InvariantCulture);
        if (restarts != 0 && lastRestart is { } lr)
        {
            restartText = $"{restarts} ({HumanDuration.Since(lr, now)} ago)";
        }
        string[] row = [pod.Name, $"{ready}/{total}", reason, restartText, age];
        if (!wide)
        {
            return row;
        }
        var gates = spec.Arr("readinessGates");
        string gatesText = "<none>";
        if (gates is { Count: > 0 })
        {
            var conditions = pod.Conditions;
            int trueGates = gates.OfType<JsonObject>().Count(g => conditions.Any(c => c.Type == g.Str("conditionType") && c.IsTrue));
            gatesText = $"{trueGates}/{gates.Count}";
        }
        return [.. row, NoneIfEmpty(pod.PodIP), NoneIfEmpty(pod.NodeName), NoneIfEmpty(status.Str("nominatedNodeName")), gatesText];
    }

    private static string ServiceExternalIP(ServiceView svc, bool wide)
    {
        var externalIPs = svc.ExternalIPs;
        switch (svc.Type)
        {
            case "ClusterIP" or "NodePort":
                return externalIPs.Count > 0 ? string.Join(",", externalIPs) : "<none>";
            case "LoadBalancer":
                string lb = string.Join(",", svc.LoadBalancerIngress.Select(i => !string.IsNullOrEmpty(i.IP) ? i.IP : i.Hostname).Where(s => !string.IsNullOrEmpty(s)));
                // loadBalancerWidth: kubectl shortens the list outside wide output.
                if (!wide && lb.Length > 16)
                {
                    lb = lb[..13] + "...";
                }
                if (externalIPs.Count > 0)
                {
                    var all = new List<string>();
                    if (lb.Length > 0)
                    {
                        all.AddRange(lb.Split(','));
                    }
                    all.AddRange(externalIPs);
                    return string.Join(",", all);
                }
                return lb.Length > 0 ? lb : "<pending>";
            case "ExternalName":
                return svc.ExternalName ?? "";
            default:
                return "<unknown>";
        }
    }

    private static string ServicePorts(ServiceView svc)
    {
        var parts = svc.Ports.Select(p => p.NodePort is { } np ? $"{p.Port}:{np}/{p.Protocol}" : $"{p.Port}/{p.Protocol}").ToList();
        return parts.Count == 0 ? "<none>" : string.Join(",", parts);
    }

    private static string NodeStatus(NodeView node)
    {
        var readyCondition = node.Conditions.FirstOrDefault(c => c.Type == "Ready");
        string status = readyCondition is null ? "Unknown" : readyCondition.IsTrue ? "Ready" : "NotReady";
        return node.Unschedulable ? status + ",SchedulingDisabled" : status;
    }

    private static string SlicePorts(EndpointSliceView slice)
    {
        var items = slice.Json.Objects("ports").Select(p => p.Int("port") is { } n ? n.ToString(CultureInfo.InvariantCulture) : p.Str("name") ?? "*").ToList();
        return ListWithMore(items);
    }

    private static string SliceEndpoints(EndpointSliceView slice) => ListWithMore(slice.Endpoints.SelectMany(e => e.Addresses).ToList());

    private static string SliceConditions(EndpointSliceView slice)
    {
        var parts = new List<string>();
        foreach (var e in slice.Endpoints)
        {
            var flags = new List<string>();
            // Absent ready means unknown, which consumers treat as ready; absent serving follows ready.
            bool ready = e.Ready ?? true;
            if (ready)
            {
                flags.Add("ready");
            }
            if (e.Serving ?? ready)
            {
                flags.Add("serving");
            }
            if (e.Terminating ?? false)
            {
                flags.Add("terminating");
            }
            string text = $"{string.Join(",", e.Addresses)}({(flags.Count == 0 ? "-" : string.Join("+", flags))})";
            parts.Add(e.NodeName is { Length: > 0 } node ? text + "@" + node : text);
        }
        return parts.Count == 0 ? "<none>" : string.Join(";", parts);
    }

    // listWithMoreString: the first three, then "+ N more...".
    private static string ListWithMore(List<string> items)
    {
        const int max = 3;
        string shown = string.Join(",", items.Take(max));
        if (items.Count > max)
        {
            return $"{shown} + {items.Count - max} more...";
        }
        return shown.Length == 0 ? "<unset>" : shown;
    }

    /// <summary>labels.FormatLabels: "k=v,k2=v2" sorted by key, "&lt;none&gt;" when empty.</summary>
    public static string FormatLabels(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return labels.Count == 0 ? "<none>" : string.Join(",", labels.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));
    }

    private static string NoneIfEmpty(string? s) => string.IsNullOrEmpty(s) ? "<none>" : s;

    private static string UnknownIfEmpty(string? s) => string.IsNullOrEmpty(s) ? "<unknown>" : s;

    // text/tabwriter with kubectl's settings: each cell but the last padded to max(6, widest + 3).
    private static string Layout(List<string[]> rows)
    {
        int columns = rows.Max(r => r.Length);
        var widths = new int[columns];
        foreach (var row in rows)
        {
            for (int i = 0; i < row.Length - 1; i++)
            {
                widths[i] = Math.Max(widths[i], Math.Max(6, CellWidth(row[i]) + 3));
            }
        }
        var sb = new StringBuilder();
        foreach (var row in rows)
        {
            for (int i = 0; i < row.Length; i++)
            {
                sb.Append(row[i]);
                if (i < row.Length - 1)
                {
                    sb.Append(' ', widths[i] - CellWidth(row[i]));
                }
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    // tabwriter counts UTF-8 runes, not bytes or UTF-16 units.
    private static int CellWidth(string s) => s.EnumerateRunes().Count();
}
