using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Lab.Tests.NetworkPolicy;

/// <summary>The case data and the truth-table logic, without a lab (no root needed).</summary>
public sealed class NetpolCaseDataTests
{
    [Fact]
    public void EveryUpstreamConnectivityTestIsACase()
    {
        var all = NetpolCase.All;
        // network_policy.go: 42 tests "between server and client", 3 "using UDP", 3 "using SCTP".
        Assert.Equal(42, all.Count(c => c.Suite == "tcp"));
        Assert.Equal(3, all.Count(c => c.Suite == "udp"));
        Assert.Equal(3, all.Count(c => c.Suite == "sctp"));
        Assert.Equal(all.Count, all.Select(c => c.Id).Distinct().Count());
        Assert.All(all, c => Assert.StartsWith("should ", c.Name, StringComparison.Ordinal));
        Assert.All(all, c => Assert.StartsWith(c.Suite + "-", c.File, StringComparison.Ordinal));
        // Every upstream check is there; extras are marked, never the only check of a step.
        Assert.All(all.SelectMany(c => c.Steps), s => Assert.Contains(s.Expect, e => !e.Extra));
        Assert.Equal(10, all.Count(c => c.Steps.Count > 1)); // the multi-step ones: policy, pod label and namespace label updates, deletes
    }

    public static TheoryData<string> Files => [.. NetpolCase.All.Select(c => c.File)];

    /// <summary>Every policy a case applies passes Trellis' own admission validation (after IP templates are filled in).</summary>
    [Theory]
    [MemberData(nameof(Files))]
    public void PoliciesAreValidNetworkPolicies(string file)
    {
        var c = NetpolCase.All.Single(x => x.File == file);
        foreach (var step in c.Steps.Where(s => s.Apply is not null))
        {
            string yaml = step.Apply!.Replace("{{ip x/a}}", "10.244.1.2", StringComparison.Ordinal)
                .Replace("{{ip x/b}}", "10.244.2.3", StringComparison.Ordinal).Replace("{{ip y/b}}", "10.244.3.4", StringComparison.Ordinal);
            Assert.DoesNotContain("{{", yaml, StringComparison.Ordinal);
            var objects = Manifests.Parse(yaml, file);
            Assert.NotEmpty(objects);
            foreach (var obj in objects)
            {
                Assert.Equal("NetworkPolicy", obj["kind"]!.GetValue<string>());
                Assert.Contains(obj["metadata"]!["namespace"]!.GetValue<string>(), TruthTable.Namespaces);
                var errors = ObjectValidator.Validate(obj);
                Assert.True(errors.Count == 0, $"{file}: {string.Join("; ", errors)}");
                // Upstream always sets policyTypes (SetSpecIngressRules/SetSpecEgressRules), so inference plays no part.
                Assert.NotNull(obj["spec"]!["policyTypes"]);
            }
        }
    }

    [Fact]
    public void RulesApplyInOrderOverAllAllowed()
    {
        var t = TruthTable.Expected([ReachRule.Parse("deny * -> x/a")!, ReachRule.Parse("allow x/b -> x/a")!]);
        Assert.False(t["y/c", "x/a"]);
        Assert.False(t["x/c", "x/a"]);
        Assert.True(t["x/b", "x/a"]);
        Assert.True(t["x/a", "x/b"]);
        var ns = TruthTable.Expected([ReachRule.Parse("deny x -> */b")!]);
        Assert.False(ns["x/a", "z/b"]);
        Assert.True(ns["x/a", "z/c"]);
        Assert.True(ns["y/a", "z/b"]);
    }

