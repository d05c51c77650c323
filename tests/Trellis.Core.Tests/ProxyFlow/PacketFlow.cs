using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Trellis.Core.Nft;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;

namespace Trellis.Core.Tests.ProxyFlow;

/// <summary>One packet of a case: kube-proxy's packetFlowTest {name, sourceIP, destIP, destPort, output, masq}.</summary>
internal sealed record FlowCase(string Name, IPAddress From, IPAddress To, int Port, string Protocol, string Output, bool? Masq, string? Differs)
{
    public override string ToString() => $"{Name}: {From} -> {To}:{Port.ToString(CultureInfo.InvariantCulture)}/{Protocol}";
}

/// <summary>The node and proxy options of a case (kube-proxy's NewFakeProxier, unless the case overrides them).</summary>
internal sealed record FlowTopology(IReadOnlyList<IPNetwork> ClusterCidrs, IReadOnlyList<IPAddress> NodePortAddresses, bool MasqueradeAll)
{
    public const string NodeName = "test-node";

    /// <summary>testNodeIP, testNodeIPAlt and testExternalIP: every IPv4 address kube-proxy's fake node has.</summary>
    public static readonly IReadOnlyList<IPAddress> NodeIPs = [IPAddress.Parse("192.168.0.2"), IPAddress.Parse("192.168.1.2"), IPAddress.Parse("192.168.99.11")];

    public static readonly IReadOnlyList<IPNetwork> ServiceCidrs = [IPNetwork.Parse("172.30.0.0/16")];

    /// <summary>podCIDR 10.0.0.0/8 (detect-local), nodePortAddresses 192.168.0.2/32, no masquerade-all.</summary>
    public static FlowTopology Default { get; } = new([IPNetwork.Parse("10.0.0.0/8")], [IPAddress.Parse("192.168.0.2")], false);

    public ProxyInput Input(IEnumerable<JsonObject> objects)
    {
        var list = objects.ToList();
        return new ProxyInput
        {
            NodeName = NodeName,
            NodeIPs = NodeIPs,
            ClusterCidrs = ClusterCidrs,
            ServiceCidrs = ServiceCidrs,
            NodePortAddresses = NodePortAddresses,
            MasqueradeAll = MasqueradeAll,
            Services = list.Where(o => (string?)o["kind"] == "Service").Select(o => new ServiceView(o)).ToList(),
            EndpointSlices = list.Where(o => (string?)o["kind"] == "EndpointSlice").Select(o => new EndpointSliceView(o)).ToList(),
        };
    }
}

/// <summary>One sync of a case: the objects present after it, and the packets to trace then.</summary>
internal sealed record FlowStep(int Number, IReadOnlyList<JsonObject> Objects, IReadOnlyList<FlowCase> Flows);

/// <summary>A case file run under one variant (kube-proxy's table-driven sub-tests: masqueradeAll, no local detector…).</summary>
internal sealed record FlowScenario(string File, string Variant, string Upstream, FlowTopology Topology, IReadOnlyList<FlowStep> Steps, IReadOnlyList<string> ExpectedProblems)
{
    public override string ToString() => Variant.Length == 0 ? File : $"{File} [{Variant}]";
}

/// <summary>
/// Reads ProxyFlow/cases/*.yaml. A case file is a <c>PacketFlowTest</c> document (upstream test name, topology
/// overrides, flows, variants), optional <c>PacketFlowStep</c> documents (later syncs: objects to delete, flows),
/// then Services and EndpointSlices as real manifests; an object annotated <c>trellis.test/step: "N"</c> is
/// added (or replaces the object of the same kind/namespace/name) at step N.
/// </summary>
internal static class FlowCases
{
    public const string StepAnnotation = "trellis.test/step";

    public static string Root => FindRoot();

