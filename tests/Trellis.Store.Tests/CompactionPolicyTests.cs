namespace Trellis.Store.Tests;

public sealed class CompactionPolicyTests
{
    private static readonly DateTimeOffset s_t0 = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Keeps_the_newest_revisions_when_there_is_no_age_limit()
    {
        var policy = new CompactionPolicy(minRetainedRevisions: 100, minRetainedAge: TimeSpan.Zero);

        Assert.Equal(0, policy.Next(s_t0, 50));
        Assert.Equal(0, policy.Next(s_t0, 100));
        Assert.Equal(400, policy.Next(s_t0, 500));
    }

    [Fact]
    public void Keeps_every_revision_younger_than_the_age_limit()
    {
        var policy = new CompactionPolicy(minRetainedRevisions: 10, minRetainedAge: TimeSpan.FromMinutes(5));
        var minute = TimeSpan.FromMinutes(1);

        // Revision 100 at t0, 200 at t0+1m, …: nothing is five minutes old until t0+5m.
        for (int m = 0; m < 5; m++)
        {
            Assert.Equal(0, policy.Next(s_t0 + (m * minute), 100 + (m * 100)));
        }
        Assert.Equal(100, policy.Next(s_t0 + (5 * minute), 600));
        Assert.Equal(200, policy.Next(s_t0 + (6 * minute), 700));
        // Idle store: the count limit binds once the age limit lets more go.
        Assert.Equal(690, policy.Next(s_t0 + (30 * minute), 700));
    }

    [Fact]
    public void A_fresh_process_compacts_nothing_until_it_has_watched_for_the_age_limit()
    {
        var policy = new CompactionPolicy(minRetainedRevisions: 1, minRetainedAge: TimeSpan.FromMinutes(10));

        Assert.Equal(0, policy.Next(s_t0, 1_000_000));
        Assert.Equal(0, policy.Next(s_t0 + TimeSpan.FromMinutes(9), 1_000_000));
        Assert.Equal(999_999, policy.Next(s_t0 + TimeSpan.FromMinutes(10), 1_000_000));
    }
}
