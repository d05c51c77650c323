using Trellis.Store.Tests.Contract;

namespace Trellis.Store.Tests.Etcd;

/// <summary>Whether this machine can run the etcd tests: the etcd binary (Debian <c>etcd-server</c>) and, for netns tests, root and iproute2.</summary>
internal static class EtcdPrerequisites
{
    private static readonly Lazy<string?> s_binary = new(() => Which("etcd"));

    /// <summary>The etcd executable, or null when it is not installed.</summary>
    public static string? Binary => s_binary.Value;

    public static string? SkipReason =>
        Binary is null ? "etcd is not installed (Debian: apt-get install etcd-server etcd-client; scripts/install-deps.sh installs it)" : null;

    public static string? NetnsSkipReason =>
        SkipReason
        ?? (Environment.UserName != "root" ? "needs root to create a network namespace" : null)
        ?? (Which("ip") is null ? "needs iproute2 (ip netns)" : null);

    private static string? Which(string program)
    {
        string path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (string dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/usr/bin", "/sbin", "/bin"]))
        {
            string candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}

/// <summary>Skips the whole contract suite of a class when etcd is not installed.</summary>
public sealed class EtcdRequiredAttribute : ContractPrerequisiteAttribute
{
    public override string? SkipReason => EtcdPrerequisites.SkipReason;
}

/// <summary>A test that starts real etcd members; skipped when etcd is not installed.</summary>
public sealed class EtcdFactAttribute : FactAttribute
{
    public EtcdFactAttribute()
    {
        if (EtcdPrerequisites.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A test that runs etcd inside a throwaway network namespace; needs etcd, root and iproute2.</summary>
public sealed class EtcdNetnsFactAttribute : FactAttribute
{
    public EtcdNetnsFactAttribute()
    {
        if (EtcdPrerequisites.NetnsSkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}
