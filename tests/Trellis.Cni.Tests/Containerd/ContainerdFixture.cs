using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Trellis.Cni.Tests.Containerd;

/// <summary>
/// A private containerd (own root, state, socket and config) running inside a throwaway network
/// namespace <c>trl-ctrtest-XXXXXX</c> and a private mount namespace in which a temp dir is
/// bind-mounted over <c>/etc/cni/net.d</c>, <c>/opt/cni/bin</c> and <c>/run/containerd</c>. `ctr`
/// (containerd 1.6) reads CNI config only from those fixed paths and executes the plugins itself, so
/// <see cref="RunCtrAsync"/> runs it in the same two namespaces: every bridge, veth and sysctl the
/// plugins make lands in the throwaway netns, nothing in the host's.
/// </summary>
/// <remarks>
/// Everything is named after <see cref="Name"/> (netns, containerd namespace, temp dir, cgroup
/// parent), and torn down by recorded PID even when a test fails; runs that died without cleaning
/// up are swept at the next start (their owner PID + start time is recorded in the temp dir).
/// </remarks>
[SupportedOSPlatform("linux")]
public sealed class ContainerdFixture : IAsyncLifetime
{
    public const string NamePrefix = "trl-ctrtest-";
    public const string ConflistFileName = "10-ctrnet.conflist";

    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(30);
    private readonly IMessageSink? _diagnostics;
    private readonly List<CtrContainer> _containers = [];
    private readonly string _nsenter = HostCommand.Which("nsenter") ?? "nsenter";
    private readonly string _ctr = HostCommand.Which("ctr") ?? "ctr";
    private readonly string _ip = HostCommand.Which("ip") ?? "ip";
    private int _execCounter;
    private Process? _launcher;
    private readonly StringBuilder _launcherOutput = new();

    // xunit allows a fixture only one public constructor; it supplies the IMessageSink.
    public ContainerdFixture(IMessageSink? diagnostics = null)
    {
        _diagnostics = diagnostics;
        SkipReason = ContainerdPrerequisites.SkipReason;
        Name = NamePrefix + RandomNumberGenerator.GetHexString(6, lowercase: true);
        WorkDir = Path.Combine(Path.GetTempPath(), Name);
    }

    /// <summary>Non-null when the machine can't run this fixture; it then starts nothing.</summary>
    public string? SkipReason { get; }

    /// <summary>Name of the netns, of the containerd namespace and of the temp dir.</summary>
    public string Name { get; }

    public string WorkDir { get; }

    public string SocketPath => Path.Combine(WorkDir, "containerd.sock");

    /// <summary>Host path of the dir the private mount namespace shows as /etc/cni/net.d.</summary>
    public string CniConfDir => Path.Combine(WorkDir, "net.d");

    /// <summary>Host path of the dir the private mount namespace shows as /opt/cni/bin.</summary>
    public string CniBinDir => Path.Combine(WorkDir, "cni-bin");

    public string ContainerdLogPath => Path.Combine(WorkDir, "containerd.log");

    public static string ImageReference => BusyboxOciImage.Reference;

    public int ContainerdPid { get; private set; }

    /// <summary>The published trellis-cni, linked into <see cref="CniBinDir"/>, if found.</summary>
    public string? TrellisCniPath { get; private set; }

    public TimeSpan StartupTime { get; private set; }

    private string OwnerFile => Path.Combine(WorkDir, "owner");

    private string PidFile => Path.Combine(WorkDir, "containerd.pid");

    public async Task InitializeAsync()
    {
        if (SkipReason is not null)
        {
            return;
        }

        var sw = Stopwatch.StartNew();
        await SweepStaleAsync();
        try
        {
            await StartAsync();
        }
        catch
        {
            await TeardownAsync(throwOnProblems: false);
            throw;
        }

        StartupTime = sw.Elapsed;
        Log($"containerd {Name} ready in {StartupTime.TotalMilliseconds:F0} ms (pid {ContainerdPid})");
    }

    public Task DisposeAsync() => SkipReason is null ? TeardownAsync(throwOnProblems: true) : Task.CompletedTask;

    // ---------------------------------------------------------------- ctr

    /// <summary>Runs <c>ctr --address SOCK --namespace NAME args…</c> in containerd's netns and mount namespace.</summary>
    public Task<CommandResult> RunCtrAsync(params string[] args) => RunCtrAsync(args, null);

