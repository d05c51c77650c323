using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.Contract;

public abstract partial class ClusterStoreContract
{
    [ContractFact]
    public async Task Watching_from_before_the_compact_revision_throws_compacted()
    {
        long created = await Store.CreateAsync("/cp/a", Utf8("1"));
        long r2 = await Store.UpdateAsync("/cp/a", Utf8("2"), created);
        long r3 = await Store.UpdateAsync("/cp/a", Utf8("3"), r2);
        await Store.CreateAsync("/cp/b", Utf8("b"));

        await CompactAsync(Store, r3);

        var ex = await Assert.ThrowsAsync<StoreCompactedException>(async () =>
        {
            await foreach (var _ in Store.WatchAsync("/cp/", r2))
            {
            }
        });
        Assert.Equal((r2, r3), (ex.RequestedRevision, ex.CompactRevision));
        Assert.Equal("watch", ex.Operation);
        Assert.Contains("/cp/", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<StoreCompactedException>(() => new WatchReader(Store, "/cp/", 0).NextAsync());

        // From the compact revision itself, every later event is still there.
        await using var watch = new WatchReader(Store, "/cp/", r3);
        Assert.Equal("/cp/b", (await watch.NextAsync()).Item.Key);
    }

    [ContractFact]
    public async Task Compaction_keeps_the_current_state_of_every_key()
    {
        long a = await Store.CreateAsync("/cp/a", Utf8("a1"));
        await Store.UpdateAsync("/cp/a", Utf8("a2"), a);
        await Store.CreateAsync("/cp/gone", Utf8("x"));
        await Store.DeleteAsync("/cp/gone");
        long again = await Store.CreateAsync("/cp/again", Utf8("1"));
        await Store.DeleteAsync("/cp/again");
        long recreated = await Store.CreateAsync("/cp/again", Utf8("2"));
        await Store.CreateAsync("/cp/late", Utf8("late"));
        var before = await Store.ListAsync("/cp/");
        long revision = await Store.CurrentRevisionAsync();

        await CompactAsync(Store, revision);
        await CompactAsync(Store, revision); // idempotent

        var after = await Store.ListAsync("/cp/");
        Assert.Equal(before.Revision, after.Revision);
        Assert.Equal(before.Items, after.Items, (x, y) => x.Key == y.Key && x.Value.SequenceEqual(y.Value) && x.CreateRevision == y.CreateRevision && x.ModRevision == y.ModRevision);
        Assert.Null(await Store.GetAsync("/cp/gone"));
        Assert.Equal(recreated, (await Store.GetAsync("/cp/again"))!.CreateRevision);
        Assert.NotEqual(again, recreated);
        Assert.Equal(revision, await Store.CurrentRevisionAsync());

        // Writes after compaction continue the same revision sequence and CAS still works.
        var item = await Store.GetAsync("/cp/a");
        Assert.Equal(revision + 1, await Store.UpdateAsync("/cp/a", Utf8("a3"), item!.ModRevision));
        Assert.Equal(revision + 2, await Store.DeleteAsync("/cp/late"));
        Assert.Equal(revision + 3, await Store.CreateAsync("/cp/gone", Utf8("back")));
    }

    [ContractFact]
    public async Task A_watcher_that_falls_behind_compaction_is_told_rather_than_skipped_ahead()
    {
        await Store.CreateAsync("/cp/a", Utf8("0"));
        await using var watch = new WatchReader(Store, "/cp/", 0);
        Assert.Equal(Rev(1), (await watch.NextAsync()).Revision);

        for (int i = 0; i < 10; i++)
        {
            await IncrementAsync(Store, "/cp/a");
        }
        await CompactAsync(Store, Rev(8));

        if (!WatchEventsArePushed)
        {
            // Reads history when asked: finds it compacted and says so.
            await Assert.ThrowsAsync<StoreCompactedException>(() => watch.NextAsync());
            return;
        }
        // The server pushed the events down the open stream before the compaction: it may
        // deliver them, and then it must deliver every one. What no backend may do is skip ahead.
        List<WatchEvent> delivered;
        try
        {
            delivered = await watch.TakeAsync(10);
        }
        catch (StoreCompactedException)
        {
            return;
        }
        Assert.Equal(Revs(2, 10), delivered.Select(e => e.Revision));
    }

    [ContractFact]
    public async Task Background_compaction_keeps_the_configured_revisions_and_age()
    {
        // A store of its own whose compactor ticks every minute and keeps 5 revisions and 1 minute.
        await using var store = CreateStore(new ClusterStoreOptions
        {
            TimeProvider = Clock,
            CompactionInterval = TimeSpan.FromMinutes(1),
            CompactionMinRetainedRevisions = 5,
            CompactionMinRetainedAge = TimeSpan.FromMinutes(1),
        });
        await store.CreateAsync("/bg/n", Utf8("0"));
        for (int i = 0; i < 19; i++)
        {
            await IncrementAsync(store, "/bg/n");
        }

        // Advance minute by minute until a tick has seen the revisions age past a minute.
        await EventuallyAsync(async () =>
        {
            Clock.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(20);
            try
            {
                await using var probe = new WatchReader(store, "/bg/", Rev(14));
                await probe.NextAsync();
                return false;
            }
            catch (StoreCompactedException ex)
            {
                Assert.Equal(Rev(15), ex.CompactRevision); // 20 revisions, keep the newest 5
                return true;
            }
        }, "background compaction");

        await using var watch = new WatchReader(store, "/bg/", Rev(15));
        Assert.Equal(Revs(16, 5), (await watch.TakeAsync(5)).Select(e => e.Revision));
        Assert.Equal("19", (await store.GetAsync("/bg/n"))!.Text());
    }
}
