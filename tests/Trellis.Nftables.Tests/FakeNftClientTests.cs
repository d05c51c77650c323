namespace Trellis.Nftables.Tests;

public sealed class FakeNftClientTests
{
    [Fact]
    public void Dump_is_the_last_transaction_and_tables_follow_their_add_and_delete_lines()
    {
        var fake = new FakeNftClient();
        Assert.Equal("", fake.Dump());
        Assert.Null(fake.ListTable("inet", "t"));

        fake.Apply("add table inet t\nflush table inet t\n");
        fake.Apply("add table inet t\nadd set inet t s { type ipv4_addr ; }\n");
        Assert.Equal("add table inet t\nadd set inet t s { type ipv4_addr ; }\n", fake.Dump());
        Assert.Equal(fake.Dump(), fake.ListTable("inet", "t"));
        Assert.Equal(2, fake.Transactions.Count);

        fake.Apply("add table inet t\ndelete table inet t\n");
        Assert.Null(fake.ListTable("inet", "t"));

        fake.Apply("add table inet t\ndelete table inet t\nadd table inet t\n");
        Assert.NotNull(fake.ListTable("inet", "t"));
    }

    [Fact]
    public void A_failed_apply_throws_and_records_nothing()
    {
        var fake = new FakeNftClient();
        fake.Apply("add table inet t\n");
        var error = new NftException("nft -f -", 1, [new NftError(1, 1, 1, "Could not process rule: File exists", "add table inet t")], "");
        fake.FailNextApply(error);

        Assert.Same(error, Assert.Throws<NftException>(() => fake.Apply("add table inet u\n")));
        Assert.Single(fake.Transactions);
        Assert.Null(fake.ListTable("inet", "u"));
        fake.Apply("add table inet u\n");
        Assert.NotNull(fake.ListTable("inet", "u"));
    }

    [Fact]
    public void SetTable_simulates_drift()
    {
        var fake = new FakeNftClient();
        fake.Apply("add table inet t\n");
        fake.SetTable("inet", "t", "changed by hand");
        Assert.Equal("changed by hand", fake.ListTable("inet", "t"));
        fake.SetTable("inet", "t", null);
        Assert.Null(fake.ListTable("inet", "t"));
    }
}
