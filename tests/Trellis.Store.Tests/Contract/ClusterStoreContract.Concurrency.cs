namespace Trellis.Store.Tests.Contract;

public abstract partial class ClusterStoreContract
{
    [ContractFact]
    public async Task Concurrent_compare_and_swap_increments_lose_no_update()
    {
        const int Tasks = 8;
        const int PerTask = 50;
        var peer = OpenPeer();
        await Store.CreateAsync("/cas/counter", Utf8("0"));

        var revisions = await Task.WhenAll(Enumerable.Range(0, Tasks).Select(t => Task.Run(async () =>
        {
            var client = t % 2 == 0 ? Store : peer;
            var mine = new List<long>();
            for (int i = 0; i < PerTask; i++)
            {
                mine.Add(await IncrementAsync(client, "/cas/counter"));
            }
            return mine;
        })));

        var final = await Store.GetAsync("/cas/counter");
        Assert.Equal((Tasks * PerTask).ToString(System.Globalization.CultureInfo.InvariantCulture), System.Text.Encoding.UTF8.GetString(final!.Value));
        // Every successful update got its own revision: exactly the 2nd..401st write's, none shared.
        Assert.Equal(Revs(2, Tasks * PerTask), revisions.SelectMany(r => r).Order());
        Assert.Equal(Rev(1 + Tasks * PerTask), await Store.CurrentRevisionAsync());
    }

    [ContractFact]
    public async Task Concurrent_creates_of_one_key_have_exactly_one_winner()
    {
        var peer = OpenPeer();
        var attempts = Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
        {
            try
            {
                await (i % 2 == 0 ? Store : peer).CreateAsync("/race/leader", Utf8($"candidate-{i}"));
                return true;
            }
            catch (StoreConflictException ex)
            {
                Assert.NotNull(ex.Current);
                return false;
            }
        }));

        var won = await Task.WhenAll(attempts);

        Assert.Equal(1, won.Count(w => w));
        Assert.Equal(Rev(1), await Store.CurrentRevisionAsync());
    }
}
