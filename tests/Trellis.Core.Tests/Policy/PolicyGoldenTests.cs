using Trellis.Core.Nft;
using Trellis.Core.Policies;

namespace Trellis.Core.Tests.Policies;

/// <summary>
/// Golden cases under Policy/golden/&lt;case&gt;/: input.yaml (see <see cref="PolicyHarness.ParseCase"/>) and
/// expected.nft (the full sync for <c>nodeName</c>, then problems as comments). TRELLIS_UPDATE_GOLDEN=1 rewrites
/// expected.nft — review the diff. Each case also pins the evaluator to hand-written verdicts and holds the
/// tracer (over every node's compiled ruleset) to the evaluator on every packet of its table.
/// </summary>
public class PolicyGoldenTests
{
    public static TheoryData<string> Cases => new(PolicyHarness.CaseNames());

    private static (PolicyHarness Harness, string Node, List<string> Expect) Load(string name)
    {
        var (snapshot, node, expect) = PolicyHarness.ParseCase(File.ReadAllText(Path.Combine(PolicyHarness.Root, name, "input.yaml")), name);
        return (new PolicyHarness(snapshot), node, expect);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compiles_to_golden(string name)
    {
        var (h, node, _) = Load(name);
        var ruleset = h.Rulesets[node];
        string text = ruleset.Dump() + string.Concat(ruleset.Problems.Select(p => "# problem: " + p + "\n"));
        string path = Path.Combine(PolicyHarness.Root, name, "expected.nft");
        if (Environment.GetEnvironmentVariable("TRELLIS_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(path, text);
            return;
        }
        Assert.True(File.Exists(path), $"missing {path}; actual:\n{text}");
        Assert.Equal(File.ReadAllText(path).ReplaceLineEndings("\n"), text);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_evaluator_gives_the_expected_verdicts(string name)
    {
        var (h, _, expect) = Load(name);
        Assert.NotEmpty(expect);
        foreach (var line in expect)
        {
            var (packet, allowed) = h.ParseExpect(line);
            var decision = PolicyEvaluator.Evaluate(h.Index, packet.Src, packet.Dst, packet.Protocol, packet.Port);
            Assert.True(decision.Allowed == allowed, $"{name}: {line}: evaluator says\n{decision.Explain()}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Traced_verdicts_equal_the_evaluator_on_every_packet(string name)
    {
        var (h, _, expect) = Load(name);
        int checkedPackets = 0;
        foreach (var packet in h.AllPackets().Concat(expect.Select(l => h.ParseExpect(l).Packet)))
        {
            bool evaluated = h.Evaluate(packet);
            var (traced, why) = h.Trace(packet);
            Assert.True(evaluated == traced,
                $"{name}: {packet}: evaluator {(evaluated ? "allows" : "denies")}, tracer {(traced ? "accepts" : "drops")}\n{why}\n"
                + PolicyEvaluator.Evaluate(h.Index, packet.Src, packet.Dst, packet.Protocol, packet.Port).Explain());
            checkedPackets++;
        }
        Assert.True(checkedPackets > 100);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Full_sync_applies_to_itself_and_compiling_twice_gives_an_empty_partial(string name)
    {
        var (h, node, _) = Load(name);
        var a = h.Rulesets[node];
        var b = PolicyCompiler.Compile(h.Snapshot, node);
        Assert.Equal(a.Dump(), b.Dump());
        Assert.Equal("", PolicyTransaction.Partial(a, b));
        var model = new NftModel();
        model.Apply(a.Dump());
        string once = model.Dump();
        model.Apply(PolicyTransaction.Full(a, PolicyObjectNames.FromListing(once)));
        Assert.Equal(once, model.Dump());
    }
}
