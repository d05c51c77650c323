using System.Globalization;
using Trellis.Store.Tests.Support;
using Xunit.Abstractions;

namespace Trellis.Store.Tests.Etcd;

/// <summary>
/// The requirement against a real 3-member etcd cluster: a client keeps writing and
/// watching while the member it talks to — the raft leader — is SIGKILLed, and after it restarts.
/// </summary>
public sealed class EtcdClusterTests(ITestOutputHelper output)
{
    private const int WritesPerPhase = 100;

    [EtcdFact]
    public async Task Writes_and_a_watch_carry_on_while_the_leader_is_killed_and_after_it_restarts()
    {
        await using var cluster = await EtcdCluster.StartAsync(3, EtcdTiming.Cluster);
        var leader = await cluster.LeaderAsync();
        // The leader first: it is the member this client prefers, so the kill hits its connections.
        var order = cluster.Members.OrderBy(m => m == leader ? 0 : 1).ToList();
        await using var store = ClusterStore.Open("etcd://" + string.Join(",", order.Select(m => m.ClientEndpoint)));
        long start = await store.CurrentRevisionAsync();
        await using var watch = new WatchReader(store, "/kill/", start);

        var outcomes = new Dictionary<string, bool?>(); // true: written; null: the store said the outcome is unknown
        int next = 0;
        async Task WriteAsync(int count)
        {
            for (int i = 0; i < count; i++, next++)
            {
                string key = $"/kill/{next:D4}";
                try
                {
                    await store.CreateAsync(key, Bytes.Utf8(next.ToString(CultureInfo.InvariantCulture)));
                    outcomes[key] = true;
                }
                catch (StoreUnavailableException ex) when (ex.Message.Contains("outcome is unknown", StringComparison.Ordinal))
                {
                    // The request was on the killed member's connection: it may or may not commit.
                    output.WriteLine($"{key}: {ex.Message}");
                    outcomes[key] = null;
                }
            }
        }

        await WriteAsync(WritesPerPhase);
        var killer = Task.Run(async () =>
        {
            await Task.Delay(15);
            leader.Kill();
        });
        await WriteAsync(WritesPerPhase); // across the kill and the election that follows
        await killer;
        await leader.WaitForExitAsync();
        var newLeader = await cluster.LeaderAsync();
        await WriteAsync(WritesPerPhase);
        leader.Start(); // same data directory: it rejoins and catches up
        await leader.WaitHealthyAsync(TimeSpan.FromSeconds(20));
        await WriteAsync(WritesPerPhase);

        var final = await store.ListAsync("/kill/");
        var keys = final.Items.Select(i => i.Key).ToList();
        output.WriteLine($"leader {leader.Name} killed, then {newLeader.Name} led; {keys.Count} keys, {outcomes.Count(o => o.Value is null)} unknown outcomes, revisions {start}..{final.Revision}");

        Assert.NotEqual(leader, newLeader);
        Assert.All(outcomes.Where(o => o.Value == true), o => Assert.Contains(o.Key, keys));
        // Only writes caught in flight by the kill or the election may end "unknown"; the rest went through.
        Assert.True(outcomes.Count(o => o.Value == true) >= outcomes.Count - 5, "writes did not keep working across the kill");
        // Nothing but these creates wrote: the watch must show each exactly once, in order, gap-free.
        var events = await watch.TakeAsync(keys.Count);
        Assert.Equal(Enumerable.Range(1, keys.Count).Select(i => start + i), events.Select(e => e.Revision));
        Assert.Equal(keys, events.Select(e => e.Item.Key));
        Assert.Equal(start + keys.Count, final.Revision);
        Assert.True(await watch.IsQuietAsync(TimeSpan.FromMilliseconds(100)));

        // The restarted member serves the same, complete state.
        await using var restarted = ClusterStore.Open("etcd://" + leader.ClientEndpoint);
        var there = await restarted.ListAsync("/kill/");
        Assert.Equal(keys, there.Items.Select(i => i.Key));
        Assert.Equal(final.Revision, there.Revision);
    }
}
