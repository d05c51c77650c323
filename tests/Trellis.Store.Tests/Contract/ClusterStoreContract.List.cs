using System.Globalization;
using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.Contract;

public abstract partial class ClusterStoreContract
{
    [ContractFact]
    public async Task List_returns_exactly_the_keys_under_the_prefix_sorted_by_key()
    {
        foreach (string key in new[] { "/registry/pods/demo/web-2", "/registry/pods/demo/web-1", "/registry/pods/demo2/x", "/registry/pods/demo", "/registry/services/demo/web", "/registry/pods/demo/web-1/sub" })
        {
            await Store.CreateAsync(key, Utf8(key));
        }

        var underDemo = await Store.ListAsync("/registry/pods/demo/");
        var plainPrefix = await Store.ListAsync("/registry/pods/demo");
        var everything = await Store.ListAsync("/");

        Assert.Equal(["/registry/pods/demo/web-1", "/registry/pods/demo/web-1/sub", "/registry/pods/demo/web-2"], underDemo.Items.Select(i => i.Key));
        Assert.Equal(["/registry/pods/demo", "/registry/pods/demo/web-1", "/registry/pods/demo/web-1/sub", "/registry/pods/demo/web-2", "/registry/pods/demo2/x"], plainPrefix.Items.Select(i => i.Key));
        Assert.Equal(6, everything.Items.Count);
        Assert.All(everything.Items, i => Assert.Equal(i.Key, i.Text()));
    }

    [ContractFact]
    public async Task List_sorts_by_unicode_code_point_like_etcd()
    {
        // UTF-16 ordinal order would put U+1F600 (a surrogate pair) before U+FFFD; byte/code point order puts it last.
        string[] keys = ["/u/\U0001F600", "/u/\uFFFD", "/u/z", "/u/\u00E9", "/u/A"];
        foreach (string key in keys)
        {
            await Store.CreateAsync(key, Utf8("v"));
        }

        var list = await Store.ListAsync("/u/");

        Assert.Equal(["/u/A", "/u/z", "/u/\u00E9", "/u/\uFFFD", "/u/\U0001F600"], list.Items.Select(i => i.Key));
        Assert.Single((await Store.ListAsync("/u/\U0001F600")).Items);
    }

    [ContractFact]
    public async Task List_omits_deleted_keys_and_reports_current_revisions()
    {
        long a = await Store.CreateAsync("/l/a", Utf8("a1"));
        await Store.CreateAsync("/l/b", Utf8("b"));
        long a2 = await Store.UpdateAsync("/l/a", Utf8("a2"), a);
        await Store.DeleteAsync("/l/b");

        var list = await Store.ListAsync("/l/");

        var item = Assert.Single(list.Items);
        Assert.Equal(("/l/a", "a2", a, a2), (item.Key, item.Text(), item.CreateRevision, item.ModRevision));
        Assert.Equal(await Store.CurrentRevisionAsync(), list.Revision);
    }

    [ContractFact]
    public async Task List_revision_counts_writes_outside_the_prefix_too()
    {
        await Store.CreateAsync("/l/a", Utf8("a"));
        await Store.CreateAsync("/other/b", Utf8("b"));

        var list = await Store.ListAsync("/l/");

        Assert.Equal(Rev(2), list.Revision);
    }

    [ContractFact]
    public async Task List_is_one_consistent_snapshot_while_writers_run()
    {
        // The writer stores sequence number s in key /c/(s mod 10). A consistent snapshot therefore
        // holds ten consecutive sequence numbers, the newest being the list revision's; a list
        // that read keys at different moments would show a gap or a number from the "future".
        const int Slots = 10;
        const int Writes = 300;
        var revisionOfSeq = new long[Writes + 1];
        var created = new long[Slots];
        for (int s = 1; s <= Slots; s++)
        {
            revisionOfSeq[s] = created[s % Slots] = await Store.CreateAsync($"/c/{s % Slots}", Utf8(s.ToString(CultureInfo.InvariantCulture)));
        }
        var writer = Task.Run(async () =>
        {
            var mod = (long[])created.Clone();
            for (int s = Slots + 1; s <= Writes; s++)
            {
                int slot = s % Slots;
                revisionOfSeq[s] = mod[slot] = await Store.UpdateAsync($"/c/{slot}", Utf8(s.ToString(CultureInfo.InvariantCulture)), mod[slot]);
            }
        });

        int lists = 0;
        while (!writer.IsCompleted || lists < 5)
        {
            var list = await Store.ListAsync("/c/");
            lists++;
            var seqs = list.Items.Select(i => int.Parse(i.Text(), CultureInfo.InvariantCulture)).Order().ToArray();
            Assert.Equal(Slots, seqs.Length);
            Assert.Equal(Enumerable.Range(seqs[0], Slots), seqs);
            Assert.All(list.Items, i => Assert.True(i.ModRevision <= list.Revision));
            Assert.Equal(list.Revision, list.Items.Max(i => i.ModRevision));
        }
        await writer;
    }

    [ContractFact]
    public async Task Watching_from_a_list_revision_continues_exactly_where_the_list_left_off()
    {
        for (int i = 0; i < 20; i++)
        {
            await Store.CreateAsync($"/w/{i:D2}", Utf8("0"));
        }
        var writer = Task.Run(async () =>
        {
            for (int round = 1; round <= 10; round++)
            {
                for (int i = 0; i < 20; i += 3)
                {
                    var item = await Store.GetAsync($"/w/{i:D2}");
                    await Store.UpdateAsync(item!.Key, Utf8(round.ToString(CultureInfo.InvariantCulture)), item.ModRevision);
                }
            }
        });
        await Task.Delay(5);

        // Rebuild the state from a list plus the watch that follows it: it must end equal to a final list.
        var list = await Store.ListAsync("/w/");
        var state = list.Items.ToDictionary(i => i.Key, i => i.ModRevision);
        await writer;
        long final = await Store.CurrentRevisionAsync();
        await using var watch = new WatchReader(Store, "/w/", list.Revision);
        long last = list.Revision;
        while (last < final)
        {
            var e = await watch.NextAsync();
            Assert.Equal(last + 1, e.Revision);
            state[e.Item.Key] = e.Item.ModRevision;
            last = e.Revision;
        }

        var expected = (await Store.ListAsync("/w/")).Items.ToDictionary(i => i.Key, i => i.ModRevision);
        Assert.Equal(expected.OrderBy(p => p.Key, StringComparer.Ordinal), state.OrderBy(p => p.Key, StringComparer.Ordinal));
    }
}
