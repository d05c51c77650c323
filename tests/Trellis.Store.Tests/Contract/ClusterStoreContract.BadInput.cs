namespace Trellis.Store.Tests.Contract;

public abstract partial class ClusterStoreContract
{
    public static TheoryData<string?, string> BadKeys => new()
    {
        { null, "null" },
        { "", "must not be empty" },
        { "registry/pods/demo/web-1", "must start with '/'" },
        { "/registry/pods/a\0b", "control character" },
        { "/registry/pods/a\nb", "control character" },
        { "/" + new string('k', KeyRules.MaxKeyBytes), "at most 4096" },
    };

    [ContractTheory]
    [MemberData(nameof(BadKeys))]
    public async Task Bad_keys_are_refused_naming_the_key_argument_before_any_io(string? key, string reason)
    {
        var errors = new List<ArgumentException>
        {
            await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.GetAsync(key!)),
            await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.CreateAsync(key!, Utf8("v"))),
            await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.UpdateAsync(key!, Utf8("v"), 1)),
            await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.DeleteAsync(key!)),
        };

        Assert.All(errors, e => Assert.Equal("key", e.ParamName));
        if (key is not null)
        {
            Assert.All(errors, e => Assert.Contains(reason, e.Message, StringComparison.Ordinal));
        }
        Assert.Equal(InitialRevision, await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task Keys_and_prefixes_that_are_not_valid_unicode_are_refused()
    {
        // Not theory data: xUnit's serialisation of theory arguments would repair the lone surrogate.
        string bad = "/registry/pods/\uD800x";

        var create = await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.CreateAsync(bad, Utf8("v")));
        var list = await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.ListAsync(bad));

        Assert.Equal(("key", "prefix"), (create.ParamName, list.ParamName));
        Assert.Contains("unpaired UTF-16 surrogate", create.Message, StringComparison.Ordinal);
        Assert.Equal(InitialRevision, await Store.CurrentRevisionAsync());
    }

    [ContractTheory]
    [MemberData(nameof(BadKeys))]
    public async Task Bad_prefixes_are_refused_naming_the_prefix_argument(string? prefix, string reason)
    {
        var list = await Assert.ThrowsAnyAsync<ArgumentException>(() => Store.ListAsync(prefix!));
        // Watch validates when called, not on first iteration, so a bad call fails where it is made.
        var watch = Assert.ThrowsAny<ArgumentException>(() => Store.WatchAsync(prefix!, 0));

        Assert.Equal("prefix", list.ParamName);
        Assert.Equal("prefix", watch.ParamName);
        if (prefix is not null)
        {
            Assert.Contains(reason, list.Message, StringComparison.Ordinal);
        }
    }

    [ContractFact]
    public async Task An_oversized_value_is_refused_naming_the_value_argument()
    {
        var tooBig = new byte[KeyRules.MaxValueBytes + 1];

        var create = await Assert.ThrowsAsync<ArgumentException>(() => Store.CreateAsync("/k/big", tooBig));
        long r = await Store.CreateAsync("/k/big", Utf8("small"));
        var update = await Assert.ThrowsAsync<ArgumentException>(() => Store.UpdateAsync("/k/big", tooBig, r));

        Assert.Equal("value", create.ParamName);
        Assert.Equal("value", update.ParamName);
        Assert.Contains($"{KeyRules.MaxValueBytes + 1} bytes", create.Message, StringComparison.Ordinal);
        Assert.Equal("small", System.Text.Encoding.UTF8.GetString((await Store.GetAsync("/k/big"))!.Value));
    }

    [ContractFact]
    public async Task Bad_revisions_lease_ids_and_ttls_are_refused_naming_the_argument()
    {
        long r = await Store.CreateAsync("/k/x", Utf8("v"));

        Assert.Equal("expectedModRevision", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.UpdateAsync("/k/x", Utf8("v"), 0))).ParamName);
        Assert.Equal("expectedModRevision", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.UpdateAsync("/k/x", Utf8("v"), -1))).ParamName);
        Assert.Equal("expectedModRevision", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.DeleteAsync("/k/x", -5))).ParamName);
        Assert.Equal("fromRevision", Assert.Throws<ArgumentOutOfRangeException>(() => Store.WatchAsync("/k/", -1)).ParamName);
        Assert.Equal("leaseId", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.CreateAsync("/k/y", Utf8("v"), -1))).ParamName);
        Assert.Equal("leaseId", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.KeepAliveAsync(0))).ParamName);
        Assert.Equal("leaseId", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.RevokeLeaseAsync(-3))).ParamName);
        Assert.Equal("ttl", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.GrantLeaseAsync(TimeSpan.Zero))).ParamName);
        Assert.Equal("ttl", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.GrantLeaseAsync(TimeSpan.FromSeconds(-1)))).ParamName);
        Assert.Equal("ttl", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.GrantLeaseAsync(TimeSpan.FromDays(1000)))).ParamName);
        Assert.Equal(r, await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task A_cancelled_token_cancels_before_any_write()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.CreateAsync("/k/x", Utf8("v"), ct: cts.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.GetAsync("/k/x", cts.Token));

        Assert.Null(await Store.GetAsync("/k/x"));
    }
}
