using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.Contract;

public abstract partial class ClusterStoreContract
{
    [ContractFact]
    public async Task A_new_store_is_empty_at_its_initial_revision()
    {
        Assert.Equal(InitialRevision, await Store.CurrentRevisionAsync());
        var list = await Store.ListAsync("/");
        Assert.Empty(list.Items);
        Assert.Equal(InitialRevision, list.Revision);
    }

    [ContractFact]
    public async Task Create_returns_the_new_revision_and_Get_returns_the_item()
    {
        long revision = await Store.CreateAsync("/registry/pods/demo/web-1", Utf8("""{"kind":"Pod"}"""));

        Assert.Equal(Rev(1), revision);
        var item = await Store.GetAsync("/registry/pods/demo/web-1");
        Assert.NotNull(item);
        Assert.Equal("/registry/pods/demo/web-1", item.Key);
        Assert.Equal("""{"kind":"Pod"}""", item.Text());
        Assert.Equal(revision, item.CreateRevision);
        Assert.Equal(revision, item.ModRevision);
        Assert.Equal(0, item.LeaseId);
        Assert.Equal(revision, await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task Get_of_a_missing_key_returns_null()
    {
        await Store.CreateAsync("/a/b", Utf8("x"));

        Assert.Null(await Store.GetAsync("/a"));
        Assert.Null(await Store.GetAsync("/a/b/c"));
        Assert.Null(await Store.GetAsync("/a/bc"));
    }

    [ContractFact]
    public async Task Every_write_advances_the_store_revision_by_exactly_one()
    {
        long r1 = await Store.CreateAsync("/k/a", Utf8("1"));
        long r2 = await Store.CreateAsync("/k/b", Utf8("1"));
        long r3 = await Store.UpdateAsync("/k/a", Utf8("2"), r1);
        long r4 = await Store.DeleteAsync("/k/b");
        long r5 = await Store.CreateAsync("/k/b", Utf8("again"));

        Assert.Equal(Revs(1, 5), [r1, r2, r3, r4, r5]);
        Assert.Equal(Rev(5), await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task Values_round_trip_byte_for_byte_including_empty_and_binary()
    {
        byte[] binary = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        byte[] large = new byte[KeyRules.MaxValueBytes];
        new Random(7).NextBytes(large);
        await Store.CreateAsync("/v/empty", ReadOnlyMemory<byte>.Empty);
        await Store.CreateAsync("/v/binary", binary);
        await Store.CreateAsync("/v/large", large);

        Assert.Empty((await Store.GetAsync("/v/empty"))!.Value);
        Assert.Equal(binary, (await Store.GetAsync("/v/binary"))!.Value);
        Assert.Equal(large, (await Store.GetAsync("/v/large"))!.Value);
        var empty = Assert.Single((await Store.ListAsync("/v/")).Items, i => i.Key == "/v/empty");
        Assert.Empty(empty.Value);
    }

    [ContractFact]
    public async Task Values_handed_out_belong_to_the_caller()
    {
        byte[] written = Utf8("original");
        await Store.CreateAsync("/v/x", written);
        written[0] = (byte)'X';
        await using var watch = new WatchReader(Store, "/v/", 0);

        (await Store.GetAsync("/v/x"))!.Value[0] = (byte)'Y';
        (await Store.ListAsync("/v/")).Items[0].Value[0] = (byte)'Z';
        (await watch.NextAsync()).Item.Value[0] = (byte)'W';

        Assert.Equal("original", (await Store.GetAsync("/v/x"))!.Text());
        await using var again = new WatchReader(Store, "/v/", 0);
        Assert.Equal("original", (await again.NextAsync()).Item.Text());
    }

    [ContractFact]
    public async Task Update_with_the_current_ModRevision_replaces_the_value_and_keeps_CreateRevision()
    {
        long created = await Store.CreateAsync("/registry/services/demo/web", Utf8("v1"));

        long updated = await Store.UpdateAsync("/registry/services/demo/web", Utf8("v2"), created);

        var item = await Store.GetAsync("/registry/services/demo/web");
        Assert.NotNull(item);
        Assert.Equal("v2", item.Text());
        Assert.Equal(created, item.CreateRevision);
        Assert.Equal(updated, item.ModRevision);
        Assert.True(updated > created);
    }

    [ContractFact]
    public async Task Update_with_a_stale_ModRevision_throws_conflict_carrying_the_current_item()
    {
        long created = await Store.CreateAsync("/k/x", Utf8("v1"));
        long winner = await Store.UpdateAsync("/k/x", Utf8("winner"), created);

        var ex = await Assert.ThrowsAsync<StoreConflictException>(() => Store.UpdateAsync("/k/x", Utf8("loser"), created));

        Assert.Equal("update", ex.Operation);
        Assert.Equal("/k/x", ex.Key);
        Assert.Contains("/k/x", ex.Message, StringComparison.Ordinal);
        Assert.NotNull(ex.Current);
        Assert.Equal("winner", ex.Current.Text());
        Assert.Equal(winner, ex.Current.ModRevision);
        Assert.Equal(created, ex.Current.CreateRevision);
        Assert.Equal("winner", (await Store.GetAsync("/k/x"))!.Text());
        Assert.Equal(winner, await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task Create_of_an_existing_key_throws_conflict_carrying_the_current_item()
    {
        long created = await Store.CreateAsync("/k/x", Utf8("first"));

        var ex = await Assert.ThrowsAsync<StoreConflictException>(() => Store.CreateAsync("/k/x", Utf8("second")));

        Assert.Equal("create", ex.Operation);
        Assert.Equal("/k/x", ex.Key);
        Assert.NotNull(ex.Current);
        Assert.Equal("first", ex.Current.Text());
        Assert.Equal(created, ex.Current.ModRevision);
        Assert.Equal(created, await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task Update_of_a_missing_or_deleted_key_throws_not_found()
    {
        var missing = await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.UpdateAsync("/k/never", Utf8("v"), 1));
        Assert.Equal("update", missing.Operation);
        Assert.Equal("/k/never", missing.Key);

        long created = await Store.CreateAsync("/k/gone", Utf8("v"));
        await Store.DeleteAsync("/k/gone");
        await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.UpdateAsync("/k/gone", Utf8("v2"), created));
    }

    [ContractFact]
    public async Task Delete_without_a_revision_is_unconditional_and_returns_its_revision()
    {
        long created = await Store.CreateAsync("/k/x", Utf8("v"));
        await Store.UpdateAsync("/k/x", Utf8("v2"), created);

        long deleted = await Store.DeleteAsync("/k/x");

        Assert.Equal(Rev(3), deleted);
        Assert.Null(await Store.GetAsync("/k/x"));
        Assert.Equal(deleted, await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task Delete_with_the_current_ModRevision_succeeds()
    {
        long created = await Store.CreateAsync("/k/x", Utf8("v"));

        await Store.DeleteAsync("/k/x", created);

        Assert.Null(await Store.GetAsync("/k/x"));
    }

    [ContractFact]
    public async Task Delete_with_a_stale_ModRevision_throws_conflict_carrying_the_current_item()
    {
        long created = await Store.CreateAsync("/k/x", Utf8("v1"));
        long updated = await Store.UpdateAsync("/k/x", Utf8("v2"), created);

        var ex = await Assert.ThrowsAsync<StoreConflictException>(() => Store.DeleteAsync("/k/x", created));

        Assert.Equal("delete", ex.Operation);
        Assert.Equal(updated, ex.Current!.ModRevision);
        Assert.Equal("v2", ex.Current.Text());
        Assert.NotNull(await Store.GetAsync("/k/x"));
    }

    [ContractFact]
    public async Task Delete_of_a_missing_key_throws_not_found()
    {
        var ex = await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.DeleteAsync("/k/missing"));

        Assert.Equal("delete", ex.Operation);
        Assert.Equal("/k/missing", ex.Key);
        Assert.Contains("/k/missing", ex.Message, StringComparison.Ordinal);
        Assert.Equal(InitialRevision, await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task Recreating_a_deleted_key_gives_it_a_new_CreateRevision()
    {
        long first = await Store.CreateAsync("/k/x", Utf8("one"));
        await Store.DeleteAsync("/k/x");

        long second = await Store.CreateAsync("/k/x", Utf8("two"));

        var item = await Store.GetAsync("/k/x");
        Assert.Equal(second, item!.CreateRevision);
        Assert.Equal(second, item.ModRevision);
        Assert.NotEqual(first, second);
        Assert.Equal("two", item.Text());
    }

    [ContractFact]
    public async Task A_disposed_store_refuses_calls_and_tolerates_a_second_dispose()
    {
        await Store.CreateAsync("/k/x", Utf8("v"));
        await Store.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Store.GetAsync("/k/x"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => Store.CreateAsync("/k/y", Utf8("v")));
        await Store.DisposeAsync();
    }

    [ContractFact]
    public async Task Thousand_sequential_creates_are_not_pathologically_slow()
    {
        // Not a benchmark: it catches a design that, say, opens a connection or fsyncs per read.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 1000; i++)
        {
            await Store.CreateAsync($"/bulk/{i:D4}", Utf8("""{"apiVersion":"v1","kind":"ConfigMap"}"""));
        }
        clock.Stop();

        Assert.Equal(1000, (await Store.ListAsync("/bulk/")).Items.Count);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"1000 creates took {clock.Elapsed}");
    }
}
