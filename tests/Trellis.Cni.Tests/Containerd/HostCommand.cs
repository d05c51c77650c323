using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Trellis.Cni.Tests.Containerd;

public sealed record CommandResult(string CommandLine, int ExitCode, string StdOut, string StdErr)
{
    public bool Succeeded => ExitCode == 0;

    public override string ToString() =>
        $"`{CommandLine}` exited {ExitCode}\n--- stdout ---\n{StdOut}\n--- stderr ---\n{StdErr}";
}

/// <summary>Runs host programs with an argument vector (never through a shell) and a hard timeout.</summary>
internal static class HostCommand
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static async Task<CommandResult> RunAsync(string file, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        string commandLine = Describe(psi);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {commandLine}");
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            // Our own child, killed by the PID we started.
            process.Kill();
            await process.WaitForExitAsync(CancellationToken.None);
            throw new TimeoutException($"`{commandLine}` did not finish within {timeout ?? DefaultTimeout}");
        }

        // A daemonised grandchild could hold the pipes open; don't let that hang the test.
        await Task.WhenAny(Task.WhenAll(stdout, stderr), Task.Delay(TimeSpan.FromSeconds(2)));
        return new CommandResult(
            commandLine,
            process.ExitCode,
            stdout.IsCompletedSuccessfully ? stdout.Result : "",
            stderr.IsCompletedSuccessfully ? stderr.Result : "");
    }

    public static async Task<string> CheckAsync(string file, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        CommandResult r = await RunAsync(file, args, timeout);
        return r.Succeeded ? r.StdOut : throw new InvalidOperationException(r.ToString());
    }

    /// <summary>First executable named <paramref name="name"/> on PATH (plus the sbin dirs, which a
    /// non-login root shell may lack), or null.</summary>
    public static string? Which(string name)
    {
        string path = Environment.GetEnvironmentVariable("PATH") ?? "";
        IEnumerable<string> dirs = path.Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]);
        foreach (string dir in dirs)
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate) && (!OperatingSystem.IsLinux() ||
                (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0))
            {
                return candidate;
            }
        }

        return null;
    }

    internal static string Describe(ProcessStartInfo psi) =>
        string.Join(' ', new[] { psi.FileName }.Concat(psi.ArgumentList.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a)));

    /// <summary>Field 22 of /proc/PID/stat (start time in clock ticks), or null if the process is gone.
    /// A recorded (PID, start time) pair identifies a process even after PID reuse.</summary>
    public static long? ProcessStartTime(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // comm (field 2) may contain spaces and parentheses: split after the last ')'.
        string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(rest[19], CultureInfo.InvariantCulture);
    }

    public static int? ParentPid(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(rest[1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static IEnumerable<int> AllPids() =>
        Directory.EnumerateDirectories("/proc")
            .Select(Path.GetFileName)
            .Where(n => n is not null && n.All(char.IsAsciiDigit))
            .Select(n => int.Parse(n!, CultureInfo.InvariantCulture));

    public static bool IsAlive(int pid) => ProcessStartTime(pid) is not null;

    public static void Signal(int pid, int signal)
    {
        if (LibC.Kill(pid, signal) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != LibC.ESRCH)
            {
                throw new InvalidOperationException($"kill({pid}, {signal}): errno {errno}");
            }
        }
    }

    public static async Task<bool> WaitForExitAsync(int pid, long startTime, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (ProcessStartTime(pid) == startTime && !IsZombie(pid))
        {
            if (sw.Elapsed > timeout)
            {
                return false;
            }

            await Task.Delay(50);
        }

        return true;
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] == 'Z';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    public static string Tail(string text, int lines) =>
        string.Join('\n', text.Split('\n').TakeLast(lines));

    internal static string ReadTail(string path, int lines)
    {
        try
        {
            return Tail(File.ReadAllText(path), lines);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"({path}: {e.Message})";
        }
    }

    internal static StringBuilder AppendLocked(this StringBuilder sb, string? line)
    {
        if (line is not null)
        {
            lock (sb)
            {
                sb.AppendLine(line);
            }
        }

        return sb;
    }
}

internal static partial class LibC
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int ESRCH = 3;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int sig);
}
