using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;

namespace Trellis.Core.Tests.Proxy;

/// <summary>
/// Golden cases under Proxy/golden/&lt;case&gt;/: input.yaml (a ProxyTestInput document with the node and options,
/// then Services and EndpointSlices as real manifests) and expected.nft (Dump(), then the problems as comments).
/// TRELLIS_UPDATE_GOLDEN=1 rewrites expected.nft — review the diff.
/// </summary>
internal static class ProxyGolden
{
    public static bool Update => Environment.GetEnvironmentVariable("TRELLIS_UPDATE_GOLDEN") == "1";

    public static string Root => FindRoot();

    public static List<string> CaseNames() =>
        [.. Directory.GetDirectories(Root).Order(StringComparer.Ordinal).Select(d => Path.GetFileName(d))];

    public static ProxyInput Read(string name) => Parse(File.ReadAllText(Path.Combine(Root, name, "input.yaml")), name);

    public static ProxyInput Parse(string yaml, string source)
    {
        var docs = Manifests.Parse(yaml, source);
        var options = docs.Single(d => (string?)d["kind"] == "ProxyTestInput");
        return new ProxyInput
        {
            NodeName = (string)options["nodeName"]!,
            NodeIPs = Strings(options, "nodeIPs").Select(IPAddress.Parse).ToList(),
            ClusterCidrs = Strings(options, "clusterCIDRs").Select(s => IPNetwork.Parse(s)).ToList(),
            ServiceCidrs = Strings(options, "serviceCIDRs").Select(s => IPNetwork.Parse(s)).ToList(),
            NodePortAddresses = Strings(options, "nodePortAddresses").Select(IPAddress.Parse).ToList(),
            MasqueradeAll = options["masqueradeAll"] is JsonValue v && v.GetValue<bool>(),
            Services = docs.Where(d => (string?)d["kind"] == "Service").Select(d => new ServiceView(d)).ToList(),
            EndpointSlices = docs.Where(d => (string?)d["kind"] == "EndpointSlice").Select(d => new EndpointSliceView(d)).ToList(),
        };
    }

    /// <summary>What expected.nft holds: the dump, then each problem as a comment line.</summary>
    public static string Text(ProxyRuleset ruleset) =>
        ruleset.Dump() + string.Concat(ruleset.Problems.Select(p => "# problem: " + p + "\n"));

    public static void AssertText(string path, string actual)
    {
        if (Update)
        {
            File.WriteAllText(path, actual);
            return;
        }
        Assert.True(File.Exists(path), $"missing golden file {path}; actual:\n{actual}");
        Assert.Equal(File.ReadAllText(path).ReplaceLineEndings("\n"), actual.ReplaceLineEndings("\n"));
    }

    private static IEnumerable<string> Strings(JsonObject o, string key) =>
        o[key] is JsonArray a ? a.Select(n => (string)n!) : [];

    private static string FindRoot([CallerFilePath] string thisFile = "")
    {
        string fromSource = Path.Combine(Path.GetDirectoryName(thisFile) ?? "", "golden");
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
        throw new DirectoryNotFoundException($"Proxy/golden not found from {thisFile} or {AppContext.BaseDirectory}");
    }
}
