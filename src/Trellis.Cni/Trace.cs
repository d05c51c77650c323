using System.Diagnostics;

namespace Trellis.Cni;

/// <summary>
/// Stage timings on stderr when TRELLIS_CNI_TRACE is set: where an ADD's milliseconds go
/// (process start, config, IPAM, netlink), without a profiler.
/// </summary>
internal static class Trace
{
    private static readonly bool s_on = Environment.GetEnvironmentVariable("TRELLIS_CNI_TRACE") is { Length: > 0 };
    private static readonly long s_start = Stopwatch.GetTimestamp();

    public static void Mark(string stage)
    {
        if (s_on)
        {
            // Process start time is measured from exec by the caller; this is from Main.
            Console.Error.WriteLine($"trace {Stopwatch.GetElapsedTime(s_start).TotalMilliseconds,8:0.000} ms  {stage}");
        }
    }
}
