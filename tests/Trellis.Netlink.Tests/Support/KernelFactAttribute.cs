namespace Trellis.Netlink.Tests.Support;

/// <summary>A fact that needs root and network namespaces; skipped with the reason when they are unavailable.</summary>
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
        try
        {
            using var probe = new TestNetns();
            return null;
        }
#pragma warning disable CA1031 // any failure means "cannot run kernel tests here"
        catch (Exception e)
#pragma warning restore CA1031
        {
            return "cannot create a network namespace: " + e.Message;
        }
    }
}
