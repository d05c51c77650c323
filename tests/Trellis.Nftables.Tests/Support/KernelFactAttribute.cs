namespace Trellis.Nftables.Tests.Support;

/// <summary>A fact that needs root, network namespaces and nft; skipped with the reason when any is missing.</summary>
public sealed class KernelFactAttribute : FactAttribute
{
    public KernelFactAttribute()
    {
        if (KernelSupport.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

internal static class KernelSupport
{
    private static readonly Lazy<string?> s_skipReason = new(Probe);

    public static string? SkipReason => s_skipReason.Value;

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "needs Linux";
        }
        if (!Environment.IsPrivilegedProcess)
        {
            return "needs root (creates network namespaces)";
        }
        if (!new[] { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" }.Any(File.Exists))
        {
            return "nft (Debian package nftables) is not installed";
        }
        try
        {
            using var probe = new TestNetns();
            var (code, _, stderr) = probe.Nft("list", "ruleset");
            return code == 0 ? null : "cannot run nft in a network namespace: " + stderr.Trim();
        }
#pragma warning disable CA1031 // any failure means "cannot run kernel tests here"
        catch (Exception e)
#pragma warning restore CA1031
        {
            return "cannot create a network namespace: " + e.Message;
        }
    }
}
