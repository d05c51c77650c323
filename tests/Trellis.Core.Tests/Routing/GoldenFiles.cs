using System.Runtime.CompilerServices;

namespace Trellis.Core.Tests.Routing;

/// <summary>
/// Golden files under testassets/&lt;folder&gt; (routing, nodefirewall), found from this source file or, failing
/// that, by walking up from the test binary. TRELLIS_UPDATE_GOLDEN=1 rewrites expected files from the current
/// output — then review the diff.
/// </summary>
internal static class GoldenFiles
{
    public static bool Update => Environment.GetEnvironmentVariable("TRELLIS_UPDATE_GOLDEN") == "1";

    public static string Dir(string folder, params string[] parts) => Path.Combine([FindRoot(folder), .. parts]);

    public static TheoryData<string> Cases(string folder) => new(CaseNames(folder));

    public static List<string> CaseNames(string folder) =>
        [.. Directory.GetDirectories(FindRoot(folder)).Order(StringComparer.Ordinal).Select(d => Path.GetFileName(d))];

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

    private static string FindRoot(string folder, [CallerFilePath] string thisFile = "")
    {
        string fromSource = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile) ?? "", "..", "testassets", folder));
        if (Directory.Exists(fromSource))
        {
            return fromSource;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "Trellis.Core.Tests", "testassets", folder);
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException($"testassets/{folder} not found from {thisFile} or {AppContext.BaseDirectory}");
    }
}
