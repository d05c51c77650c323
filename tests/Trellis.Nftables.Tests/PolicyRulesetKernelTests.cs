using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Core.Policies;
using Trellis.Nftables.Tests.Support;
using Xunit.Abstractions;

namespace Trellis.Nftables.Tests;

/// <summary>
/// The policy compiler's transactions through the real nft, in a throwaway trl-plc-* namespace: every golden
/// case's policies (over the e2e suite's pod model) as a full sync, partial syncs from each case to the next, a
/// full sync after a "restart" that keeps the counter chains, counters read back from the listing, and the
/// compile + apply time of 1,000 policies over 1,000 pods.
/// </summary>
public sealed class PolicyRulesetKernelTests(ITestOutputHelper output)
{
    [KernelFact]
    public void Every_golden_case_applies_as_a_full_sync_and_partial_syncs_converge()
    {
        using var ns = new PolicyNetns();
        var cases = CaseNames();
        var rulesets = cases.Select(c => PolicyCompiler.Compile(ReadCase(c), "node-1")).ToList();
        foreach (var (ruleset, name) in rulesets.Zip(cases))
        {
            ns.Apply(ruleset.Dump(), name);
            AssertNames(ruleset, ns.List(), name);
            ns.Apply("delete table inet trellis-policy\n", name);
        }

        ns.Apply(rulesets[0].Dump(), cases[0]);
        for (int i = 1; i < rulesets.Count; i++)
        {
            string label = $"{cases[i - 1]} -> {cases[i]}";
            ns.Apply(PolicyTransaction.Partial(rulesets[i - 1], rulesets[i]), label);
            AssertNames(rulesets[i], ns.List(), label);
            AssertElementCounts(rulesets[i], ns, label);
        }

        // A restart: the agent knows only what the kernel lists; back to the first case.
        ns.Apply(PolicyTransaction.Full(rulesets[0], PolicyObjectNames.FromListing(ns.List())), "full after restart");
        AssertNames(rulesets[0], ns.List(), "full after restart");
        string before = ns.List();
        ns.Apply(PolicyTransaction.Full(rulesets[0], PolicyObjectNames.FromListing(before)), "full again");
        Assert.Equal(before, ns.List());

        var counters = PolicyCounters.Read(rulesets[0], ns.List(stateless: false));
        Assert.Equal(rulesets[0].Counters.Count, counters.Count);
        Assert.Equal(PolicyCounters.ParseListing(ns.List(stateless: false)).Count, rulesets[0].Counters.Count + 3); // + forward's two, the checks' trailing drops
    }

    [KernelFact]
    public void Counters_survive_a_full_resync()
    {
        using var ns = new PolicyNetns();
        var ruleset = PolicyCompiler.Compile(ReadCase("union-overlap"), "node-1");
        ns.Apply(ruleset.Dump(), "first");
        string chain = ruleset.Counters.First(c => c.Kind == "allow").Chain;
        // Stand-in for traffic: give the counter a value the way the kernel shows it after packets.
        ns.Apply($"flush chain inet trellis-policy {chain}\nadd rule inet trellis-policy {chain} counter packets 7 bytes 700\n", "seed counter");
        ns.Apply(PolicyTransaction.Full(ruleset, PolicyObjectNames.FromListing(ns.List())), "resync");
        var value = PolicyCounters.Read(ruleset, ns.List(stateless: false)).Single(c => c.Chain.Chain == chain);
        Assert.Equal(7, value.Packets);
        Assert.Equal(700, value.Bytes);
    }

