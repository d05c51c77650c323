namespace Trellis.Core.Leases;

/// <summary>
/// When to renew a subnet lease. Flannel grants 24 h and renews an hour before expiry
/// (--subnet-lease-renew-margin=60); Trellis renews halfway, as DHCP's T1 does, so a node keeps half
/// a TTL of slack to ride out a store outage before its subnet can be reclaimed.
/// </summary>
public static class LeaseTiming
{
    /// <summary>flannel's subnetTTL.</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromHours(24);

    /// <summary>flannel retries a failed renewal after a minute.</summary>
    public static readonly TimeSpan RetryInterval = TimeSpan.FromMinutes(1);

    public static DateTimeOffset NewExpiry(DateTimeOffset now, TimeSpan ttl) => now + ttl;

    /// <summary>
    /// Halfway through the TTL before expiry, but never later than half a TTL from now: a lease read
    /// back with an expiry further out than one TTL (another clock, a longer TTL before a config change)
    /// is still renewed on our schedule.
    /// </summary>
    public static DateTimeOffset RenewAt(SubnetLease lease, TimeSpan ttl, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ValidateTtl(ttl);
        var half = ttl / 2;
        var byExpiry = lease.Expires - half;
        var latest = now + half;
        return byExpiry < latest ? byExpiry : latest;
    }

    /// <summary>How long to wait before renewing; zero when the renewal is due or overdue.</summary>
    public static TimeSpan RenewDelay(SubnetLease lease, TimeSpan ttl, DateTimeOffset now)
    {
        var delay = RenewAt(lease, ttl, now) - now;
        return delay > TimeSpan.Zero ? delay : TimeSpan.Zero;
    }

    /// <summary>
    /// After a failed renewal: flannel's one minute, but sooner when less than two minutes are left, so
    /// a lease close to expiry gets more than one more try (never less than a second apart).
    /// </summary>
    public static TimeSpan RetryDelay(SubnetLease lease, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var left = lease.Expires - now;
        if (left >= 2 * RetryInterval)
        {
            return RetryInterval;
        }
        var half = left / 2;
        return half > TimeSpan.FromSeconds(1) ? half : TimeSpan.FromSeconds(1);
    }

    private static void ValidateTtl(TimeSpan ttl)
    {
        if (ttl <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ttl), ttl, "a lease TTL must be positive");
        }
    }
}
