using System.Diagnostics;

namespace Trellis.Core.Tests.NodeFirewall;

/// <summary>
/// Runs the real <c>nft</c> on compiled text, inside a throwaway network namespace (<c>unshare --net</c>) so
/// that not even a check touches the host's ruleset. Tests using it skip, with the reason, where nft or
/// root is missing.
/// </summary>
internal static class Nft
{
    private static readonly Lazy<string?> s_skipReason = new(Probe);

    public static string? SkipReason => s_skipReason.Value;

    /// <summary>Runs a bash script in a fresh netns with the given files available as $1, $2, …; returns exit code and output.</summary>
    public static (int ExitCode, string Output) InFreshNetns(string script, params string[] files)
    {
        var paths = new List<string>();
        try
        {
            foreach (var text in files)
            {
                string path = Path.Combine(Path.GetTempPath(), $"trellis-nft-{Guid.NewGuid():N}.nft");
                File.WriteAllText(path, text);
                paths.Add(path);
            }
            return Run("unshare", ["--net", "bash", "-c", script, "bash", .. paths]);
        }
        finally
        {
            foreach (var p in paths)
            {
                File.Delete(p);
            }
        }
    }

    /// <summary><c>nft -c -f</c>: parse and let the kernel validate the batch, then abort it.</summary>
    public static (int ExitCode, string Output) Check(string text) => InFreshNetns("nft -c -f \"$1\"", text);

    private static (int ExitCode, string Output) Run(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        using var p = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "needs Linux";
        }
        if (!new[] { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" }.Any(File.Exists))
        {
            return "nft (Debian package nftables) is not installed";
        }
        if (!Environment.IsPrivilegedProcess)
        {
            return "needs root: nft -c talks to the kernel, in a network namespace of its own";
        }
        try
        {
            var (code, output) = InFreshNetns("nft list ruleset");
            return code == 0 ? null : "cannot run nft in a fresh network namespace: " + output.Trim();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return "cannot run unshare: " + e.Message;
        }
    }
}

public sealed class NftFactAttribute : FactAttribute
{
    public NftFactAttribute()
    {
        if (Nft.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

public sealed class NftTheoryAttribute : TheoryAttribute
{
    public NftTheoryAttribute()
    {
        if (Nft.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}
