using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;
using Trellis.Nftables.Tests.Support;

namespace Trellis.Nftables.Tests;

/// <summary>
/// The proxy compiler's transactions through the real nft, in a throwaway trl-pxc-* namespace: every golden
/// case's full sync is accepted, and a chain of partial syncs through all of them leaves exactly the chains and
/// sets the compiler wanted, as `nft list table` shows them.
/// </summary>
public sealed class ProxyRulesetKernelTests
{
    [KernelFact]
    public void Every_golden_full_sync_is_accepted_and_lists_the_compiled_names()
    {
        using var ns = new ProxyNetns();
        foreach (var name in CaseNames())
        {
            var ruleset = ProxyCompiler.Compile(ReadCase(name));
            ns.Apply(ruleset.Dump(), name);
            AssertNames(ruleset, ns.List(), name);
            ns.Apply("delete table ip trellis-proxy\n", name);
        }
    }

    [KernelFact]
    public void Partial_syncs_through_every_case_and_a_full_sync_after_restart_converge()
    {
        using var ns = new ProxyNetns();
        var cases = CaseNames();
        var rulesets = cases.Select(c => ProxyCompiler.Compile(ReadCase(c))).ToList();
        ns.Apply(rulesets[0].Dump(), cases[0]);
        AssertNames(rulesets[0], ns.List(), cases[0]);
        for (int i = 1; i < rulesets.Count; i++)
        {
            string label = $"{cases[i - 1]} -> {cases[i]}";
            ns.Apply(ProxyTransaction.Partial(rulesets[i - 1], rulesets[i]), label);
            string listing = ns.List();
            AssertNames(rulesets[i], listing, label);
            // The rules themselves, as the kernel prints them back: every numgen vmap and dnat target present.
            foreach (var rule in rulesets[i].Chains.Values.SelectMany(c => c.Rules).Where(r => r.StartsWith("meta l4proto", StringComparison.Ordinal)))
            {
                Assert.Contains(rule, listing, StringComparison.Ordinal);
            }
        }

        // An agent restart: it knows nothing but what the kernel lists, and goes back to the first case.
        var existing = ProxyTransaction.ParseListing(ns.List());
        ns.Apply(ProxyTransaction.Full(rulesets[0], existing), "full after restart");
        AssertNames(rulesets[0], ns.List(), "full after restart");

        // A full sync over itself is a no-op for the listing (sets refilled, chains rewritten identically).
        string before = ns.List();
        ns.Apply(ProxyTransaction.Full(rulesets[0], ProxyTransaction.ParseListing(before)), "full again");
        Assert.Equal(before, ns.List());
    }

    [KernelFact]
    public void Affinity_entries_survive_a_full_sync()
    {
        using var ns = new ProxyNetns();
        var ruleset = ProxyCompiler.Compile(ReadCase("affinity"));
        ns.Apply(ruleset.Dump(), "affinity");
        string set = ruleset.Sets.Values.First(s => s.IsDynamic).Name;
        ns.Apply($"add element ip trellis-proxy {set} {{ 192.0.2.1 }}\n", "learn");
        ns.Apply(ProxyTransaction.Full(ruleset, ProxyTransaction.ParseListing(ns.List())), "full");
        Assert.Contains("192.0.2.1", ns.List(), StringComparison.Ordinal);
    }

    private static void AssertNames(ProxyRuleset ruleset, string listing, string label)
    {
        var names = ProxyTransaction.ParseListing(listing);
        Assert.True(ruleset.Chains.Keys.ToHashSet().SetEquals(names.Chains),
            $"{label}: chains differ; kernel has {string.Join(" ", names.Chains.Except(ruleset.Chains.Keys))}, misses {string.Join(" ", ruleset.Chains.Keys.Except(names.Chains))}");
        Assert.True(ruleset.Sets.Keys.ToHashSet().SetEquals(names.Sets), $"{label}: sets differ:\n{listing}");
        Assert.True(ruleset.Sets.Values.Where(s => s.IsMap).Select(s => s.Name).ToHashSet().SetEquals(names.Maps), $"{label}: maps differ");
    }

    private static List<string> CaseNames() =>
        [.. Directory.GetDirectories(GoldenRoot()).Order(StringComparer.Ordinal).Select(d => Path.GetFileName(d))];

    private static ProxyInput ReadCase(string name)
    {
        var docs = Manifests.Parse(File.ReadAllText(Path.Combine(GoldenRoot(), name, "input.yaml")), name);
        var o = docs.Single(d => (string?)d["kind"] == "ProxyTestInput");
        IEnumerable<string> Strings(string key) => o[key] is JsonArray a ? a.Select(n => (string)n!) : [];
        return new ProxyInput
        {
            NodeName = (string)o["nodeName"]!,
            NodeIPs = Strings("nodeIPs").Select(IPAddress.Parse).ToList(),
            ClusterCidrs = Strings("clusterCIDRs").Select(s => IPNetwork.Parse(s)).ToList(),
            ServiceCidrs = Strings("serviceCIDRs").Select(s => IPNetwork.Parse(s)).ToList(),
            NodePortAddresses = Strings("nodePortAddresses").Select(IPAddress.Parse).ToList(),
            MasqueradeAll = o["masqueradeAll"] is JsonValue v && v.GetValue<bool>(),
            Services = docs.Where(d => (string?)d["kind"] == "Service").Select(d => new ServiceView(d)).ToList(),
            EndpointSlices = docs.Where(d => (string?)d["kind"] == "EndpointSlice").Select(d => new EndpointSliceView(d)).ToList(),
        };
    }

    private static string GoldenRoot([CallerFilePath] string thisFile = "")
    {
        string fromSource = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile) ?? "", "..", "Trellis.Core.Tests", "Proxy", "golden"));
        if (Directory.Exists(fromSource))
        {
            return fromSource;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "Trellis.Core.Tests", "Proxy", "golden");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("tests/Trellis.Core.Tests/Proxy/golden not found");
    }

    /// <summary>A namespace "trl-pxc-XXXXXXXX", deleted on Dispose; nft runs only inside it.</summary>
    private sealed class ProxyNetns : IDisposable
    {
        private readonly string _name = "trl-pxc-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

        public ProxyNetns() => Cmd.Check("ip", "netns", "add", _name);

        public void Apply(string transaction, string label)
        {
            if (transaction.Length == 0)
            {
                return;
            }
            string path = Path.Combine(Path.GetTempPath(), $"trl-pxc-{Guid.NewGuid():N}.nft");
            try
            {
                File.WriteAllText(path, transaction);
                var (code, stdout, stderr) = Cmd.Run("ip", "netns", "exec", _name, "nft", "-f", path);
                Assert.True(code == 0, $"{label}: nft -f rejected the transaction:\n{stderr}{stdout}\n--- transaction ---\n{transaction}");
            }
            finally
            {
                File.Delete(path);
            }
        }

        public string List()
        {
            var (code, stdout, stderr) = Cmd.Run("ip", "netns", "exec", _name, "nft", "list", "table", "ip", "trellis-proxy");
            Assert.True(code == 0, stderr);
            return stdout;
        }

        public void Dispose() => Cmd.Run("ip", "netns", "del", _name);
    }
}
