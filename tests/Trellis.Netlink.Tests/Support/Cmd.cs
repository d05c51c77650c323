using System.Diagnostics;
using System.Text.Json;

namespace Trellis.Netlink.Tests.Support;

/// <summary>Runs iproute2 in tests only (to set up fixtures and cross-check results); the library never does.</summary>
internal static class Cmd
{
    public static (int ExitCode, string Stdout, string Stderr) Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }

    /// <summary>Runs a command and throws with its stderr when it fails.</summary>
    public static string Check(string file, params string[] args)
    {
        var (code, stdout, stderr) = Run(file, args);
        if (code != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({code}): {stderr.Trim()}");
        }
        return stdout;
    }

    /// <summary><c>ip -n NS ARGS</c></summary>
    public static string Ip(string ns, params string[] args) => Check("ip", ["-n", ns, .. args]);

    /// <summary><c>ip -n NS -j ARGS</c> parsed.</summary>
    public static JsonElement IpJson(string ns, params string[] args)
    {
        string text = Check("ip", ["-n", ns, "-j", .. args]);
        using var document = JsonDocument.Parse(string.IsNullOrWhiteSpace(text) ? "[]" : text);
        return document.RootElement.Clone();
    }
}
