using System.Diagnostics;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>Drives one uniquely named lab through the real CLI; `lab down` on dispose, always.</summary>
public sealed class LabDriver : IDisposable
{
    public LabDriver(string prefix = "t")
    {
        Name = prefix + Guid.NewGuid().ToString("N")[..8];
    }

    public string Name { get; }

    public static string Trellis => Path.Combine(Repo.BinDir, "trellis");

    public (int Exit, string Out, string Err) Run(params string[] args) => RunWithStdin(null, args);

    public (int Exit, string Out, string Err) RunWithStdin(string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo(Trellis, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
        };
        psi.Environment["TRELLIS_LAB"] = Name;
        psi.Environment.Remove("TRELLIS_STORE");
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            p.Kill(true);
            throw new TimeoutException($"trellis {string.Join(' ', args)} did not finish");
        }
        return (p.ExitCode, o.Result, e.Result);
    }

    public string Must(params string[] args)
    {
        var (exit, o, e) = Run(args);
        Assert.True(exit == 0, $"trellis {string.Join(' ', args)} exited {exit}:\n{e}\n{o}");
        return o;
    }

    public string Apply(string yaml)
    {
        var (exit, o, e) = RunWithStdin(yaml, "apply", "-f", "-");
        Assert.True(exit == 0, $"apply exited {exit}:\n{e}\n{o}");
        return o;
    }

    public JsonArray Pods(string ns) => (JsonArray)JsonNode.Parse(Must("get", "pods", "-n", ns, "-o", "json"))!["items"]!;

    /// <summary>Waits until <paramref name="count"/> pods of the namespace are Ready.</summary>
    public JsonArray WaitReady(string ns, int count, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var pods = Pods(ns);
            int ready = pods.Count(p => p!["status"]?["conditions"] is JsonArray c && c.Any(x => x!["type"]!.GetValue<string>() == "Ready" && x["status"]!.GetValue<string>() == "True"));
            if (ready >= count)
            {
                return pods;
            }
            Assert.True(DateTime.UtcNow < deadline, $"only {ready}/{count} pods Ready in {ns} after {seconds}s");
            Thread.Sleep(100);
        }
    }

    /// <summary>Waits until every Ready pod reaches every other (trellisd converges within its resync).</summary>
    public void WaitRoutes(int seconds = 20, string protocol = "tcp")
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var results = JsonNode.Parse(Must("probe", "--protocol", protocol, "-o", "json"))!["results"]!.AsArray();
            if (results.All(r => r!["connected"]!.GetValue<bool>()))
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, "pods did not all connect: " + string.Join(", ", results.Where(r => !r!["connected"]!.GetValue<bool>()).Select(r => $"{r!["from"]}->{r["to"]}")));
            Thread.Sleep(200);
        }
    }

    /// <summary>Every PID the lab recorded: supervisor, daemons, pod processes.</summary>
    public IReadOnlyList<int> RecordedPids()
    {
        var pids = new List<int>();
        string run = $"/run/trellis/{Name}";
        foreach (var f in new[] { $"{run}/lab.json", $"{run}/procs.json" }.Where(File.Exists)
            .Concat(Directory.Exists($"{run}/kubelet") ? Directory.EnumerateFiles($"{run}/kubelet", "*.json", SearchOption.AllDirectories) : []))
        {
            Collect(JsonNode.Parse(File.ReadAllText(f)), pids);
        }
        return pids;

        static void Collect(JsonNode? n, List<int> into)
        {
            switch (n)
            {
                case JsonObject o:
                    foreach (var (k, v) in o)
                    {
                        if (k == "pid" && v is JsonValue pv && pv.TryGetValue(out int pid))
                        {
                            into.Add(pid);
                        }
                        else
                        {
                            Collect(v, into);
                        }
                    }
                    break;
                case JsonArray a:
                    foreach (var x in a)
                    {
                        Collect(x, into);
                    }
                    break;
            }
        }
    }

    /// <summary>Everything on the machine that carries this lab's name.</summary>
    public IReadOnlyList<string> Leftovers()
    {
        var left = new List<string>();
        left.AddRange(Sh.Must("ip", "netns", "list").Split('\n').Where(l => l.StartsWith($"trl-{Name}-", StringComparison.Ordinal)).Select(l => "netns " + l));
        foreach (var dir in new[] { $"/run/trellis/{Name}", $"/var/log/trellis/{Name}", $"/var/lib/trellis/{Name}" })
        {
            if (Directory.Exists(dir))
            {
                left.Add("dir " + dir);
            }
        }
        if (Directory.Exists("/etc/netns"))
        {
            left.AddRange(Directory.EnumerateDirectories("/etc/netns", $"trl-{Name}-*").Select(d => "dir " + d));
        }
        left.AddRange(File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains($"trl-{Name}-", StringComparison.Ordinal)).Select(l => "mount " + l));
        foreach (var pidDir in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                string cmd = File.ReadAllText(Path.Combine(pidDir, "cmdline")).Replace('\0', ' ');
                if (cmd.Contains($"--name {Name}", StringComparison.Ordinal) || cmd.Contains($"trl-{Name}-", StringComparison.Ordinal))
                {
                    left.Add($"process {Path.GetFileName(pidDir)}: {cmd}");
                }
            }
            catch (IOException)
            {
            }
        }
        return left;
    }

    public void Dispose() => Run("lab", "down", "--name", Name);
}

/// <summary>Skips when the tests cannot create network namespaces (not root).</summary>
public sealed class LabFactAttribute : FactAttribute
{
    public LabFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root to build a lab of network namespaces";
        }
    }
}

/// <summary>The theory form of <see cref="LabFactAttribute"/>.</summary>
public sealed class LabTheoryAttribute : TheoryAttribute
{
    public LabTheoryAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root to build a lab of network namespaces";
        }
    }
}