    public static List<string> FileNames() =>
        [.. Directory.GetFiles(Root, "*.yaml").Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal)];

    public static List<FlowScenario> Load(string file)
    {
        string path = Path.Combine(Root, file + ".yaml");
        var docs = Manifests.Parse(File.ReadAllText(path), path);
        var head = docs.Single(d => (string?)d["kind"] == "PacketFlowTest");
        var stepDocs = docs.Where(d => (string?)d["kind"] == "PacketFlowStep").ToList();
        var objects = docs.Where(d => (string?)d["kind"] is "Service" or "EndpointSlice").ToList();
        string upstream = (string?)head["upstream"] ?? "";
        var baseTopology = Topology(head, FlowTopology.Default);
        var expectedProblems = Strings(head, "problems").ToList();

        var variants = new List<(string Name, FlowTopology Topology, JsonArray? Overrides)> { ("", baseTopology, null) };
        if (head["variants"] is JsonArray vs)
        {
            foreach (var v in vs.Cast<JsonObject>())
            {
                variants.Add(((string)v["name"]!, Topology(v, baseTopology), v["overrides"] as JsonArray));
            }
        }

        var result = new List<FlowScenario>();
        foreach (var (name, topology, overrides) in variants)
        {
            var steps = new List<FlowStep>();
            var present = new List<JsonObject>();
            int maxStep = stepDocs.Count == 0 ? 1 : stepDocs.Max(s => Int(s, "step"));
            for (int n = 1; n <= maxStep; n++)
            {
                var stepDoc = n == 1 ? head : stepDocs.Single(s => Int(s, "step") == n);
                foreach (string key in Strings(stepDoc, "delete"))
                {
                    int removed = present.RemoveAll(o => Key(o) == key);
                    Assert.True(removed == 1, $"{file} step {n}: delete '{key}' matches no object");
                }
                foreach (var o in objects.Where(o => StepOf(o) == n))
                {
                    present.RemoveAll(p => Key(p) == Key(o));
                    present.Add(o);
                }
                var flows = Flows(stepDoc, file);
                if (overrides is not null)
                {
                    flows = ApplyOverrides(flows, overrides, $"{file} [{name}]");
                }
                steps.Add(new FlowStep(n, [.. present], flows));
            }
            result.Add(new FlowScenario(file, name, upstream, topology, steps, expectedProblems));
        }
        return result;
    }

    /// <summary>kind/namespace/name, as a step's <c>delete</c> names it: <c>EndpointSlice/ns1/svc1-1</c>.</summary>
    public static string Key(JsonObject o) =>
        $"{(string?)o["kind"]}/{(string?)o["metadata"]?["namespace"] ?? "default"}/{(string?)o["metadata"]?["name"]}";

    private static int StepOf(JsonObject o) =>
        o["metadata"]?["annotations"]?[StepAnnotation] is JsonNode n ? int.Parse(n.ToString(), CultureInfo.InvariantCulture) : 1;

    private static FlowTopology Topology(JsonObject o, FlowTopology inherited) => new(
        o.ContainsKey("clusterCIDRs") ? Strings(o, "clusterCIDRs").Select(s => IPNetwork.Parse(s)).ToList() : inherited.ClusterCidrs,
        o.ContainsKey("nodePortAddresses") ? Strings(o, "nodePortAddresses").Select(IPAddress.Parse).ToList() : inherited.NodePortAddresses,
        o["masqueradeAll"] is JsonValue m ? m.GetValue<bool>() : inherited.MasqueradeAll);

    private static List<FlowCase> Flows(JsonObject doc, string file)
    {
        var flows = new List<FlowCase>();
        foreach (var f in (doc["flows"] as JsonArray ?? []).Cast<JsonObject>())
        {
            string name = (string)f["name"]!;
            Assert.True(f["output"] is not null, $"{file}: flow '{name}' has no output");
            flows.Add(new FlowCase(
                name,
                IPAddress.Parse((string)f["from"]!),
                IPAddress.Parse((string)f["to"]!),
                Int(f, "port"),
                ((string?)f["protocol"] ?? "tcp").ToLowerInvariant(),
                f["output"]!.ToString(),
                f["masq"] is JsonValue m ? m.GetValue<bool>() : null,
                (string?)f["differs"]));
        }
        var dup = flows.GroupBy(f => f.Name).FirstOrDefault(g => g.Count() > 1);
        Assert.True(dup is null, $"{file}: two flows are named '{dup?.Key}'");
        return flows;
    }

    /// <summary>kube-proxy's packetFlowTestOverride: a variant changes some flows' output or masq, and every override must hit a flow and change it.</summary>
    private static List<FlowCase> ApplyOverrides(List<FlowCase> flows, JsonArray overrides, string where)
    {
        var result = new List<FlowCase>(flows);
        foreach (var o in overrides.Cast<JsonObject>())
        {
            string name = (string)o["flow"]!;
            int i = result.FindIndex(f => f.Name == name);
            Assert.True(i >= 0, $"{where}: override for '{name}' matches no flow");
            var f = result[i];
            if (o["output"] is JsonNode output)
            {
                Assert.True(output.ToString() != f.Output, $"{where}: override output for '{name}' is the same as the base");
                f = f with { Output = output.ToString() };
            }
            if (o["masq"] is JsonValue masq)
            {
                Assert.True(masq.GetValue<bool>() != f.Masq, $"{where}: override masq for '{name}' is the same as the base");
                f = f with { Masq = masq.GetValue<bool>() };
            }
            result[i] = f;
        }
        return result;
    }

    private static int Int(JsonObject o, string key) => int.Parse(o[key]!.ToString(), CultureInfo.InvariantCulture);

    private static IEnumerable<string> Strings(JsonObject o, string key) =>
        o[key] is JsonArray a ? a.Select(n => n!.ToString()) : [];

    private static string FindRoot([CallerFilePath] string thisFile = "")
    {
        string fromSource = Path.Combine(Path.GetDirectoryName(thisFile) ?? "", "cases");
        if (Directory.Exists(fromSource))
        {
            return fromSource;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "Trellis.Core.Tests", "ProxyFlow", "cases");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException($"ProxyFlow/cases not found from {thisFile} or {AppContext.BaseDirectory}");
    }
}

