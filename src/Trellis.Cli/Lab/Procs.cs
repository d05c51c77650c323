using System.Globalization;
using System.Runtime.InteropServices;

namespace Trellis.Cli.Lab;

/// <summary>A process the lab started, identified by PID *and* start time so a recycled PID is never mistaken for it.</summary>
public sealed record ProcRecord(string Role, int Pid, ulong StartTime, string? Node = null, string? Log = null);

/// <summary>
/// Detached daemons and safe stopping. Daemons run in their own session with stdio on a log file
/// (DESIGN.md §5); they are stopped only by the PID recorded at start, after checking that the
/// PID still has the recorded start time (field 22 of /proc/PID/stat) — never by name.
/// </summary>
public static partial class Procs
{
    /// <summary>Starts argv[0] with argv detached (setsid, stdin /dev/null, stdout+stderr appended to <paramref name="log"/>).</summary>
    public static ProcRecord SpawnDetached(string role, IReadOnlyList<string> argv, string log, string? node = null, IReadOnlyDictionary<string, string>? env = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        int pid = Native.Spawn(argv, log, env);
        return new ProcRecord(role, pid, StartTime(pid) ?? 0, node, log);
    }

    /// <summary>The process's start time in clock ticks since boot, or null when it is gone.</summary>
    public static ulong? StartTime(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
        // comm (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
        int close = stat.LastIndexOf(')');
        var fields = stat[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state); starttime is field 22.
        if (fields.Length > 19 && fields[0] != "Z" && ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out ulong t))
        {
            return t;
        }
        return null;
    }

    public static bool IsAlive(ProcRecord p) => p.Pid > 0 && StartTime(p.Pid) == p.StartTime;

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>; only if the PID is still the recorded process.</summary>
    public static void Stop(ProcRecord p, TimeSpan grace)
    {
        if (!IsAlive(p))
        {
            return;
        }
        Native.Kill(p.Pid, 15);
        var deadline = DateTime.UtcNow + grace;
        while (IsAlive(p) && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(10);
        }
        if (IsAlive(p))
        {
            Native.Kill(p.Pid, 9);
            while (IsAlive(p) && DateTime.UtcNow < deadline + TimeSpan.FromSeconds(2))
            {
                Thread.Sleep(10);
            }
        }
    }

    /// <summary>
    /// Sends a signal to the process group the recorded process leads (it was started with setsid), so
    /// a container's children — `sh -c "…; sleep 1000"` — get it too, as a container's PID namespace
    /// would see to. Only while the leader is still the recorded process: its PID cannot be recycled
    /// before it is reaped, so the group id still means our group.
    /// </summary>
    public static void SignalGroup(ProcRecord p, int signal)
    {
        if (IsAlive(p))
        {
            Native.Kill(-p.Pid, signal);
        }
    }

    /// <summary>Sends a signal, only if the PID is still the recorded process.</summary>
    public static void Signal(ProcRecord p, int signal)
    {
        if (IsAlive(p))
        {
            Native.Kill(p.Pid, signal);
        }
    }

    /// <summary>Reaps any exited children without blocking (the supervisor's zombies).</summary>
    public static int? TryReap(int pid) => Native.WaitNoHang(pid);

    private static unsafe partial class Native
    {
        [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
        private static partial int SysKill(int pid, int sig);

        [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
        private static partial int SysWaitPid(int pid, int* status, int options);

        public static void Kill(int pid, int sig) => _ = SysKill(pid, sig);

        public static int? WaitNoHang(int pid)
        {
            int status;
            int r = SysWaitPid(pid, &status, 1 /* WNOHANG */);
            return r == pid ? status : null;
        }

        public static int Spawn(IReadOnlyList<string> argv, string log, IReadOnlyDictionary<string, string>? extraEnv)
        {
            var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
                .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
            if (extraEnv is not null)
            {
                foreach (var (k, v) in extraEnv)
                {
                    env[k] = v;
                }
            }
            return Trellis.Shared.PosixSpawn.Detached(argv, log, env.Select(kv => kv.Key + "=" + kv.Value).ToList());
        }
    }
}
