using System.Net;
using System.Text.Json;
using Trellis.Core.NodeFirewall;
using Trellis.Core.Tests.Routing;

namespace Trellis.Core.Tests.NodeFirewall;

/// <summary>
/// testassets/nodefirewall/&lt;case&gt;/input.json compiles to exactly expected.nft, and that text is a
/// transaction the real nft accepts (<c>nft -c -f</c>, in a throwaway netns).
/// </summary>
public class NodeFirewallGoldenTests
{
    public static TheoryData<string> Cases => GoldenFiles.Cases("nodefirewall");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compiles_to_golden(string name)
    {
        var (input, mode) = ReadInput(name);
        GoldenFiles.AssertText(GoldenFiles.Dir("nodefirewall", name, "expected.nft"), NodeFirewallCompiler.Compile(input, mode));
    }

    [NftTheory]
    [MemberData(nameof(Cases))]
    public void Golden_text_passes_nft_check(string name)
    {
        string text = File.ReadAllText(GoldenFiles.Dir("nodefirewall", name, "expected.nft"));
        var (code, output) = Nft.Check(text);
        Assert.True(code == 0, $"nft -c -f rejected {name}/expected.nft:\n{output}");
    }

    [NftTheory]
    [MemberData(nameof(Cases))]
    public void Both_modes_apply_over_any_earlier_table_and_leave_exactly_the_compiled_one(string name)
    {
        var (input, _) = ReadInput(name);
        string refill = NodeFirewallCompiler.Compile(input, NftApplyMode.Refill);
        string recreate = NodeFirewallCompiler.Compile(input, NftApplyMode.Recreate);
        // The richest table first, so the refill has to remove elements, rules and a family.
        var (dualInput, _) = ReadInput("vxlan-dual-stack");
        string before = NodeFirewallCompiler.Compile(dualInput);
        var (code, output) = Nft.InFreshNetns(
            """
            set -e
            nft -f "$2"; nft -f "$1"; nft -f "$1"; a=$(nft list table inet trellis-node)
            nft delete table inet trellis-node
            nft -f "$1"; b=$(nft list table inet trellis-node)
            nft -f "$3"; c=$(nft list table inet trellis-node)
            [ "$a" = "$b" ] || { echo "refill over an old table differs from a fresh one"; echo "$a"; echo "$b"; exit 1; }
            [ "$c" = "$b" ] || { echo "recreate differs from refill"; echo "$c"; exit 1; }
            """, refill, before, recreate);
        Assert.True(code == 0, output);
    }

    internal static (NodeFirewallInput Input, NftApplyMode Mode) ReadInput(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(GoldenFiles.Dir("nodefirewall", name, "input.json")));
        var root = doc.RootElement;
        var input = new NodeFirewallInput
        {
            ClusterCidrs = [.. root.GetProperty("clusterCIDRs").EnumerateArray().Select(e => IPNetwork.Parse(e.GetString()!))],
            PodCidrs = [.. root.GetProperty("podCIDRs").EnumerateArray().Select(e => IPNetwork.Parse(e.GetString()!))],
            NodeIps = [.. root.GetProperty("nodeIPs").EnumerateArray().Select(e => IPAddress.Parse(e.GetString()!))],
            VxlanPort = root.GetProperty("vxlanPort").ValueKind == JsonValueKind.Null ? null : root.GetProperty("vxlanPort").GetInt32(),
            Masquerade = !root.TryGetProperty("masquerade", out var m) || m.GetBoolean(),
        };
        var mode = root.TryGetProperty("mode", out var md) && md.GetString() == "recreate" ? NftApplyMode.Recreate : NftApplyMode.Refill;
        return (input, mode);
    }
}