/// <summary>
/// kube-proxy's runPacketFlowTests over Trellis' compiler and tracer: trace one packet through the model and
/// reduce the outcomes to kube-proxy's answer — "DROP", "REJECT", the sorted DNAT destinations
/// ("10.180.0.1:80, 10.180.2.1:80"), or "" for a packet accepted untouched — plus whether it was masqueraded.
/// A source that is one of the node's addresses is traced as locally generated (output hook), as kube-proxy does.
/// </summary>
internal static class FlowRunner
{
    public static (string Output, bool Masq, string Detail) Trace(NftModel model, FlowCase flow)
    {
        var origin = FlowTopology.NodeIPs.Contains(flow.From) ? TraceOrigin.Local : TraceOrigin.Forwarded;
        var result = new NftTracer(model, FlowTopology.NodeIPs.ToList())
            .Trace(new TracePacket(flow.From, flow.To, flow.Protocol, 40000, flow.Port, origin));
        string detail = string.Join("\n", result.Outcomes.Select(o => o.ToString()));
        var verdicts = result.Outcomes.Select(o => o.Verdict).Distinct().ToList();
        if (verdicts.Count != 1)
        {
            return ("MIXED " + string.Join("/", verdicts), false, detail);
        }
        if (verdicts[0] != TraceVerdict.Accept)
        {
            return (verdicts[0] == TraceVerdict.Drop ? "DROP" : "REJECT", false, detail);
        }
        var dnat = result.Outcomes
            .Where(o => !o.Destination.Equals(flow.To) || o.DestinationPort != flow.Port)
            .Select(o => $"{o.Destination}:{o.DestinationPort.ToString(CultureInfo.InvariantCulture)}")
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();
        if (dnat.Count > 0 && dnat.Count != result.Outcomes.Count)
        {
            return ("MIXED dnat and no dnat", false, detail);
        }
        var masq = result.Outcomes.Select(o => o.Masqueraded).Distinct().ToList();
        if (masq.Count != 1)
        {
            return ("MIXED masquerade", false, detail);
        }
        return (string.Join(", ", dnat), masq[0], detail);
    }

    /// <summary>Every flow's mismatch, one line each (empty when all match).</summary>
    public static List<string> Check(NftModel model, IEnumerable<FlowCase> flows, string label)
    {
        var failures = new List<string>();
        foreach (var flow in flows)
        {
            var (output, masq, detail) = Trace(model, flow);
            bool ok = output == flow.Output && (flow.Masq is null || output is "DROP" or "REJECT" || masq == flow.Masq);
            if (!ok)
            {
                failures.Add($"{label}: {flow}: expected '{flow.Output}'{(flow.Masq is { } m ? (m ? " masq" : " no-masq") : "")}, "
                    + $"got '{output}'{(masq ? " masq" : " no-masq")}\n    " + detail.Replace("\n", "\n    ", StringComparison.Ordinal));
            }
        }
        return failures;
    }

    public static NftModel Load(string transaction)
    {
        var model = new NftModel();
        model.Apply(transaction);
        return model;
    }
}
