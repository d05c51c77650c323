using System.Net;
using System.Text.Json;
using Trellis.Core.Routing;

namespace Trellis.Core.Tests.Routing;

/// <summary>
/// testassets/routing/&lt;case&gt;/input.json (this node, the others, backend settings) compiles to expected.txt:
/// the desired state as <c>link</c>/<c>addr</c>/<c>route</c>/<c>neigh</c>/<c>fdb</c> lines in iproute2 argument
/// form, the pod MTU and the errors.
/// </summary>
public class RouteCompilerGoldenTests
{
    public static TheoryData<string> Cases => GoldenFiles.Cases("routing");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compiles_to_golden(string name)
    {
        var input = ReadInput(GoldenFiles.Dir("routing", name, "input.json"));
        var result = RouteCompiler.Compile(input);
        GoldenFiles.AssertText(GoldenFiles.Dir("routing", name, "expected.txt"), result.Dump());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Peer_order_does_not_change_the_output(string name)
    {
        var input = ReadInput(GoldenFiles.Dir("routing", name, "input.json"));
        var reversed = input with { Peers = input.Peers.Reverse().ToList() };
        Assert.Equal(RouteCompiler.Compile(input).Dump(), RouteCompiler.Compile(reversed).Dump());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Applying_the_plan_to_an_empty_node_converges(string name)
    {
        var result = RouteCompiler.Compile(ReadInput(GoldenFiles.Dir("routing", name, "input.json")));
        if (result.Desired is null)
        {
            return;
        }
        var kernel = new FakeRoutingKernel();
        kernel.Apply(RoutingDiff.Plan(result.Desired, kernel.State));
        Assert.Equal(result.Desired.Dump(), kernel.State.Dump());
        Assert.True(RoutingDiff.Plan(result.Desired, kernel.State).IsEmpty);
    }

    internal static RouteCompilerInput ReadInput(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        return new RouteCompilerInput
        {
            Self = Node(root.GetProperty("self")),
            UnderlayInterface = root.GetProperty("underlayInterface").GetString()!,
            Peers = root.TryGetProperty("peers", out var peers) ? peers.EnumerateArray().Select(Node).ToList() : [],
            Backend = root.GetProperty("backend").GetString() switch
            {
                "vxlan" => RoutingBackend.Vxlan,
                "host-gw" => RoutingBackend.HostGw,
                var other => throw new InvalidDataException($"{path}: backend '{other}'"),
            },
            DirectRouting = root.TryGetProperty("directRouting", out var dr) && dr.GetBoolean(),
            Vni = root.TryGetProperty("vni", out var vni) ? vni.GetInt32() : 1,
            Port = root.TryGetProperty("port", out var port) ? port.GetInt32() : 8472,
            UnderlayMtu = root.TryGetProperty("underlayMTU", out var mtu) ? mtu.GetInt32() : 1500,
        };

        static RouteNode Node(JsonElement e) => new(
            e.GetProperty("name").GetString()!,
            IPAddress.Parse(e.GetProperty("underlayIP").GetString()!),
            e.TryGetProperty("underlaySubnet", out var s) ? IPNetwork.Parse(s.GetString()!) : null,
            IPNetwork.Parse(e.GetProperty("podCIDR").GetString()!),
            e.TryGetProperty("vtepMAC", out var m) ? MacAddress.Parse(m.GetString()!) : null);
    }
}
