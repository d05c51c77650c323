using System.Diagnostics;
using System.Text.Json;

namespace Trellis.Agent.Tests.Support;

/// <summary>Runs iproute2 and nft in tests only (fixtures, hand-made drift, cross-checks); always with <c>-n NS</c> or <c>ip netns exec NS</c>.</summary>
internal static class Cmd
{
    public static (int ExitCode, string Stdout, string Stderr) Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["LC_ALL"] = "C";
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

    /// <summary><c>ip -n NS -j ARGS</c>, parsed.</summary>
    public static JsonElement IpJson(string ns, params string[] args) => Json(Check("ip", ["-n", ns, "-j", .. args]));

    /// <summary><c>bridge -n NS -j ARGS</c>, parsed.</summary>
    public static JsonElement BridgeJson(string ns, params string[] args) => Json(Check("bridge", ["-n", ns, "-j", .. args]));

    /// <summary><c>ip netns exec NS nft ARGS</c></summary>
    public static string Nft(string ns, params string[] args) => Check("ip", ["netns", "exec", ns, "nft", .. args]);

    private static JsonElement Json(string text)
    {
        using var document = JsonDocument.Parse(string.IsNullOrWhiteSpace(text) ? "[]" : text);
        return document.RootElement.Clone();
    }
}
