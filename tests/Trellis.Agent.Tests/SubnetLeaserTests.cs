using System.Net;
using Microsoft.Extensions.Time.Testing;
using Trellis.Core.Leases;
using Trellis.Core.Routing;
using Trellis.Store;

namespace Trellis.Agent.Tests;

/// <summary>Flannel's lease semantics over the real SQLite store (compare-and-swap across connections) with a fake clock.</summary>
public sealed class SubnetLeaserTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("trl-lease-").FullName;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-26T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly List<IClusterStore> _stores = [];

    private IClusterStore Store()
    {
        var s = ClusterStore.Open($"sqlite://{_dir}/store.db", new ClusterStoreOptions { TimeProvider = _time });
        _stores.Add(s);
        return s;
    }

    private SubnetLeaser Leaser(string cluster = "10.244.0.0/16", int length = 24) =>
        new(Store(), IPNetwork.Parse(cluster), length, _time) { Ttl = TimeSpan.FromHours(1) };

    private static IPAddress Ip(int i) => IPAddress.Parse($"172.30.0.{10 + i}");

    [Fact]
    public async Task Thirty_nodes_racing_on_separate_connections_never_share_a_subnet()
    {
        // Each node has its own store connection, as separate agents would: only compare-and-swap keeps them apart.
        var leasers = Enumerable.Range(0, 30).Select(_ => Leaser()).ToList();
        var outcomes = await Task.WhenAll(leasers.Select((l, i) => Task.Run(() => l.AcquireAsync($"node-{i}", Ip(i), MacAddress.ForNode($"node-{i}"), null, CancellationToken.None))));
        Assert.All(outcomes, o => Assert.True(o.Held, o.Message));
        Assert.Equal(30, outcomes.Select(o => o.Lease!.Subnet).Distinct().Count());
        Assert.DoesNotContain(outcomes, o => o.Lease!.Subnet.Equals(IPNetwork.Parse("10.244.0.0/24"))); // subnet 0 is never leased
        var stored = await Store().ListAsync(SubnetLease.KeyPrefix);
        Assert.Equal(30, stored.Items.Count);
    }

    [Fact]
    public async Task A_restarted_node_renews_its_own_lease_and_a_node_that_lost_it_gets_its_previous_subnet_back()
    {
        var leaser = Leaser();
        var first = await leaser.AcquireAsync("node-1", Ip(1), null, IPNetwork.Parse("10.244.7.0/24"), CancellationToken.None);
        Assert.Equal((SubnetChoiceReason.Previous, "10.244.7.0/24"), (first.Reason, first.Lease!.Subnet.ToString()));

        _time.Advance(TimeSpan.FromMinutes(40));
        var renewed = await Leaser().AcquireAsync("node-1", Ip(1), null, null, CancellationToken.None); // a new process
        Assert.Equal(SubnetChoiceReason.OwnLease, renewed.Reason);
        Assert.Equal(first.Lease.Subnet, renewed.Lease!.Subnet);
        Assert.True(renewed.Lease.Expires > first.Lease.Expires);

        await Store().DeleteAsync(SubnetLease.KeyFor(first.Lease.Subnet));
        var again = await leaser.AcquireAsync("node-1", Ip(1), null, first.Lease.Subnet, CancellationToken.None);
        Assert.Equal((SubnetChoiceReason.Previous, first.Lease.Subnet), (again.Reason, again.Lease!.Subnet));
    }

    [Fact]
    public async Task When_no_subnet_is_left_the_refusal_says_why_and_an_expired_lease_is_reclaimed_later()
    {
        // 10.9.0.0/28 in /30s: four subnets, the first never leased, so three nodes fill it.
        for (int i = 1; i <= 3; i++)
        {
            Assert.True((await Leaser("10.9.0.0/28", 30).AcquireAsync($"node-{i}", Ip(i), null, null, CancellationToken.None)).Held);
        }
        var refused = await Leaser("10.9.0.0/28", 30).AcquireAsync("node-4", Ip(4), null, null, CancellationToken.None);
        Assert.False(refused.Held);
        Assert.Equal(SubnetChoiceReason.Exhausted, refused.Reason);
        Assert.Contains("10.9.0.0/28", refused.Message, StringComparison.Ordinal);

        // node-2 stops renewing; after its TTL its subnet goes to node-4, and never while it is live.
        _time.Advance(TimeSpan.FromMinutes(30));
        await Leaser("10.9.0.0/28", 30).AcquireAsync("node-1", Ip(1), null, null, CancellationToken.None);
        await Leaser("10.9.0.0/28", 30).AcquireAsync("node-3", Ip(3), null, null, CancellationToken.None);
        Assert.False((await Leaser("10.9.0.0/28", 30).AcquireAsync("node-4", Ip(4), null, null, CancellationToken.None)).Held);
        _time.Advance(TimeSpan.FromMinutes(31));
        var reclaimed = await Leaser("10.9.0.0/28", 30).AcquireAsync("node-4", Ip(4), null, null, CancellationToken.None);
        Assert.True(reclaimed.Held, reclaimed.Message);
        Assert.Equal(SubnetChoiceReason.ReclaimExpired, reclaimed.Reason);
    }

    // IAsyncLifetime, not IAsyncDisposable: this xunit only awaits the former on a test class, so the
    // temporary store directory used to be left in /tmp after every test.
    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var s in _stores)
        {
            await s.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }
}