    public Task<CommandResult> RunCtrAsync(IEnumerable<string> args, TimeSpan? timeout)
    {
        EnsureAvailable();
        return HostCommand.RunAsync(_nsenter, CtrArgv(args), timeout);
    }

    /// <summary>As <see cref="RunCtrAsync(string[])"/> but throws (with stdout, stderr and the
    /// containerd log tail) on a non-zero exit.</summary>
    public async Task<string> CtrAsync(params string[] args)
    {
        CommandResult r = await RunCtrAsync(args);
        return r.Succeeded ? r.StdOut : throw new InvalidOperationException(r + ContainerdLogTail());
    }

    /// <summary>Runs any program in containerd's netns and mount namespace (sees the private
    /// /etc/cni/net.d and /opt/cni/bin).</summary>
    public Task<CommandResult> RunInNamespacesAsync(string file, params string[] args)
    {
        EnsureAvailable();
        return HostCommand.RunAsync(_nsenter, NsenterArgv().Append(file).Concat(args));
    }

    /// <summary><c>ip -n NAME args…</c>: inspects (or changes) the throwaway netns only.</summary>
    public Task<CommandResult> IpAsync(params string[] args) =>
        HostCommand.RunAsync(_ip, new[] { "-n", Name }.Concat(args));

    /// <summary>
    /// Starts <c>ctr run --cni --rm IMAGE ID command…</c> in the foreground, as a background process,
    /// and waits until the task is RUNNING (ctr runs CNI ADD between task create and start).
    /// </summary>
    /// <remarks>
    /// Why foreground: containerd 1.6's ctr calls CNI DEL only from `ctr run` itself, after the task
    /// exits; `ctr run -d` followed by `ctr task delete` / `ctr container delete` never releases the
    /// network (1.7 added a container extension for that). Stop it with <see cref="StopContainerAsync"/>.
    /// </remarks>
    public async Task<CtrContainer> StartContainerAsync(string id, params string[] command)
    {
        EnsureAvailable();
        var psi = new ProcessStartInfo(_nsenter)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in CtrArgv(["run", "--cni", "--rm", ImageReference, id, .. command]))
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {HostCommand.Describe(psi)}");
        var container = new CtrContainer(id, $"{Name}-{id}", process);
        _containers.Add(container);
        process.OutputDataReceived += (_, e) => container.OutputBuffer.AppendLocked(e.Data);
        process.ErrorDataReceived += (_, e) => container.OutputBuffer.AppendLocked(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();

        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync();
                throw new InvalidOperationException(
                    $"`ctr run --cni {id}` exited {process.ExitCode} before the task ran:\n{container.Output}{ContainerdLogTail()}");
            }

            CommandResult tasks = await RunCtrAsync("task", "ls");
            if (tasks.StdOut.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Any(f => f.Length >= 3 && f[0] == id && f[2] == "RUNNING"))
            {
                return container;
            }

            if (sw.Elapsed > s_startTimeout)
            {
                throw new TimeoutException($"task {id} not RUNNING after {s_startTimeout}:\n{tasks}\n{container.Output}{ContainerdLogTail()}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary><c>ctr task exec --exec-id UNIQUE ID command…</c>.</summary>
    public Task<CommandResult> ExecAsync(string id, params string[] command) =>
        RunCtrAsync(
            ["task", "exec", "--exec-id", $"x{Interlocked.Increment(ref _execCounter).ToString(CultureInfo.InvariantCulture)}", id, .. command],
            null);

    /// <summary>SIGKILLs the task and waits for the foreground `ctr run` to finish, which runs CNI
    /// DEL, deletes the task and (--rm) the container. Returns ctr's exit code (137 after SIGKILL).</summary>
    public async Task<int> StopContainerAsync(CtrContainer container, TimeSpan? timeout = null)
    {
        // PID 1 of a container ignores SIGTERM unless it installs a handler: SIGKILL.
        CommandResult kill = await RunCtrAsync("task", "kill", "--signal", "SIGKILL", container.Id);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            await container.Process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"`ctr run {container.Id}` still running after kill ({kill}):\n{container.Output}{ContainerdLogTail()}");
        }

        return container.Process.ExitCode;
    }

    // ---------------------------------------------------------------- CNI config