    [KernelFact]
    public void Scale_1000_policies_over_1000_pods()
    {
        using var ns = new PolicyNetns();
        var snapshot = ScaleSnapshot(1000, 1000);
        var sw = Stopwatch.StartNew();
        var ruleset = PolicyCompiler.Compile(snapshot, "node-1");
        var compile = sw.Elapsed;
        string text = ruleset.Dump();
        sw.Restart();
        ns.Apply(text, "scale full");
        var apply = sw.Elapsed;

        // One more policy, applied as a partial sync.
        var more = snapshot with { Policies = [.. snapshot.Policies, Policy(1000, 1000)] };
        sw.Restart();
        var next = PolicyCompiler.Compile(more, "node-1");
        string partial = PolicyTransaction.Partial(ruleset, next);
        var compile2 = sw.Elapsed;
        sw.Restart();
        ns.Apply(partial, "scale partial");
        var apply2 = sw.Elapsed;
        int elements = ruleset.Sets.Values.Sum(s => s.Elements.Count);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"1000 policies / 1000 pods (node-1 has {ruleset.Sets["local-pods"].Elements.Count}): compile {compile.TotalMilliseconds:F0} ms, full nft -f {apply.TotalMilliseconds:F0} ms ({text.Length / 1024} KiB, {elements} elements, {ruleset.Chains.Count} chains); "
            + $"+1 policy: compile {compile2.TotalMilliseconds:F0} ms, partial nft -f {apply2.TotalMilliseconds:F0} ms ({partial.Length} bytes)"));
        Assert.Equal(6, ruleset.Chains["forward"].Rules.Count);
        AssertNames(next, ns.List(), "scale partial");
    }

    internal static PolicySnapshot ScaleSnapshot(int pods, int policies)
    {
        var nodes = Enumerable.Range(1, 4).Select(i => Obj("v1", "Node", $"node-{i}", null, null, new JsonObject { ["podCIDR"] = $"10.244.{i}.0/24" }, null)).Select(o => new NodeView(o)).ToList();
        var namespaces = Enumerable.Range(0, 10).Select(i => new NamespaceView(Obj("v1", "Namespace", $"ns{i}", null,
            new JsonObject { [NamespaceView.NameLabel] = $"ns{i}", ["team"] = $"t{i % 3}" }, null, null))).ToList();
        var podViews = new List<PodView>();
        for (int i = 0; i < pods; i++)
        {
            int node = i % 4 + 1;
            var spec = new JsonObject
            {
                ["nodeName"] = $"node-{node}",
                ["containers"] = new JsonArray(new JsonObject { ["name"] = "c", ["ports"] = new JsonArray(new JsonObject { ["name"] = "http", ["containerPort"] = 8000 + i % 7 }) }),
            };
            podViews.Add(new PodView(Obj("v1", "Pod", $"p{i}", $"ns{i % 10}", new JsonObject { ["app"] = $"app{i % 50}" }, spec,
                new JsonObject { ["phase"] = "Running", ["podIP"] = $"10.244.{node}.{2 + i / 4}" })));
        }
        return new PolicySnapshot { Nodes = nodes, Namespaces = namespaces, Pods = podViews, Policies = Enumerable.Range(0, policies).Select(i => Policy(i, policies)).ToList() };
    }

    private static NetworkPolicyView Policy(int i, int total)
    {
        var spec = (JsonObject)JsonNode.Parse("""
            {"podSelector": {"matchLabels": {"app": "app@0@"}},
             "ingress": [
               {"from": [{"podSelector": {"matchLabels": {"app": "app@1@"}}}, {"namespaceSelector": {"matchLabels": {"team": "t@2@"}}, "podSelector": {"matchLabels": {"app": "app@3@"}}}],
                "ports": [{"port": @4@ }, {"port": "http"}, {"protocol": "UDP", "port": 5000, "endPort": 5010}]},
               {"from": [{"ipBlock": {"cidr": "172.16.@5@.0/24", "except": ["172.16.@6@.128/25"]}}]}],
             "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]},
                        {"to": [{"podSelector": {"matchLabels": {"app": "app@7@"}}}], "ports": [{"port": "http"}]}]}
            """.Replace("@0@", I(i % 50), StringComparison.Ordinal).Replace("@1@", I((i + 1) % 50), StringComparison.Ordinal).Replace("@2@", I(i % 3), StringComparison.Ordinal).Replace("@3@", I((i + 2) % 50), StringComparison.Ordinal).Replace("@4@", I(80 + i % 5), StringComparison.Ordinal).Replace("172.16.@5@.0/24", i >= total ? "198.51.100.0/24" : $"172.16.{I(i % 200)}.0/24", StringComparison.Ordinal).Replace("172.16.@6@.128/25", i >= total ? "198.51.100.128/25" : $"172.16.{I(i % 200)}.128/25", StringComparison.Ordinal).Replace("@7@", I((i + 3) % 50), StringComparison.Ordinal))!;
        return new NetworkPolicyView(Obj("networking.k8s.io/v1", "NetworkPolicy", $"np{i}", $"ns{i % 10}", null, spec, null));
    }

    private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static JsonObject Obj(string apiVersion, string kind, string name, string? ns, JsonObject? labels, JsonObject? spec, JsonObject? status)
    {
        var meta = new JsonObject { ["name"] = name };
        if (ns is not null)
        {
            meta["namespace"] = ns;
        }
        if (labels is not null)
        {
            meta["labels"] = labels;
        }
        var o = new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind, ["metadata"] = meta };
        if (spec is not null)
        {
            o["spec"] = spec;
        }
        if (status is not null)
        {
            o["status"] = status;
        }
        return o;
    }

    private static void AssertNames(PolicyRuleset ruleset, string listing, string label)
    {
        var names = PolicyObjectNames.FromListing(listing);
        Assert.True(ruleset.Chains.Keys.ToHashSet().SetEquals(names.Chains),
            $"{label}: chains differ; kernel has {string.Join(" ", names.Chains.Except(ruleset.Chains.Keys))}, misses {string.Join(" ", ruleset.Chains.Keys.Except(names.Chains))}");
        Assert.True(ruleset.Sets.Keys.ToHashSet().SetEquals(names.Sets), $"{label}: sets differ:\n{listing}");
    }

    /// <summary>Element counts per set/map as the kernel lists them (nft -j), equal to the compiled ones.</summary>
    private static void AssertElementCounts(PolicyRuleset ruleset, PolicyNetns ns, string label)
    {
        var json = JsonNode.Parse(ns.Json())!["nftables"]!.AsArray();
        foreach (var item in json)
        {
            var set = item!["set"] ?? item["map"];
            if (set is null)
            {
                continue;
            }
            string name = (string)set["name"]!;
            int count = set["elem"] is JsonArray a ? a.Count : 0;
            Assert.True(ruleset.Sets[name].Elements.Count == count, $"{label}: {name} has {count} elements in the kernel, {ruleset.Sets[name].Elements.Count} compiled");
        }
    }

    private static List<string> CaseNames() =>
        [.. Directory.GetDirectories(GoldenRoot()).Order(StringComparer.Ordinal).Select(d => Path.GetFileName(d))];

    /// <summary>A golden case's NetworkPolicies over the e2e model (x, y, z × a, b, c on two nodes), plus its extra pods.</summary>
    private static PolicySnapshot ReadCase(string name)
    {
        var docs = Manifests.Parse(File.ReadAllText(Path.Combine(GoldenRoot(), name, "input.yaml")), name);
        var nodes = new[] { ("node-1", "10.244.1.0/24"), ("node-2", "10.244.2.0/24") }
            .Select(n => new NodeView(Obj("v1", "Node", n.Item1, null, null, new JsonObject { ["podCIDR"] = n.Item2 }, null))).ToList();
        var namespaces = new List<NamespaceView>();
        var pods = new List<PodView>();
        int k = 0;
        foreach (var nsName in (string[])["x", "y", "z", "web", "cli"])
        {
            namespaces.Add(new NamespaceView(Obj("v1", "Namespace", nsName, null, new JsonObject { [NamespaceView.NameLabel] = nsName, ["ns"] = nsName }, null, null)));
            foreach (var pod in (string[])["a", "b", "c"])
            {
                int node = k % 2 + 1;
                var ports = new JsonArray();
                foreach (var (pname, num, proto) in new[] { ("serve-80-tcp", 80, "TCP"), ("http", 8080 + k % 3, "TCP"), ("dns", 53, "UDP"), ("serve-81-sctp", 81, "SCTP") })
                {
                    ports.Add((JsonNode)new JsonObject { ["name"] = pname, ["containerPort"] = num, ["protocol"] = proto });
                }
                pods.Add(new PodView(Obj("v1", "Pod", pod, nsName, new JsonObject { ["pod"] = pod, ["app"] = k % 3 == 0 ? "web" : "client" },
                    new JsonObject { ["nodeName"] = $"node-{node}", ["containers"] = new JsonArray(new JsonObject { ["name"] = "c", ["ports"] = ports }) },
                    new JsonObject { ["phase"] = "Running", ["podIP"] = $"10.244.{node}.{10 + k}" })));
                k++;
            }
        }
        return new PolicySnapshot
        {
            Nodes = nodes,
            Namespaces = namespaces,
            Pods = pods,
            Policies = docs.Where(d => (string?)d["kind"] == "NetworkPolicy").Select(d => new NetworkPolicyView(d)).ToList(),
        };
    }

    private static string GoldenRoot([CallerFilePath] string thisFile = "")
    {
        string fromSource = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile) ?? "", "..", "Trellis.Core.Tests", "Policy", "golden"));
        if (Directory.Exists(fromSource))
        {
            return fromSource;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "Trellis.Core.Tests", "Policy", "golden");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("tests/Trellis.Core.Tests/Policy/golden not found");
    }

    /// <summary>A namespace "trl-plc-XXXXXXXX", deleted on Dispose; nft runs only inside it.</summary>
    private sealed class PolicyNetns : IDisposable
    {
        private readonly string _name = "trl-plc-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

        public PolicyNetns() => Cmd.Check("ip", "netns", "add", _name);

        public void Apply(string transaction, string label)
        {
            if (transaction.Length == 0)
            {
                return;
            }
            string path = Path.Combine(Path.GetTempPath(), $"trl-plc-{Guid.NewGuid():N}.nft");
            try
            {
                File.WriteAllText(path, transaction);
                var (code, stdout, stderr) = Cmd.Run("ip", "netns", "exec", _name, "nft", "-f", path);
                Assert.True(code == 0, $"{label}: nft -f rejected the transaction:\n{stderr}{stdout}\n--- transaction ---\n{(transaction.Length > 20000 ? transaction[..20000] : transaction)}");
            }
            finally
            {
                File.Delete(path);
            }
        }

        public string List(bool stateless = true)
        {
            var (code, stdout, stderr) = stateless
                ? Cmd.Run("ip", "netns", "exec", _name, "nft", "-s", "list", "table", "inet", "trellis-policy")
                : Cmd.Run("ip", "netns", "exec", _name, "nft", "list", "table", "inet", "trellis-policy");
            Assert.True(code == 0, stderr);
            return stdout;
        }

        public string Json()
        {
            var (code, stdout, stderr) = Cmd.Run("ip", "netns", "exec", _name, "nft", "-j", "list", "table", "inet", "trellis-policy");
            Assert.True(code == 0, stderr);
            return stdout;
        }

        public void Dispose() => Cmd.Run("ip", "netns", "del", _name);
    }
}
