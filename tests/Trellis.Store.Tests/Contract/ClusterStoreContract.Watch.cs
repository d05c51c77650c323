using System.Collections.Concurrent;
using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.Contract;

public abstract partial class ClusterStoreContract
{
    [ContractFact]
    public async Task Watch_from_0_replays_history_then_delivers_live_events()
    {
        long r1 = await Store.CreateAsync("/w/a", Utf8("a1"));
        long r2 = await Store.UpdateAsync("/w/a", Utf8("a2"), r1);
        await using var watch = new WatchReader(Store, "/w/", 0);

        var history = await watch.TakeAsync(2);
        long r3 = await Store.CreateAsync("/w/b", Utf8("b1"));
        var live = await watch.NextAsync();

        Assert.Equal([(WatchEventType.Put, "/w/a", "a1", r1), (WatchEventType.Put, "/w/a", "a2", r2)], history.Select(e => (e.Type, e.Item.Key, e.Item.Text(), e.Revision)));
        Assert.Equal((WatchEventType.Put, "/w/b", "b1", r3, r3, r3), (live.Type, live.Item.Key, live.Item.Text(), live.Revision, live.Item.CreateRevision, live.Item.ModRevision));
        Assert.Equal(r1, history[1].Item.CreateRevision);
        Assert.True(await watch.IsQuietAsync(TimeSpan.FromMilliseconds(100)));
    }

    [ContractFact]
    public async Task Watch_from_a_revision_delivers_only_later_events()
    {
        await Store.CreateAsync("/w/a", Utf8("1"));
        long r2 = await Store.CreateAsync("/w/b", Utf8("2"));
        long r3 = await Store.CreateAsync("/w/c", Utf8("3"));

        await using var watch = new WatchReader(Store, "/w/", r2);

        Assert.Equal(r3, (await watch.NextAsync()).Revision);
        Assert.True(await watch.IsQuietAsync(TimeSpan.FromMilliseconds(100)));
    }

    [ContractFact]
    public async Task Watch_from_the_current_revision_sees_only_new_writes()
    {
        await Store.CreateAsync("/w/old", Utf8("old"));
        long now = await Store.CurrentRevisionAsync();
        await using var watch = new WatchReader(Store, "/w/", now);
        Assert.True(await watch.IsQuietAsync(TimeSpan.FromMilliseconds(100)));

        long r = await Store.CreateAsync("/w/new", Utf8("new"));

        var e = await watch.NextAsync();
        Assert.Equal(("/w/new", r), (e.Item.Key, e.Revision));
    }

    [ContractFact]
    public async Task Watch_delivers_only_keys_under_its_prefix()
    {
        await using var watch = new WatchReader(Store, "/registry/pods/", 0);
        await Store.CreateAsync("/registry/services/demo/web", Utf8("svc"));
        await Store.CreateAsync("/registry/podsX", Utf8("not a pod"));
        long pod = await Store.CreateAsync("/registry/pods/demo/web-1", Utf8("pod"));
        await Store.CreateAsync("/trellis/leases/subnets/10.244.1.0-24", Utf8("lease"));

        var e = await watch.NextAsync();

        Assert.Equal(("/registry/pods/demo/web-1", pod), (e.Item.Key, e.Revision));
        Assert.True(await watch.IsQuietAsync(TimeSpan.FromMilliseconds(100)));
    }

    [ContractFact]
    public async Task Delete_event_carries_the_last_value_and_the_delete_revision()
    {
        long created = await Store.CreateAsync("/w/x", Utf8("first"));
        long updated = await Store.UpdateAsync("/w/x", Utf8("last"), created);
        await using var watch = new WatchReader(Store, "/w/", updated);

        long deleted = await Store.DeleteAsync("/w/x");

        var e = await watch.NextAsync();
        Assert.Equal(WatchEventType.Delete, e.Type);
        Assert.Equal(deleted, e.Revision);
        Assert.Equal(("/w/x", "last", created, updated), (e.Item.Key, e.Item.Text(), e.Item.CreateRevision, e.Item.ModRevision));
    }

    [ContractFact]
    public async Task Watch_replays_delete_events_from_history_too()
    {
        long created = await Store.CreateAsync("/w/x", Utf8("v"));
        long deleted = await Store.DeleteAsync("/w/x");

        await using var watch = new WatchReader(Store, "/w/", created);

        var e = await watch.NextAsync();
        Assert.Equal((WatchEventType.Delete, deleted, "v", created), (e.Type, e.Revision, e.Item.Text(), e.Item.ModRevision));
    }

