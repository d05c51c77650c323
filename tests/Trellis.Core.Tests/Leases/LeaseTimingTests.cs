using System.Net;
using Trellis.Core.Leases;

namespace Trellis.Core.Tests.Leases;

public class LeaseTimingTests
{
    private static readonly DateTimeOffset s_t0 = new(2025, 6, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan s_ttl = TimeSpan.FromHours(24);

    private static SubnetLease Expiring(DateTimeOffset at) =>
        new(IPNetwork.Parse("10.244.1.0/24"), "node-1", IPAddress.Parse("172.30.0.11"), null, at);

    public static TheoryData<string, double, double> Renewals() => new()
    {
        // case, hours from t0 to expiry, expected hours from t0 to renewal
        { "fresh lease: halfway", 24, 12 },
        { "read back after 5 h: still halfway", 19, 7 },
        { "less than half left: now", 6, 0 },
        { "already expired: now", -1, 0 },
        { "expiry beyond one TTL: never later than half a TTL from now", 72, 12 },
    };

    [Theory]
    [MemberData(nameof(Renewals))]
    public void Renews_at_half_the_ttl_or_earlier(string name, double expiresInHours, double renewInHours)
    {
        var lease = Expiring(s_t0.AddHours(expiresInHours));
        Assert.True(TimeSpan.FromHours(renewInHours) == LeaseTiming.RenewDelay(lease, s_ttl, s_t0), name);
        Assert.True(LeaseTiming.RenewAt(lease, s_ttl, s_t0) <= s_t0 + s_ttl / 2, name);
    }

    [Fact]
    public void A_new_lease_expires_one_ttl_from_now() =>
        Assert.Equal(s_t0.AddHours(24), LeaseTiming.NewExpiry(s_t0, LeaseTiming.DefaultTtl));

    [Theory]
    [InlineData(600, 60)]
    [InlineData(120, 60)]
    [InlineData(90, 45)]
    [InlineData(1, 1)]
    [InlineData(-30, 1)]
    public void Failed_renewals_retry_every_minute_sooner_near_expiry(int secondsLeft, int retrySeconds) =>
        Assert.Equal(TimeSpan.FromSeconds(retrySeconds), LeaseTiming.RetryDelay(Expiring(s_t0.AddSeconds(secondsLeft)), s_t0));

    [Fact]
    public void Ttl_must_be_positive() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => LeaseTiming.RenewAt(Expiring(s_t0), TimeSpan.Zero, s_t0));

    [Fact]
    public void Expired_means_at_or_after_expiry()
    {
        var lease = Expiring(s_t0);
        Assert.False(lease.IsExpired(s_t0.AddTicks(-1)));
        Assert.True(lease.IsExpired(s_t0));
    }
}
