using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Trellis.Netlink;

namespace Trellis.Bgp.Tests.Support;

/// <summary>A fact that needs root, network namespaces and the named router binaries; skipped with the reason otherwise.</summary>
public sealed class InteropFactAttribute : FactAttribute
{
    public InteropFactAttribute(params string[] binaries)
    {
        if (!OperatingSystem.IsLinux())
        {
            Skip = "needs Linux";
        }
        else if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root (creates network namespaces)";
        }
        else if (binaries.FirstOrDefault(b => !File.Exists(b)) is { } missing)
        {
            Skip = $"{missing} is not installed (scripts/install-deps.sh installs bird2, frr, gobgpd)";
        }
    }
}

/// <summary>
/// Throwaway network namespaces "trl-bgp-XXXX-*": one for the speaker, one per router, joined by veth
/// pairs on 10.77.N.0/24 (speaker .1, router .2). Routers are started by the test and stopped by PID;
/// everything is removed on Dispose.
/// </summary>
internal sealed class BgpLab : IDisposable
{
    private static readonly Lock s_ipLock = new();
    private readonly List<string> _namespaces = [];
    private readonly List<Process> _processes = [];
    private int _links;

    public BgpLab()
    {
        Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        Dir = Directory.CreateTempSubdirectory("trl-bgp-").FullName;
        SpeakerNsName = AddNamespace("s");
        SpeakerNs = NetNs.Open("/var/run/netns/" + SpeakerNsName);
    }

    public string Id { get; }

    public string Dir { get; }

    public string SpeakerNsName { get; }

    public NetNs SpeakerNs { get; }

    /// <summary>A router namespace linked to the speaker's: returns its name and both addresses.</summary>
    public (string Ns, IPAddress SpeakerAddress, IPAddress RouterAddress) AddRouter(string role)
    {
        int n = ++_links;
        string ns = AddNamespace(role);
        string a = $"tb{Id}a{n}", b = $"tb{Id}b{n}";
        Ip(SpeakerNsName, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns);
        Ip(SpeakerNsName, "addr", "add", $"10.77.{n}.1/24", "dev", a);
        Ip(SpeakerNsName, "link", "set", a, "up");
        Ip(ns, "addr", "add", $"10.77.{n}.2/24", "dev", b);
        Ip(ns, "link", "set", b, "up");
        return (ns, IPAddress.Parse($"10.77.{n}.1"), IPAddress.Parse($"10.77.{n}.2"));
    }

    public string File(string name, string content)
    {
        string path = Path.Combine(Dir, name);
        System.IO.File.WriteAllText(path, content);
        return path;
    }

    /// <summary>Starts a long-running process inside a namespace (`ip netns exec` execs it, so the PID is the router's).</summary>
    public Process Start(string ns, string file, params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])["netns", "exec", ns, file, .. args])
        {
            start.ArgumentList.Add(arg);
        }
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
        return process;
    }

    public static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit(5000);
        }
    }

    /// <summary>Runs a command inside a namespace and returns its output.</summary>
    public static string Exec(string ns, string file, params string[] args)
    {
        var (code, stdout, stderr) = Run("ip", ["netns", "exec", ns, file, .. args]);
        return code == 0 ? stdout : stdout + stderr;
    }

    /// <summary>Polls until <paramref name="condition"/> holds or the timeout passes.</summary>
    public static bool WaitFor(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (condition())
            {
                return true;
            }
            Thread.Sleep(100);
        }
        return condition();
    }

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try
            {
                Stop(p);
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
        SpeakerNs.Dispose();
        lock (s_ipLock)
        {
            foreach (var ns in _namespaces)
            {
                Run("ip", ["netns", "del", ns]);
            }
        }
        Directory.Delete(Dir, recursive: true);
    }

    private string AddNamespace(string role)
    {
        string name = $"trl-bgp-{Id}-{role}";
        lock (s_ipLock)
        {
            Check("ip", "netns", "add", name);
        }
        _namespaces.Add(name);
        Ip(name, "link", "set", "lo", "up");
        return name;
    }

    private static void Ip(string ns, params string[] args) => Check("ip", ["-n", ns, .. args]);

    private static void Check(string file, params string[] args)
    {
        var (code, _, stderr) = Run(file, args);
        if (code != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {stderr.Trim()}");
        }
    }

    private static (int, string, string) Run(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }
}
