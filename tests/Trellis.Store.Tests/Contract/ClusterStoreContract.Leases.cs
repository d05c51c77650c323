using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.Contract;

public abstract partial class ClusterStoreContract
{
    [ContractFact]
    public async Task Granted_leases_have_distinct_positive_ids_and_keys_carry_their_lease()
    {
        long a = await Store.GrantLeaseAsync(LeaseTtl);
        long b = await Store.GrantLeaseAsync(LeaseTtl);

        await Store.CreateAsync("/trellis/leases/subnets/10.244.1.0-24", Utf8("node-1"), a);

        Assert.True(a > 0 && b > 0 && a != b);
        Assert.Equal(a, (await Store.GetAsync("/trellis/leases/subnets/10.244.1.0-24"))!.LeaseId);
    }

    [ContractFact]
    public async Task Leases_do_not_consume_store_revisions()
    {
        long lease = await Store.GrantLeaseAsync(LeaseTtl);
        await Store.KeepAliveAsync(lease);

        Assert.Equal(InitialRevision, await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task Writing_with_an_unknown_lease_throws_not_found_and_writes_nothing()
    {
        var ex = await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.CreateAsync("/l/x", Utf8("v"), leaseId: 4242));

        Assert.Equal(4242, ex.LeaseId);
        Assert.Contains("4242", ex.Message, StringComparison.Ordinal);
        Assert.Null(await Store.GetAsync("/l/x"));
        Assert.Equal(InitialRevision, await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task An_expired_lease_deletes_its_keys_with_delete_events()
    {
        long lease = await Store.GrantLeaseAsync(LeaseTtl);
        await Store.CreateAsync("/l/keep", Utf8("keep"));
        long a = await Store.CreateAsync("/l/a", Utf8("a"), lease);
        long b = await Store.CreateAsync("/l/b", Utf8("b"), lease);
        await using var watch = new WatchReader(Store, "/l/", b);

        await LetLeaseTimePassAsync(LeaseTtl * 1.1);

        // Where reads check expiry, a read right after it already sees the keys gone (not only the sweep).
        await AssertExpiredAsync(Store, "/l/a");
        Assert.Equal(["/l/keep"], (await Store.ListAsync("/l/")).Items.Select(i => i.Key));
        var events = await watch.TakeAsync(2);
        Assert.All(events, e => Assert.Equal(WatchEventType.Delete, e.Type));
        Assert.Equal([("/l/a", "a", a, lease), ("/l/b", "b", b, lease)], events.Select(e => (e.Item.Key, e.Item.Text(), e.Item.ModRevision, e.Item.LeaseId)));
        // SQLite deletes each key in a revision of its own; etcd revokes a lease in one
        // transaction, so its keys' deletes share one revision. Either way, after the last write.
        Assert.True(events[0].Revision > b, $"delete at {events[0].Revision} after {b}");
        Assert.InRange(events[1].Revision, events[0].Revision, events[0].Revision + 1);
        await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.KeepAliveAsync(lease));
    }

    [ContractFact]
    public async Task Expiry_is_enforced_in_the_background_without_any_client_call()
    {
        long lease = await Store.GrantLeaseAsync(LeaseTtl);
        long created = await Store.CreateAsync("/l/a", Utf8("a"), lease);
        await using var watch = new WatchReader(Store, "/l/", created);

        await LetLeaseTimePassAsync(LeaseTtl * 1.1);

        var e = await watch.NextAsync();
        Assert.Equal((WatchEventType.Delete, "/l/a"), (e.Type, e.Item.Key));
    }

    [ContractFact]
    public async Task Expiry_is_enforced_for_another_client_of_the_store()
    {
        long lease = await Store.GrantLeaseAsync(LeaseTtl);
        await Store.CreateAsync("/l/a", Utf8("a"), lease);
        var peer = OpenPeer();

        await LetLeaseTimePassAsync(LeaseTtl * 1.1);

        await AssertExpiredAsync(peer, "/l/a");
        await AssertExpiredAsync(Store, "/l/a");
    }

    [ContractFact]
    public async Task KeepAlive_restarts_the_ttl()
    {
        long lease = await Store.GrantLeaseAsync(LeaseTtl);
        await Store.CreateAsync("/l/a", Utf8("a"), lease);

        // Renewed at 0.6 and 1.2 TTL, so still there at 1.8 TTL, long after the first TTL ran out.
        for (int i = 0; i < 2; i++)
        {
            await LetLeaseTimePassAsync(LeaseTtl * 0.6);
            await Store.KeepAliveAsync(lease);
        }
        await LetLeaseTimePassAsync(LeaseTtl * 0.6);
        Assert.NotNull(await Store.GetAsync("/l/a"));

        await LetLeaseTimePassAsync(LeaseTtl * 0.6);
        await AssertExpiredAsync(Store, "/l/a");
    }

    [ContractFact]
    public async Task KeepAlive_after_expiry_throws_not_found_and_the_key_may_be_recreated()
    {
        long lease = await Store.GrantLeaseAsync(LeaseTtl);
        await Store.CreateAsync("/l/a", Utf8("a"), lease);

        await LetLeaseTimePassAsync(LeaseTtl);

        var ex = await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.KeepAliveAsync(lease));
        Assert.Equal(lease, ex.LeaseId);
        // Expired exactly at its TTL: the key is free for the next owner (a create, not a conflict).
        await Store.CreateAsync("/l/a", Utf8("new owner"));
        Assert.Equal("new owner", (await Store.GetAsync("/l/a"))!.Text());
    }

    [ContractFact]
    public async Task Revoke_deletes_the_keys_with_events_and_ends_the_lease()
    {
        long lease = await Store.GrantLeaseAsync(LeaseTtl);
        long other = await Store.GrantLeaseAsync(LeaseTtl);
        await Store.CreateAsync("/l/a", Utf8("a"), lease);
        long b = await Store.CreateAsync("/l/b", Utf8("b"), other);
        await using var watch = new WatchReader(Store, "/l/", b);

        await Store.RevokeLeaseAsync(lease);

        var e = await watch.NextAsync();
        Assert.Equal((WatchEventType.Delete, "/l/a", lease), (e.Type, e.Item.Key, e.Item.LeaseId));
        Assert.Null(await Store.GetAsync("/l/a"));
        Assert.NotNull(await Store.GetAsync("/l/b"));
        await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.KeepAliveAsync(lease));
        await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.RevokeLeaseAsync(lease));
        Assert.True(await watch.IsQuietAsync(TimeSpan.FromMilliseconds(100)));
    }

    [ContractFact]
    public async Task Revoking_an_unknown_lease_throws_not_found()
    {
        var ex = await Assert.ThrowsAsync<StoreNotFoundException>(() => Store.RevokeLeaseAsync(77));

        Assert.Equal("lease-revoke", ex.Operation);
        Assert.Equal(77, ex.LeaseId);
    }

    [ContractFact]
    public async Task An_update_moves_a_key_to_the_lease_it_names_or_detaches_it()
    {
        long first = await Store.GrantLeaseAsync(LeaseTtl);
        long second = await Store.GrantLeaseAsync(LeaseTtl);
        long a = await Store.CreateAsync("/l/a", Utf8("a"), first);
        long b = await Store.CreateAsync("/l/b", Utf8("b"), first);

        await Store.UpdateAsync("/l/a", Utf8("a2"), a, leaseId: 0);
        await Store.UpdateAsync("/l/b", Utf8("b2"), b, leaseId: second);
        await Store.RevokeLeaseAsync(first);

        Assert.Equal(0, (await Store.GetAsync("/l/a"))!.LeaseId);
        Assert.Equal(second, (await Store.GetAsync("/l/b"))!.LeaseId);

        await Store.RevokeLeaseAsync(second);
        Assert.NotNull(await Store.GetAsync("/l/a"));
        Assert.Null(await Store.GetAsync("/l/b"));
    }

    [ContractFact]
    public async Task A_deleted_and_recreated_key_is_not_deleted_by_its_old_lease()
    {
        long lease = await Store.GrantLeaseAsync(LeaseTtl);
        await Store.CreateAsync("/l/a", Utf8("leased"), lease);
        await Store.DeleteAsync("/l/a");
        await Store.CreateAsync("/l/a", Utf8("plain"));

        await Store.RevokeLeaseAsync(lease);

        Assert.Equal("plain", (await Store.GetAsync("/l/a"))!.Text());
    }
}