    /// <summary>Replaces the only conflist in the private /etc/cni/net.d.</summary>
    public void WriteConflist(string json)
    {
        foreach (string f in Directory.EnumerateFiles(CniConfDir))
        {
            File.Delete(f);
        }

        File.WriteAllText(Path.Combine(CniConfDir, ConflistFileName), json);
    }

    /// <summary>Links a plugin binary into the private /opt/cni/bin.</summary>
    public void InstallPlugin(string type, string path)
    {
        string link = Path.Combine(CniBinDir, type);
        File.Delete(link);
        File.CreateSymbolicLink(link, path);
    }

    /// <summary>A fresh empty directory under the fixture's temp dir (removed at teardown).</summary>
    public string CreateScratchDir(string name)
    {
        string dir = Path.Combine(WorkDir, "scratch", name);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.CreateDirectory(dir);
        return dir;
    }

    public string ContainerdLogTail(int lines = 30) =>
        $"\n--- containerd log ({ContainerdLogPath}) ---\n{HostCommand.ReadTail(ContainerdLogPath, lines)}";

    // ---------------------------------------------------------------- start

    private async Task StartAsync()
    {
        foreach (string d in new[] { WorkDir, CniConfDir, CniBinDir, Path.Combine(WorkDir, "run-containerd"), Path.Combine(WorkDir, "cgroup") })
        {
            Directory.CreateDirectory(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        int self = Environment.ProcessId;
        File.WriteAllText(OwnerFile, $"{self} {HostCommand.ProcessStartTime(self)}");

        string pluginsDir = ContainerdPrerequisites.ReferencePluginsDir!;
        foreach (string plugin in Directory.EnumerateFiles(pluginsDir))
        {
            InstallPlugin(Path.GetFileName(plugin), plugin);
        }

        TrellisCniPath = TrellisCniBinary.Path;
        if (TrellisCniPath is not null)
        {
            InstallPlugin("trellis-cni", TrellisCniPath);
        }

        string imageTar = Path.Combine(WorkDir, "busybox-oci.tar");
        Task image = Task.Run(() => BusyboxOciImage.WriteArchive(ContainerdPrerequisites.StaticBusybox!, imageTar));

        await HostCommand.CheckAsync(_ip, ["netns", "add", Name]);
        string config = Path.Combine(WorkDir, "containerd.toml");
        File.WriteAllText(config, ContainerdConfig());
        string script = Path.Combine(WorkDir, "start.sh");
        File.WriteAllText(script, StartScript(config));

        var psi = new ProcessStartInfo(_nsenter)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in new[] { $"--net=/run/netns/{Name}", "unshare", "--mount", "--propagation", "private", "sh", script })
        {
            psi.ArgumentList.Add(a);
        }

        _launcher = Process.Start(psi) ?? throw new InvalidOperationException("could not start containerd");
        _launcher.OutputDataReceived += (_, e) => _launcherOutput.AppendLocked(e.Data);
        _launcher.ErrorDataReceived += (_, e) => _launcherOutput.AppendLocked(e.Data);
        _launcher.BeginOutputReadLine();
        _launcher.BeginErrorReadLine();
        _launcher.StandardInput.Close();

        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (_launcher.HasExited)
            {
                throw new InvalidOperationException($"containerd exited with {_launcher.ExitCode}:\n{_launcherOutput}{ContainerdLogTail()}");
            }

            if (File.Exists(SocketPath) && File.Exists(PidFile) &&
                int.TryParse(File.ReadAllText(PidFile).Trim(), CultureInfo.InvariantCulture, out int pid))
            {
                ContainerdPid = pid;
                if ((await RunCtrAsync("version")).Succeeded)
                {
                    break;
                }
            }

            if (sw.Elapsed > s_startTimeout)
            {
                throw new TimeoutException($"containerd socket not ready after {s_startTimeout}:\n{_launcherOutput}{ContainerdLogTail()}");
            }

            await Task.Delay(50);
        }

        await image;
        await CtrAsync("images", "import", "--base-name", BusyboxOciImage.BaseName, imageTar);
        string images = await CtrAsync("images", "ls", "-q");
        if (!images.Split('\n').Contains(ImageReference))
        {
            throw new InvalidOperationException($"image import did not create {ImageReference}; images: {images}");
        }
    }