    [ContractFact]
    public async Task Watch_delivers_long_histories_in_order()
    {
        // More than one read batch of history, so the replay crosses batch boundaries.
        for (int i = 0; i < 700; i++)
        {
            await Store.CreateAsync($"/h/{i:D4}", Utf8("v"));
        }
        await using var watch = new WatchReader(Store, "/h/", 0);

        var events = await watch.TakeAsync(700);

        Assert.Equal(Revs(1, 700), events.Select(e => e.Revision));
    }

    [ContractFact]
    public async Task Watch_under_concurrent_writers_is_in_revision_order_without_gaps_or_duplicates()
    {
        const int Writers = 4;
        const int PerWriter = 100;
        var peer = OpenPeer();
        await using var watch = new WatchReader(Store, "/cw/", 0);

        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            // Half the writers use a second client (for SQLite, another connection), like another process.
            var client = w % 2 == 0 ? Store : peer;
            for (int i = 0; i < PerWriter; i++)
            {
                await client.CreateAsync($"/cw/{w}/{i:D3}", Utf8($"{w}:{i}"));
            }
        })).ToArray();
        var events = await watch.TakeAsync(Writers * PerWriter);
        await Task.WhenAll(writers);

        Assert.Equal(Revs(1, Writers * PerWriter), events.Select(e => e.Revision));
        Assert.Equal(Writers * PerWriter, events.Select(e => e.Item.Key).Distinct().Count());
        for (int w = 0; w < Writers; w++)
        {
            // Each writer's own creates appear in the order it made them.
            var mine = events.Where(e => e.Item.Key.StartsWith($"/cw/{w}/", StringComparison.Ordinal)).Select(e => e.Item.Key).ToList();
            Assert.Equal(Enumerable.Range(0, PerWriter).Select(i => $"/cw/{w}/{i:D3}"), mine);
        }
        Assert.True(await watch.IsQuietAsync(TimeSpan.FromMilliseconds(100)));
    }

    [ContractFact]
    public async Task Watcher_reconnecting_with_its_last_revision_misses_and_repeats_nothing()
    {
        const int Total = 600;
        var peer = OpenPeer();
        var writer = Task.Run(async () =>
        {
            await Store.CreateAsync("/rc/counter", Utf8("0"));
            for (int i = 1; i < Total; i++)
            {
                await IncrementAsync(i % 2 == 0 ? Store : peer, "/rc/counter");
            }
        });

        // Disconnect every few events (dropping the enumerator mid-stream) and resume from the last revision seen.
        var seen = new List<WatchEvent>();
        long last = 0;
        int reconnects = 0;
        while (seen.Count < Total)
        {
            await using var watch = new WatchReader(Store, "/rc/", last);
            int take = Math.Min(Random.Shared.Next(1, 40), Total - seen.Count);
            foreach (var e in await watch.TakeAsync(take))
            {
                seen.Add(e);
                last = e.Revision;
            }
            reconnects++;
        }
        await writer;

        Assert.True(reconnects > 10);
        Assert.Equal(Revs(1, Total), seen.Select(e => e.Revision));
        Assert.Equal(Enumerable.Range(0, Total).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), seen.Select(e => e.Item.Text()));
    }

    [ContractFact]
    public async Task Many_watchers_each_see_every_event()
    {
        var watchers = new List<WatchReader>();
        for (int i = 0; i < 8; i++)
        {
            watchers.Add(new WatchReader(Store, "/mw/", 0));
        }
        try
        {
            for (int i = 0; i < 50; i++)
            {
                await Store.CreateAsync($"/mw/{i:D2}", Utf8("v"));
            }
            var results = new ConcurrentBag<long[]>();
            await Task.WhenAll(watchers.Select(async w => results.Add((await w.TakeAsync(50)).Select(e => e.Revision).ToArray())));

            Assert.All(results, revisions => Assert.Equal(Revs(1, 50), revisions));
        }
        finally
        {
            foreach (var w in watchers)
            {
                await w.DisposeAsync();
            }
        }
    }

    [ContractFact]
    public async Task Cancelling_a_watch_ends_it_with_OperationCanceledException()
    {
        using var cts = new CancellationTokenSource();
        var watch = Store.WatchAsync("/w/", 0, cts.Token).GetAsyncEnumerator();
        var next = watch.MoveNextAsync().AsTask();
        await Task.Delay(50);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => next);
        await watch.DisposeAsync();
    }

    [ContractFact]
    public async Task Disposing_the_store_ends_open_watches_with_ObjectDisposedException()
    {
        var watch = Store.WatchAsync("/w/", 0).GetAsyncEnumerator();
        var next = watch.MoveNextAsync().AsTask();
        await Task.Delay(50);

        await Store.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => next);
        await watch.DisposeAsync();
    }
}
