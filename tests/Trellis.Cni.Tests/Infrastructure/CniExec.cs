using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Trellis.Netlink;

namespace Trellis.Cni.Tests.Infrastructure;

/// <summary>Skips when the tests cannot create network namespaces (not root); the theory form of <see cref="KernelFactAttribute"/>.</summary>
public sealed class KernelTheoryAttribute : TheoryAttribute
{
    public KernelTheoryAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root to create network namespaces";
        }
    }
}

/// <summary>The spec's error object as the plugin printed it: <c>{"cniVersion","code","msg"[,"details"]}</c>.</summary>
public sealed record CniError(string CniVersion, int Code, string Msg, string? Details)
{
    /// <summary>The codes the spec reserves (1-99) that the plugin uses, plus 999 (libcni's ErrInternal).</summary>
    public static readonly IReadOnlySet<int> KnownCodes = new HashSet<int> { 1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 999 };

    /// <summary>Parses stdout strictly: exactly those keys, with those JSON types. Throws with the reason otherwise.</summary>
    public static CniError Parse(string stdout)
    {
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"error output is not an object: {stdout}");
        }
        foreach (var p in root.EnumerateObject())
        {
            if (p.Name is not ("cniVersion" or "code" or "msg" or "details"))
            {
                throw new FormatException($"unexpected key '{p.Name}' in error output: {stdout}");
            }
        }
        var code = root.GetProperty("code");
        if (code.ValueKind != JsonValueKind.Number || !code.TryGetInt32(out int c))
        {
            throw new FormatException($"code is not an integer: {stdout}");
        }
        string? details = root.TryGetProperty("details", out var d) ? d.GetString() : null;
        return new CniError(root.GetProperty("cniVersion").GetString()!, c, root.GetProperty("msg").GetString()!, details);
    }

    public static bool TryParse(string stdout, out CniError? error, out string? why)
    {
        try
        {
            error = Parse(stdout);
            why = null;
            return true;
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            error = null;
            why = e.Message;
            return false;
        }
    }
}

/// <summary>Exec helpers for byte-exact stdin (the fuzz flips bytes a string cannot carry) and state snapshots.</summary>
public static class CniExec
{
    /// <summary>Execs trellis-cni inside <paramref name="nodeNs"/> with exactly <paramref name="env"/>, stdin as raw bytes.</summary>
    public static PluginRun Run(NetNs nodeNs, byte[] stdin, IReadOnlyDictionary<string, string?> env) =>
        nodeNs.Run(() => RunHere(Repo.CniPlugin, stdin, env));

    private static PluginRun RunHere(string plugin, byte[] stdin, IReadOnlyDictionary<string, string?> env)
    {
        var psi = new ProcessStartInfo(plugin)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var (k, v) in env)
        {
            if (v is not null)
            {
                psi.Environment[k] = v;
            }
        }
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        try
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // exited before reading stdin (env errors, VERSION)
        }
        if (!p.WaitForExit(TimeSpan.FromSeconds(20)))
        {
            p.Kill();
            p.WaitForExit();
            return new PluginRun(-1, o.Result, "timed out after 20 s\n" + e.Result);
        }
        return new PluginRun(p.ExitCode, o.Result, e.Result);
    }

    /// <summary>Interface names in a namespace, sorted.</summary>
    public static IReadOnlyList<string> LinkNames(string netnsPath)
    {
        using var ns = NetNs.Open(netnsPath);
        using var nl = RtNetlink.OpenIn(ns);
        return nl.LinkList().Select(l => l.Name).Order(StringComparer.Ordinal).ToList();
    }

    public static IReadOnlyList<Link> Links(string netnsPath)
    {
        using var ns = NetNs.Open(netnsPath);
        using var nl = RtNetlink.OpenIn(ns);
        return nl.LinkList();
    }

    /// <summary>
    /// Every file under the IPAM data dir except the flock files: reserved-IP files, attachment
    /// index entries, round-robin hints, temp files. Paths relative to <paramref name="dataDir"/>.
    /// </summary>
    public static IReadOnlyList<string> StoreFiles(string dataDir, bool allowHints = false) => !Directory.Exists(dataDir)
        ? []
        : Directory.EnumerateFiles(dataDir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(dataDir, f))
            .Where(f => Path.GetFileName(f) != "lock")
            .Where(f => !(allowHints && Path.GetFileName(f).StartsWith("last_reserved_ip.", StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>A string for failure messages that shows control characters and invalid UTF-8.</summary>
    public static string Show(byte[] bytes)
    {
        var sb = new StringBuilder();
        foreach (byte b in bytes)
        {
            if (b is >= 0x20 and < 0x7f && b != (byte)'\\')
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{b:x2}");
            }
        }
        return sb.ToString();
    }
}

public sealed record PluginRun(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}, stdout: {Stdout.Trim()}, stderr: {(Stderr.Length > 600 ? Stderr[..600] + "…" : Stderr).Trim()}";
}