    /// <summary>
    /// Upstream spells out the expected table of "should support denying of egress traffic on the client side"
    /// in a comment (network_policy.go); the case's rules must give exactly that grid.
    /// </summary>
    [Fact]
    public void ClientSideEgressCaseGivesUpstreamsPrintedTable()
    {
        string[] upstream =
        [
            "X X X . X X X X X",
            ". . . X X . . . .",
            ". . . X X . . . .",
            ". . . X X . . . .",
            ". . . X X . . . .",
            ". . . X X . . . .",
            ". . . X X . . . .",
            ". . . X X . . . .",
            ". . . X X . . . .",
        ];
        var c = NetpolCase.All.Single(x => x.Name.StartsWith("should support denying of egress traffic on the client side", StringComparison.Ordinal));
        var table = c.Steps[0].Expect[0].Table();
        for (int i = 0; i < 9; i++)
        {
            string[] cells = upstream[i].Split(' ');
            for (int j = 0; j < 9; j++)
            {
                if (i != j)
                {
                    Assert.True(table[TruthTable.Pods[i], TruthTable.Pods[j]] == (cells[j] == "."), $"{TruthTable.Pods[i]} -> {TruthTable.Pods[j]}");
                }
            }
        }
    }

    [Fact]
    public void DiffShowsUpstreamsTablesAndNamesTheWrongPairs()
    {
        var expected = TruthTable.Expected([ReachRule.Parse("deny * -> x")!]);
        var results = new JsonArray();
        foreach (string from in TruthTable.Pods)
        {
            foreach (string to in TruthTable.Pods.Where(t => t != from))
            {
                // Observed: x/b still reachable from y/a, everything else as expected; z/c -> x/a not reported.
                if (from == "z/c" && to == "x/a")
                {
                    continue;
                }
                bool connected = !to.StartsWith("x/", StringComparison.Ordinal) || (from == "y/a" && to == "x/b");
                results.Add(new JsonObject { ["from"] = from, ["to"] = to, ["connected"] = connected });
            }
        }
        var observed = TruthTable.Observed(new JsonObject { ["port"] = 80, ["protocol"] = "tcp", ["results"] = results });
        Assert.Equal([("y/a", "x/b"), ("z/c", "x/a")], expected.Mismatches(observed));
        string diff = expected.Diff(observed);
        Assert.Contains("-\tx/a\tx/b\tx/c\ty/a\ty/b\ty/c\tz/a\tz/b\tz/c\n", diff, StringComparison.Ordinal);
        Assert.Contains("y/a\tX\t.\tX\t-\t.\t.\t.\t.\t.\n", diff, StringComparison.Ordinal); // observed row
        Assert.Contains("y/a -> x/b: expected blocked, observed connected", diff, StringComparison.Ordinal);
        Assert.Contains("z/c -> x/a: expected blocked, observed not reported", diff, StringComparison.Ordinal);
        Assert.False(observed.AllAllowed);
    }

    [Theory]
    [InlineData("name: n\nsuite: tcp\nsteps: []\n", "steps: must have at least one step")]
    [InlineData("name: n\nsuite: ip\nsteps: []\n", "suite: 'ip' is not one of tcp, udp, sctp")]
    [InlineData("name: n\nsuite: tcp\nsteps: [{expect: [{port: 80, protocols: [TCP], reach: [deny * -> w]}]}]\n", "steps[0].expect[0].reach[0]: 'deny * -> w' is not")]
    [InlineData("name: n\nsuite: tcp\nsteps: [{expect: [{port: 82, protocols: [TCP], reach: []}]}]\n", "steps[0].expect[0].port: '82' is not a served port")]
    [InlineData("name: n\nsuite: tcp\nsteps: [{labelPod: {x: {a: b}}, expect: [{port: 80, protocols: [TCP], reach: []}]}]\n", "steps[0].labelPod.x: is not a pod")]
    [InlineData("name: n\nsuite: tcp\nsteps: [{aply: x, expect: []}]\n", "steps[0].aply: unknown field")]
    [InlineData("suite: tcp\nsteps: []\n", "name: required")]
    public void BadCaseFilesNameTheField(string yaml, string error)
    {
        var e = Assert.Throws<InvalidDataException>(() => NetpolCase.Parse(yaml, "bad.yaml"));
        Assert.Contains("bad.yaml: " + error, e.Message, StringComparison.Ordinal);
    }
}
