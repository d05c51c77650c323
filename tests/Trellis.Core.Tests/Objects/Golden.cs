using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Objects;

/// <summary>
/// Golden files under testassets/objects, found from this source file (no copy step in the project file) or,
/// failing that, by walking up from the test binary. Set TRELLIS_UPDATE_GOLDEN=1 to rewrite expected files
/// from the current output — then review the diff.
/// </summary>
internal static class Golden
{
    public static readonly DateTimeOffset CreatedAt = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public static bool Update => Environment.GetEnvironmentVariable("TRELLIS_UPDATE_GOLDEN") == "1";

    public static string Root { get; } = FindRoot();

    public static string Dir(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>The case directories (names) under a folder, for [MemberData].</summary>
    public static TheoryData<string> Cases(string folder)
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(Dir(folder)).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(dir));
        }
        return data;
    }

    /// <summary>Compares text with a golden file (line endings normalised), or rewrites it in update mode.</summary>
    public static void AssertText(string path, string actual)
    {
        if (Update)
        {
            File.WriteAllText(path, actual);
            return;
        }
        Assert.True(File.Exists(path), $"missing golden file {path}; actual:\n{actual}");
        string expected = File.ReadAllText(path).ReplaceLineEndings("\n");
        Assert.Equal(expected, actual.ReplaceLineEndings("\n"));
    }

    /// <summary>Semantic JSON comparison (key order ignored, 80 == 80.0), showing the actual JSON on failure.</summary>
    public static void AssertJson(string path, JsonNode actual)
    {
        string actualText = ObjectPrinter.ToJson(actual);
        if (Update)
        {
            File.WriteAllText(path, actualText);
            return;
        }
        Assert.True(File.Exists(path), $"missing golden file {path}; actual:\n{actualText}");
        var expected = JsonNode.Parse(File.ReadAllText(path));
        string? diff = JsonDiff(expected, actual, "$");
        Assert.True(diff is null, $"{path}: differs at {diff}; actual:\n{actualText}");
    }

    public static string? JsonDiff(JsonNode? a, JsonNode? b, string path)
    {
        switch (a, b)
        {
            case (JsonObject oa, JsonObject ob):
                foreach (var (k, v) in oa)
                {
                    if (!ob.ContainsKey(k))
                    {
                        return $"{path}.{k} (missing)";
                    }
                    if (JsonDiff(v, ob[k], $"{path}.{k}") is { } d)
                    {
                        return d;
                    }
                }
                return ob.Select(p => p.Key).FirstOrDefault(k => !oa.ContainsKey(k)) is { } extra ? $"{path}.{extra} (unexpected)" : null;
            case (JsonArray aa, JsonArray ab):
                if (aa.Count != ab.Count)
                {
                    return $"{path} (length {aa.Count} vs {ab.Count})";
                }
                for (int i = 0; i < aa.Count; i++)
                {
                    if (JsonDiff(aa[i], ab[i], $"{path}[{i}]") is { } d)
                    {
                        return d;
                    }
                }
                return null;
            default:
                return JsonNode.DeepEquals(a, b) || (a is JsonValue && b is JsonValue && a.ToJsonString() == b.ToJsonString()) ? null : $"{path} ({a?.ToJsonString()} vs {b?.ToJsonString()})";
        }
    }

    private static string FindRoot([CallerFilePath] string thisFile = "")
    {
        string fromSource = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile) ?? "", "..", "testassets", "objects"));
        if (Directory.Exists(fromSource))
        {
            return fromSource;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "Trellis.Core.Tests", "testassets", "objects");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
            candidate = Path.Combine(dir.FullName, "testassets", "objects");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException("testassets/objects not found from " + thisFile + " or " + AppContext.BaseDirectory);
    }
}
