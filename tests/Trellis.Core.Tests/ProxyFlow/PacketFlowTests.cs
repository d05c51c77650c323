using Trellis.Core.Nft;
using Trellis.Core.Proxy;

namespace Trellis.Core.Tests.ProxyFlow;

/// <summary>
/// kube-proxy's packet-flow tests (pkg/proxy/nftables/proxier_test.go, runPacketFlowTests) as data under
/// ProxyFlow/cases: each case is compiled with <see cref="ProxyCompiler"/>, loaded into an <see cref="NftModel"/>
/// and every packet traced with <see cref="NftTracer"/>. Multi-step cases are also traced on the model a running
/// agent would have: Full(step 1), then Partial(previous, next) for each later step.
/// </summary>
public sealed class PacketFlowTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (string name in FlowCases.FileNames())
        {
            data.Add(name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Packets_go_where_kube_proxy_sends_them(string file)
    {
        var failures = new List<string>();
        foreach (var scenario in FlowCases.Load(file))
        {
            ProxyRuleset? previous = null;
            NftModel? running = null;
            foreach (var step in scenario.Steps)
            {
                string label = $"{scenario} step {step.Number}";
                var ruleset = ProxyCompiler.Compile(scenario.Topology.Input(step.Objects));
                Assert.True(ruleset.Problems.SequenceEqual(scenario.ExpectedProblems),
                    $"{label}: problems\n  " + string.Join("\n  ", ruleset.Problems));

                failures.AddRange(FlowRunner.Check(FlowRunner.Load(ruleset.Dump()), step.Flows, label + " (full sync)"));

                if (previous is null)
                {
                    running = FlowRunner.Load(ProxyTransaction.Full(ruleset, null));
                }
                else
                {
                    running!.Apply(ProxyTransaction.Partial(previous, ruleset));
                    failures.AddRange(FlowRunner.Check(running, step.Flows, label + " (after partial sync)"));
                    // The partial sync must leave exactly what a fresh full sync builds, not just route these packets alike.
                    Assert.Equal(FlowRunner.Load(ruleset.Dump()).Dump(), running.Dump());
                }
                previous = ruleset;
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Every_case_file_has_flows_and_names_its_upstream_test()
    {
        var files = FlowCases.FileNames();
        Assert.True(files.Count >= 20, $"only {files.Count} case files");
        foreach (string file in files)
        {
            foreach (var scenario in FlowCases.Load(file))
            {
                Assert.False(string.IsNullOrEmpty(scenario.Upstream), $"{scenario}: no upstream test named");
                Assert.All(scenario.Steps, s => Assert.NotEmpty(s.Flows));
            }
        }
    }

    [Fact]
    public void The_runner_reports_a_wrong_expectation()
    {
        // Guards the harness itself: a flow whose expectation is wrong must fail, with the trace in the message.
        var scenario = FlowCases.Load("clusterip-general")[0];
        var model = FlowRunner.Load(ProxyCompiler.Compile(scenario.Topology.Input(scenario.Steps[0].Objects)).Dump());
        var flow = scenario.Steps[0].Flows.First(f => f.Name == "simple clusterIP");
        Assert.Empty(FlowRunner.Check(model, [flow], "ok"));
        var wrongEndpoint = FlowRunner.Check(model, [flow with { Output = "10.180.0.9:80" }], "wrong");
        Assert.Single(wrongEndpoint);
        Assert.Contains("accept -> 10.180.0.1:80", wrongEndpoint[0], StringComparison.Ordinal);
        Assert.Single(FlowRunner.Check(model, [flow with { Masq = true }], "wrong masq"));
    }

    [Fact]
    public void Session_affinity_pins_a_client_that_is_in_the_affinity_set()
    {
        // kube-proxy's affinity: the endpoint chain records the client (update @affinity-…), and the service chain
        // sends a recorded client straight to that endpoint. The tracer reads the set as the model holds it, so
        // fill it the way the packet path would and check the client no longer fans out.
        var scenario = FlowCases.Load("session-affinity")[0];
        var ruleset = ProxyCompiler.Compile(scenario.Topology.Input(scenario.Steps[0].Objects));
        var model = FlowRunner.Load(ruleset.Dump());
        var flow = scenario.Steps[0].Flows.First(f => f.Name == "pod to ClusterIP, no affinity yet");
        Assert.Equal("10.180.0.1:80, 10.180.0.2:80", FlowRunner.Trace(model, flow).Output);

        string set = ruleset.Sets.Keys.Single(k => k.StartsWith("affinity-", StringComparison.Ordinal) && k.EndsWith("__10.180.0.2/80", StringComparison.Ordinal));
        model.Apply($"add element ip trellis-proxy {set} {{ 10.0.0.2 }}");
        Assert.Equal("10.180.0.2:80", FlowRunner.Trace(model, flow).Output);
        // Another client is not pinned.
        Assert.Equal("10.180.0.1:80, 10.180.0.2:80", FlowRunner.Trace(model, flow with { From = System.Net.IPAddress.Parse("10.0.0.3") }).Output);
        // A full sync keeps the affinity state (kube-proxy never flushes affinity sets) …
        model.Apply(ProxyTransaction.Full(ruleset, null));
        Assert.Equal("10.180.0.2:80", FlowRunner.Trace(model, flow).Output);
    }
}
