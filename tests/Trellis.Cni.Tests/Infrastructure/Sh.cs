using System.Diagnostics;

namespace Trellis.Cni.Tests.Infrastructure;

/// <summary>Runs a helper command (test set-up only: the product never shells out on the CNI path).</summary>
public static class Sh
{
    public static (int Exit, string Out, string Err) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, o.Result, e.Result);
    }

    public static string Must(string file, params string[] args)
    {
        var (exit, o, e) = Run(file, args);
        if (exit != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({exit}): {e}{o}");
        }
        return o;
    }
}

/// <summary>A background process stopped (by its recorded PID) when the test ends.</summary>
public sealed class KilledOnDispose(System.Diagnostics.Process process) : IDisposable
{
    public System.Diagnostics.Process Process { get; } = process;

    public void Dispose()
    {
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit();
        }
        Process.Dispose();
    }
}