    private string ContainerdConfig()
    {
        string w = WorkDir;
        // CRI and the optional snapshotters are off (fast start, no CNI of their own). The v1 linux
        // runtime must stay: 1.6's tasks service refuses to load without it.
        return $$"""
            version = 2
            root = "{{w}}/root"
            state = "{{w}}/state"
            oom_score = 0
            disabled_plugins = [
              "io.containerd.grpc.v1.cri",
              "io.containerd.snapshotter.v1.aufs",
              "io.containerd.snapshotter.v1.btrfs",
              "io.containerd.snapshotter.v1.devmapper",
              "io.containerd.snapshotter.v1.zfs",
              "io.containerd.tracing.processor.v1.otlp",
              "io.containerd.internal.v1.tracing",
            ]

            [grpc]
              address = "{{w}}/containerd.sock"

            [ttrpc]
              address = "{{w}}/containerd.sock.ttrpc"

            [debug]
              address = ""

            [metrics]
              address = ""

            [plugins."io.containerd.internal.v1.opt"]
              path = "{{w}}/opt"
            """;
    }

    /// <summary>
    /// Runs in the new netns and a new private mount namespace, then execs containerd (so $$ is its PID).
    /// </summary>
    private string StartScript(string config)
    {
        var sb = new StringBuilder();
        sb.AppendLine("set -eu");
        sb.AppendLine(CultureInfo.InvariantCulture, $"W='{WorkDir}'");

        // /etc/cni/net.d, /opt/cni/bin and /run/containerd (shim sockets, runc state, ctr FIFOs) are
        // hard-coded in 1.6's ctr and shim. A missing mount point can't be created on the host (that
        // would touch it), so overlay its top-level dir with an upper layer in the temp dir first.
        var targets = new (string Target, string Source)[]
        {
            ("/etc/cni/net.d", "$W/net.d"),
            ("/opt/cni/bin", "$W/cni-bin"),
            ("/run/containerd", "$W/run-containerd"),
        };
        foreach (string top in targets.Where(t => !Directory.Exists(t.Target)).Select(t => "/" + t.Target.Split('/')[1]).Distinct())
        {
            string ov = $"$W/overlay{top}";
            sb.AppendLine(CultureInfo.InvariantCulture, $"mkdir -p \"{ov}/upper\" \"{ov}/work\"");
            sb.AppendLine(CultureInfo.InvariantCulture, $"mount -t overlay overlay -o \"lowerdir={top},upperdir={ov}/upper,workdir={ov}/work\" {top}");
        }

        foreach (var (target, source) in targets)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"mkdir -p {target}");
            sb.AppendLine(CultureInfo.InvariantCulture, $"mount --bind \"{source}\" {target}");
        }

        // A sysfs mounted from inside the netns shows its links under /sys/class/net (as on a real
        // node); keep the cgroup mounts runc needs (`ip netns exec` drops them: "no cgroup mount found").
        sb.AppendLine("mount --rbind /sys/fs/cgroup \"$W/cgroup\"");
        sb.AppendLine("mount -t sysfs sysfs /sys");
        sb.AppendLine("mount --rbind \"$W/cgroup\" /sys/fs/cgroup");
        sb.AppendLine("umount -l \"$W/cgroup\"");
        sb.AppendLine("echo $$ > \"$W/containerd.pid\"");
        sb.AppendLine(CultureInfo.InvariantCulture, $"exec containerd --config '{config}' --log-level warn >>\"$W/containerd.log\" 2>&1");
        return sb.ToString();
    }

    private void EnsureAvailable()
    {
        if (SkipReason is not null)
        {
            throw new InvalidOperationException($"containerd fixture unavailable: {SkipReason} (guard tests with [ContainerdFact])");
        }

        if (ContainerdPid == 0)
        {
            throw new InvalidOperationException("containerd fixture not started");
        }
    }

    private IEnumerable<string> NsenterArgv() =>
        [$"--net=/proc/{ContainerdPid}/ns/net", $"--mount=/proc/{ContainerdPid}/ns/mnt"];

    private IEnumerable<string> CtrArgv(IEnumerable<string> args) =>
        NsenterArgv().Concat([_ctr, "--address", SocketPath, "--namespace", Name]).Concat(args);

    // ---------------------------------------------------------------- teardown

    private async Task TeardownAsync(bool throwOnProblems)
    {
        List<string> problems = await TeardownAsync(Name, WorkDir, _containers.Select(c => c.Process), Log);
        foreach (CtrContainer c in _containers)
        {
            c.Process.Dispose();
        }

        if (_launcher is not null)
        {
            // It exec'd into containerd, stopped above by PID; this only catches a start script that
            // hung before its exec (our direct child).
            if (!_launcher.HasExited)
            {
                _launcher.Kill();
                await _launcher.WaitForExitAsync();
            }

            _launcher.Dispose();
        }

        CommandResult netns = await HostCommand.RunAsync(_ip, ["netns", "list"]);
        if (netns.StdOut.Contains(Name, StringComparison.Ordinal))
        {
            problems.Add($"netns {Name} still listed");
        }

        if (problems.Count > 0)
        {
            string message = $"teardown of {Name}: {string.Join("; ", problems)}";
            Log(message);
            if (throwOnProblems)
            {
                throw new InvalidOperationException(message);
            }
        }
    }

    /// <summary>Removes everything a fixture named <paramref name="name"/> made; works from the temp
    /// dir alone, so it also cleans up after a test process that was killed.</summary>
    private static async Task<List<string>> TeardownAsync(string name, string workDir, IEnumerable<Process> ownChildren, Action<string> log)
    {
        var problems = new List<string>();
        var sw = Stopwatch.StartNew();
        string nsenter = HostCommand.Which("nsenter") ?? "nsenter";
        string ctr = HostCommand.Which("ctr") ?? "ctr";
        string ip = HostCommand.Which("ip") ?? "ip";
        string socket = Path.Combine(workDir, "containerd.sock");

        int? containerd = ReadOurContainerdPid(workDir);
        if (containerd is int pid)
        {
            string[] ns = [$"--net=/proc/{pid}/ns/net", $"--mount=/proc/{pid}/ns/mnt", ctr, "--address", socket, "--namespace", name];
            async Task<CommandResult?> Ctr(params string[] args)
            {
                try
                {
                    return await HostCommand.RunAsync(nsenter, ns.Concat(args), TimeSpan.FromSeconds(15));
                }
                catch (TimeoutException e)
                {
                    problems.Add(e.Message);
                    return null;
                }
            }

            // `task delete --force` SIGKILLs a running task first; the foreground `ctr run`s then exit.
            CommandResult? tasks = await Ctr("task", "ls", "-q");
            foreach (string task in Lines(tasks?.StdOut))
            {
                await Ctr("task", "delete", "--force", task);
            }

            CommandResult? containers = await Ctr("container", "ls", "-q");
            foreach (string c in Lines(containers?.StdOut))
            {
                await Ctr("container", "delete", c);
            }
        }

        log($"teardown {name}: tasks and containers removed at {sw.ElapsedMilliseconds} ms");
        foreach (Process p in ownChildren)
        {
            try
            {
                if (!p.HasExited)
                {
                    // Give a foreground `ctr run` a moment to finish its CNI DEL after its task died.
                    if (!p.WaitForExit(TimeSpan.FromSeconds(5)))
                    {
                        p.Kill();
                    }
                }
            }
            catch (InvalidOperationException)
            {
                // never started / already reaped
            }
        }

        if (containerd is int cpid && HostCommand.ProcessStartTime(cpid) is long start)
        {
            HostCommand.Signal(cpid, LibC.SIGTERM);
            if (!await HostCommand.WaitForExitAsync(cpid, start, TimeSpan.FromSeconds(10)))
            {
                log($"containerd {cpid} ignored SIGTERM; SIGKILL");
                HostCommand.Signal(cpid, LibC.SIGKILL);
                await HostCommand.WaitForExitAsync(cpid, start, TimeSpan.FromSeconds(5));
            }
        }

        log($"teardown {name}: containerd stopped at {sw.ElapsedMilliseconds} ms");
        // Whatever still lives in our netns is ours: containerd-shim-runc-v2 processes (they
        // daemonise, so they are not containerd's children) and, below them, container processes.
        CommandResult nsPids = await HostCommand.RunAsync(ip, ["netns", "pids", name]);
        foreach (string s in Lines(nsPids.StdOut))
        {
            if (int.TryParse(s, CultureInfo.InvariantCulture, out int p))
            {
                log($"killing leftover pid {p} ({ReadComm(p)}) in netns {name} and its descendants");
                KillTree(p);
            }
        }

        CommandResult del = await HostCommand.RunAsync(ip, ["netns", "delete", name]);
        if (!del.Succeeded && !del.StdErr.Contains("No such file", StringComparison.Ordinal))
        {
            problems.Add(del.ToString());
        }

        RemoveCgroups(name, problems);

        for (int attempt = 0; Directory.Exists(workDir); attempt++)
        {
            try
            {
                Directory.Delete(workDir, recursive: true);
            }
            catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && attempt < 20)
            {
                await Task.Delay(100);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problems.Add($"rm -r {workDir}: {e.Message}");
                break;
            }
        }

        log($"teardown {name}: done in {sw.ElapsedMilliseconds} ms");
        return problems;
    }

    /// <summary>runc puts a ctr container in cgroup /NAMESPACE/ID of every hierarchy and removes only
    /// the leaf: remove the (empty) parents, which carry our unique name.</summary>
    private static void RemoveCgroups(string name, List<string> problems)
    {
        const string root = "/sys/fs/cgroup";
        if (!Directory.Exists(root))
        {
            return;
        }

        foreach (string hierarchy in Directory.EnumerateDirectories(root).Prepend(root))
        {
            string dir = Path.Combine(hierarchy, name);
            if (!Directory.Exists(dir))
            {
                continue;
            }

            try
            {
                foreach (string leaf in Directory.EnumerateDirectories(dir))
                {
                    Directory.Delete(leaf); // rmdir(2): cgroupfs control files don't count
                }

                Directory.Delete(dir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problems.Add($"rmdir {dir}: {e.Message}");
            }
        }
    }

    private static int? ReadOurContainerdPid(string workDir)
    {
        try
        {
            int pid = int.Parse(File.ReadAllText(Path.Combine(workDir, "containerd.pid")).Trim(), CultureInfo.InvariantCulture);
            // Guard against PID reuse: it must be the containerd started with this dir's config.
            string cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            return cmdline.Contains(Path.Combine(workDir, "containerd.toml"), StringComparison.Ordinal) ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    private static void KillTree(int pid)
    {
        var children = HostCommand.AllPids().Where(c => HostCommand.ParentPid(c) == pid).ToList();
        HostCommand.Signal(pid, LibC.SIGKILL);
        foreach (int c in children)
        {
            KillTree(c);
        }
    }

    private static string ReadComm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static string[] Lines(string? text) =>
        (text ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Cleans up fixtures whose test process died (owner PID + start time no longer alive).</summary>
    private async Task SweepStaleAsync()
    {
        foreach (string dir in Directory.EnumerateDirectories(Path.GetTempPath(), NamePrefix + "*"))
        {
            string owner = Path.Combine(dir, "owner");
            string[] fields;
            try
            {
                fields = File.ReadAllText(owner).Split(' ');
            }
            catch (IOException)
            {
                continue; // not ours, or still being created
            }

            if (fields.Length == 2 && int.TryParse(fields[0], CultureInfo.InvariantCulture, out int pid) &&
                HostCommand.ProcessStartTime(pid)?.ToString(CultureInfo.InvariantCulture) == fields[1])
            {
                continue; // another live test run owns it
            }

            string name = Path.GetFileName(dir);
            Log($"sweeping stale {name}");
            List<string> problems = await TeardownAsync(name, dir, [], Log);
            if (problems.Count > 0)
            {
                Log($"sweep of {name}: {string.Join("; ", problems)}");
            }
        }
    }

    private void Log(string message) => _diagnostics?.OnMessage(new DiagnosticMessage($"[{nameof(ContainerdFixture)}] {message}"));
}

/// <summary>A container started by a foreground <c>ctr run --cni --rm</c>.</summary>
public sealed class CtrContainer
{
    internal CtrContainer(string id, string cniContainerId, Process process)
    {
        Id = id;
        CniContainerId = cniContainerId;
        Process = process;
    }

    public string Id { get; }

    /// <summary>What ctr passes as CNI_CONTAINERID: "NAMESPACE-ID".</summary>
    public string CniContainerId { get; }

    internal Process Process { get; }

    internal StringBuilder OutputBuffer { get; } = new();

    /// <summary>ctr's (and the container's) stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (OutputBuffer)
            {
                return OutputBuffer.ToString();
            }
        }
    }
}

/// <summary>Tests sharing one containerd; serial, because they share the netns and 2 cores.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ContainerdCollectionDefinition : ICollectionFixture<ContainerdFixture>
{
    public const string Name = "containerd";
}
