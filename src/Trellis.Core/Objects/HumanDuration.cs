namespace Trellis.Core.Objects;

/// <summary>kubectl's AGE column (k8s.io/apimachinery/pkg/util/duration.HumanDuration).</summary>
public static class HumanDuration
{
    public static string Format(TimeSpan d)
    {
        long seconds = (long)Math.Truncate(d.TotalSeconds);
        // Up to 2 s in the future is clock skew between machines, shown as now.
        if (seconds < -1)
        {
            return "<invalid>";
        }
        if (seconds < 0)
        {
            return "0s";
        }
        if (seconds < 60 * 2)
        {
            return $"{seconds}s";
        }
        long minutes = seconds / 60;
        if (minutes < 10)
        {
            long s = seconds % 60;
            return s == 0 ? $"{minutes}m" : $"{minutes}m{s}s";
        }
        if (minutes < 60 * 3)
        {
            return $"{minutes}m";
        }
        long hours = seconds / 3600;
        if (hours < 8)
        {
            long m = minutes % 60;
            return m == 0 ? $"{hours}h" : $"{hours}h{m}m";
        }
        if (hours < 48)
        {
            return $"{hours}h";
        }
        if (hours < 24 * 8)
        {
            long h = hours % 24;
            return h == 0 ? $"{hours / 24}d" : $"{hours / 24}d{h}h";
        }
        if (hours < 24 * 365 * 2)
        {
            return $"{hours / 24}d";
        }
        if (hours < 24 * 365 * 8)
        {
            long dy = hours / 24 % 365;
            return dy == 0 ? $"{hours / 24 / 365}y" : $"{hours / 24 / 365}y{dy}d";
        }
        return $"{hours / 24 / 365}y";
    }

    /// <summary>translateTimestampSince: "&lt;unknown&gt;" without a timestamp.</summary>
    public static string Since(DateTimeOffset? time, DateTimeOffset now) => time is { } t ? Format(now - t) : "<unknown>";
}
