using System.Diagnostics;

namespace Trellis.Cni.Tests.Infrastructure;

/// <summary>Where the repository and the built executables are; builds them once if missing.</summary>
public static class Repo
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Trellis.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("Trellis.slnx not found above " + AppContext.BaseDirectory);
    });

    private static readonly Lazy<string> s_bin = new(() =>
    {
        string bin = Path.Combine(Root, "artifacts", "bin");
        // scripts/build.sh is a no-op when the stamp matches, so calling it always keeps the binary fresh.
        var psi = new ProcessStartInfo("bash", [Path.Combine(Root, "scripts", "build.sh")]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException("scripts/build.sh failed:\n" + err);
        }
        return bin;
    });

    public static string Root => s_root.Value;

    /// <summary>artifacts/bin, with trellis-cni (NativeAOT) and trellis built.</summary>
    public static string BinDir => Environment.GetEnvironmentVariable("TRELLIS_BIN_DIR") ?? s_bin.Value;

    public static string CniPlugin => Environment.GetEnvironmentVariable("TRELLIS_CNI_BIN") ?? Path.Combine(BinDir, "trellis-cni");

    /// <summary>Debian's containernetworking-plugins.</summary>
    public const string ReferencePluginDir = "/usr/lib/cni";
}
