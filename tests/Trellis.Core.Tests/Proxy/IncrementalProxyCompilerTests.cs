using CsCheck;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;
using static Trellis.Core.Tests.Proxy.ProxyInputs;

namespace Trellis.Core.Tests.Proxy;

public class IncrementalProxyCompilerTests
{
    /// <summary>
    /// Feeds the compiler the difference between two snapshots, as the agent's watch does: only Services and
    /// slices whose content changed are put, the vanished ones removed.
    /// </summary>
    private sealed class Feeder
    {
        private Dictionary<(string, string), string> _services = [];
        private Dictionary<string, string> _slices = new(StringComparer.Ordinal);

        public IncrementalProxyCompiler Compiler { get; } = new();

        public ProxyUpdate Step(ProxyInput input)
        {
            Compiler.SetGlobals(input);
            var services = new Dictionary<(string, string), string>();
            foreach (var s in Dedup(input).Services)
            {
                var id = (s.Namespace ?? "default", s.Name);
                string json = s.Json.ToJsonString();
                services[id] = json;
                if (!_services.TryGetValue(id, out var old) || old != json)
                {
                    Compiler.PutService(s);
                }
            }
            foreach (var id in _services.Keys.Where(k => !services.ContainsKey(k)))
            {
                Compiler.RemoveService(id.Item1, id.Item2);
            }
            var slices = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var s in input.EndpointSlices)
            {
                string key = $"{s.Namespace}/{s.Name}";
                string json = s.Json.ToJsonString();
                slices[key] = json;
                if (!_slices.TryGetValue(key, out var old) || old != json)
                {
                    Compiler.PutSlice(key, s);
                }
            }
            foreach (var key in _slices.Keys.Where(k => !slices.ContainsKey(k)))
            {
                Compiler.RemoveSlice(key);
            }
            _services = services;
            _slices = slices;
            return Compiler.Compile();
        }
    }

    /// <summary>The store holds one object per namespace/name: the first copy, as the full compiler keeps it.</summary>
    private static ProxyInput Dedup(ProxyInput input) => input with
    {
        Services = input.Services.GroupBy(s => (s.Namespace ?? "default", s.Name)).Select(g => g.First()).ToList(),
    };

    private static void AssertSame(ProxyRuleset full, ProxyRuleset incremental)
    {
        Assert.Equal(full.Dump(), incremental.Dump());
        Assert.Equal(full.Problems, incremental.Problems);
        Assert.Equal(full.ServicePorts.Select(Text), incremental.ServicePorts.Select(Text));
    }

    private static string Text(ProxyServicePort p) =>
        $"{p.Namespace}/{p.Name}/{p.PortName}/{p.Protocol}/{p.Port}/{p.NodePort} {string.Join(',', p.ClusterIPs)} {string.Join(',', p.ExternalIPs)} "
        + $"{string.Join(',', p.LoadBalancerIPs)} {string.Join(',', p.Endpoints)} {string.Join(',', p.ClusterEndpoints)} {string.Join(',', p.LocalEndpoints)} "
        + $"{p.ExternalPolicyLocal} {p.InternalPolicyLocal} {p.HealthCheckNodePort}";

    [Fact]
    public void Incremental_equals_full_and_its_transactions_converge_for_random_sequences() =>
        Gen.Int[0, 1000].Array[0, 120].Array[2, 6].Sample(steps =>
        {
            var feeder = new Feeder();
            var table = new FakeProxyTable();
            foreach (var choices in steps)
            {
                var input = FromChoices(choices);
                var update = feeder.Step(input);
                var full = ProxyCompiler.Compile(Dedup(input));
                AssertSame(full, feeder.Compiler.Ruleset);
                // The update's transaction takes the table from the previous ruleset to this one.
                table.Apply(update.Transaction);
                var fresh = new FakeProxyTable();
                fresh.Apply(full.Dump());
                Assert.Equal(fresh.Dump(), table.Dump());
            }
        }, iter: 300);

    public static TheoryData<string> GoldenCases()
    {
        var data = new TheoryData<string>();
        foreach (var name in ProxyGolden.CaseNames())
        {
            data.Add(name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void Incremental_equals_full_on_every_golden_case_built_one_object_at_a_time(string name)
    {
        var input = Dedup(ProxyGolden.Read(name));
        var feeder = new Feeder();
        var table = new FakeProxyTable();
        // Grow the snapshot one Service (with its slices) at a time, then shrink it again.
        var order = input.Services.ToList();
        for (int n = 0; n <= order.Count; n++)
        {
            table.Apply(feeder.Step(Subset(input, order.Take(n))).Transaction);
        }
        AssertSame(ProxyCompiler.Compile(input), feeder.Compiler.Ruleset);
        var fresh = new FakeProxyTable();
        fresh.Apply(ProxyCompiler.Compile(input).Dump());
        Assert.Equal(fresh.Dump(), table.Dump());
        for (int n = order.Count - 1; n >= 0; n--)
        {
            table.Apply(feeder.Step(Subset(input, order.Skip(order.Count - n))).Transaction);
        }
        AssertSame(ProxyCompiler.Compile(Subset(input, [])), feeder.Compiler.Ruleset);
    }

    private static ProxyInput Subset(ProxyInput input, IEnumerable<ServiceView> services)
    {
        var list = services.ToList();
        var names = list.Select(s => (s.Namespace ?? "default", s.Name)).ToHashSet();
        return input with
        {
            Services = list,
            EndpointSlices = input.EndpointSlices.Where(s => names.Contains((s.Namespace ?? "default", s.ServiceName ?? ""))).ToList(),
        };
    }

    [Fact]
    public void One_added_service_writes_only_its_own_objects()
    {
        var feeder = new Feeder();
        var services = Enumerable.Range(0, 200).Select(i => Service("a", $"s{i}", $"10.96.1.{i + 1}")).ToList();
        var slices = Enumerable.Range(0, 200).Select(i => Slice("a", $"s{i}", $"s{i}-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint($"10.244.1.{i + 1}"))).ToList();
        feeder.Step(Input(services, slices));
        services.Add(Service("a", "new", "10.96.2.1"));
        slices.Add(Slice("a", "new", "new-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.2.1")));
        var update = feeder.Step(Input(services, slices));
        var lines = update.Transaction.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.True(l.Contains("a/new/", StringComparison.Ordinal) || l.Contains("10.96.2.1", StringComparison.Ordinal), l));
        Assert.Single(update.AddedPorts);
        Assert.Empty(update.RemovedPorts);
        Assert.Equal("", feeder.Step(Input(services, slices)).Transaction);
    }

    [Fact]
    public void A_conflict_loser_takes_the_key_when_the_owner_goes()
    {
        var feeder = new Feeder();
        var a = Service("a", "first", "10.96.0.10", extraSpec: ",\"externalIPs\":[\"198.51.100.1\"]");
        var b = Service("b", "second", "10.96.0.11", extraSpec: ",\"externalIPs\":[\"198.51.100.1\"]");
        var slices = new[] { Slice("a", "first", "f-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.5")),
            Slice("b", "second", "s-1", "[{\"name\":\"http\",\"port\":8080}]", Endpoint("10.244.1.6")) };
        var table = new FakeProxyTable();
        table.Apply(feeder.Step(Input([a, b], slices)).Transaction);
        Assert.Contains(feeder.Compiler.Ruleset.Problems, p => p.StartsWith("Service b/second: service-ips 198.51.100.1 . tcp . 80 is already taken by a/first", StringComparison.Ordinal));
        var update = feeder.Step(Input([b], slices));
        table.Apply(update.Transaction);
        Assert.Empty(feeder.Compiler.Ruleset.Problems);
        Assert.Contains(table.Elements("service-ips"), e => e.StartsWith("198.51.100.1 . tcp . 80 : goto external-", StringComparison.Ordinal) && e.Contains("b/second", StringComparison.Ordinal));
        AssertSame(ProxyCompiler.Compile(Input([b], slices)), feeder.Compiler.Ruleset);
    }

    [Fact]
    public void Compile_before_globals_is_a_clear_error() =>
        Assert.Contains("SetGlobals", Assert.Throws<InvalidOperationException>(() => new IncrementalProxyCompiler().Compile()).Message, StringComparison.Ordinal);
}
