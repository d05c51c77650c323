namespace Trellis.Cni.Tests.Containerd;

/// <summary>What a containerd test needs from the machine, checked once. Debian packages:
/// containerd, runc, containernetworking-plugins, busybox-static, iproute2, util-linux.</summary>
public static class ContainerdPrerequisites
{
    public const string ReferencePluginsEnv = "CNI_REFERENCE_PLUGINS_DIR";
    public static readonly string[] ReferencePlugins = ["loopback", "bridge", "host-local", "portmap"];

    private static readonly Lazy<string?> s_skipReason = new(Check);

    /// <summary>Null when everything is present, else why the containerd tests skip.</summary>
    public static string? SkipReason => s_skipReason.Value;

    /// <summary>Directory holding the reference plugins (Debian: /usr/lib/cni).</summary>
    public static string? ReferencePluginsDir =>
        new[] { Environment.GetEnvironmentVariable(ReferencePluginsEnv), "/usr/lib/cni", "/opt/cni/bin" }
            .FirstOrDefault(d => !string.IsNullOrEmpty(d) && ReferencePlugins.All(p => File.Exists(Path.Combine(d, p))));

    public static string? StaticBusybox =>
        new[] { Environment.GetEnvironmentVariable("BUSYBOX_STATIC"), "/bin/busybox", HostCommand.Which("busybox") }
            .FirstOrDefault(p => !string.IsNullOrEmpty(p) && File.Exists(p) && IsStaticElf(p));

    private static string? Check()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "containerd tests need Linux";
        }

        if (!Environment.IsPrivilegedProcess)
        {
            return "containerd tests need root (network and mount namespaces, runc)";
        }

        string[] missing = new[] { "containerd", "ctr", "runc", "containerd-shim-runc-v2", "nsenter", "unshare", "ip", "mount" }
            .Where(t => HostCommand.Which(t) is null)
            .ToArray();
        if (missing.Length > 0)
        {
            return $"missing {string.Join(", ", missing)} (Debian: containerd runc iproute2 util-linux)";
        }

        if (ReferencePluginsDir is null)
        {
            return $"reference CNI plugins ({string.Join(", ", ReferencePlugins)}) not found in ${ReferencePluginsEnv}, /usr/lib/cni or /opt/cni/bin (Debian: containernetworking-plugins)";
        }

        if (StaticBusybox is null)
        {
            return "no statically linked busybox for the test image (Debian: busybox-static)";
        }

        try
        {
            if (!File.ReadAllText("/proc/filesystems").Contains("overlay", StringComparison.Ordinal))
            {
                return "kernel lacks overlayfs (needed by containerd's snapshotter and the private mount namespace)";
            }
        }
        catch (IOException e)
        {
            return $"cannot read /proc/filesystems: {e.Message}";
        }

        return null;
    }

    /// <summary>An ELF with no PT_INTERP program header needs no dynamic loader, so it runs in an
    /// otherwise empty rootfs. (Debian's dynamic `busybox` package installs the same path.)</summary>
    internal static bool IsStaticElf(string path)
    {
        try
        {
            byte[] b = File.ReadAllBytes(path);
            if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F' || b[4] != 2 || b[5] != 1)
            {
                return false; // only 64-bit little-endian ELF is expected here
            }

            long phoff = BitConverter.ToInt64(b, 0x20);
            int phentsize = BitConverter.ToUInt16(b, 0x36);
            int phnum = BitConverter.ToUInt16(b, 0x38);
            for (int i = 0; i < phnum; i++)
            {
                long off = phoff + ((long)i * phentsize);
                if (off + 4 > b.Length)
                {
                    return false;
                }

                const uint PT_INTERP = 3;
                if (BitConverter.ToUInt32(b, (int)off) == PT_INTERP)
                {
                    return false;
                }
            }

            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }
}

/// <summary>The plugin under test: $TRELLIS_CNI_BIN, else the one scripts/build.sh publishes
/// (built on first use). A plugin that cannot be built fails the test; it is never skipped.</summary>
public static class TrellisCniBinary
{
    public static string Path => Infrastructure.Repo.CniPlugin;
}

/// <summary>A [Fact] that skips, with the reason, when the machine can't run containerd tests
/// (or, with <see cref="RequiresTrellisCni"/>, when the plugin hasn't been published).</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class ContainerdFactAttribute : FactAttribute
{
    public ContainerdFactAttribute()
    {
        if (ContainerdPrerequisites.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }

    /// <summary>Documents that the test runs trellis-cni (always available: it is built on demand).</summary>
    public bool RequiresTrellisCni { get; set; }
}
