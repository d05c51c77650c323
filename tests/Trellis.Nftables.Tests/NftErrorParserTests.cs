namespace Trellis.Nftables.Tests;

/// <summary>The stderr parser over nft 1.0.6 output captured from real runs (testdata/NAME.{nft,stderr}).</summary>
public sealed class NftErrorParserTests
{
    [Theory]
    [InlineData("missing-set", 3, 45, 51, "No such file or directory", "add rule inet t input udp dport 99 ip saddr @nosuch accept", true, false)]
    [InlineData("delete-missing-table", 2, 19, 24, "Could not process rule: No such file or directory", "delete table inet nosuch", true, false)]
    [InlineData("chain-definition-differs", 2, 18, 22, "Could not process rule: File exists", "add chain inet t input { type nat hook input priority filter ; policy accept ; }", false, true)]
    [InlineData("create-existing", 1, 19, 19, "Could not process rule: File exists", "create table inet t", false, true)]
    [InlineData("syntax-errors", 2, 18, 18, "syntax error, unexpected newline", "bogus syntax here", false, false)]
    [InlineData("chain-priority-differs", 2, 1, 80, "Could not process rule: Operation not supported", "add chain inet t input { type filter hook input priority 10 ; policy accept ; }", false, false)]
    public void The_first_error_names_the_transaction_line(string name, int line, int first, int last, string message, string text, bool notFound, bool exists)
    {
        var errors = NftErrorParser.Parse(Read(name + ".stderr"), Read(name + ".nft"));

        var e = errors[0];
        Assert.Equal(line, e.Line);
        Assert.Equal(first, e.FirstColumn);
        Assert.Equal(last, e.LastColumn);
        Assert.Equal(message, e.Message);
        Assert.Equal(text, e.LineText);
        Assert.Equal(notFound, e.IsNotFound);
        Assert.Equal(exists, e.IsAlreadyExists);
        Assert.Equal(name == "chain-priority-differs", e.IsNotSupported);
    }

    [Theory]
    [InlineData("syntax-errors", new[] { 2, 3 })]
    [InlineData("two-missing-chains", new[] { 1, 2 })]
    public void Every_error_of_a_script_is_kept(string name, int[] lines)
    {
        var errors = NftErrorParser.Parse(Read(name + ".stderr"), Read(name + ".nft"));

        Assert.Equal(lines, errors.Select(e => e.Line!.Value));
    }

    [Fact]
    public void An_error_without_a_location_keeps_the_command_nft_echoed()
    {
        var e = Assert.Single(NftErrorParser.Parse(Read("list-missing-table.stderr"), null));

        Assert.Null(e.Line);
        Assert.Equal("No such file or directory", e.Message);
        Assert.Equal("list table inet nosuch", e.LineText);
        Assert.True(e.IsNotFound);
    }

    [Fact]
    public void Without_the_transaction_the_echoed_source_line_is_used()
    {
        var e = NftErrorParser.Parse(Read("missing-set.stderr"), null)[0];

        Assert.Equal("add rule inet t input udp dport 99 ip saddr @nosuch accept", e.LineText);
    }

    [Theory]
    [InlineData("")]
    [InlineData("some unexpected text\n")]
    [InlineData("/dev/stdin:1:1-1: Warning: deprecated\nx\n^\n")]
    public void Text_without_errors_gives_none(string stderr) =>
        Assert.Empty(NftErrorParser.Parse(stderr, "x\n"));

    [Fact]
    public void Internal_errors_have_no_line_of_ours()
    {
        var e = Assert.Single(NftErrorParser.Parse("internal:0:0-0: Error: Could not process rule: Operation not supported\n", "add table inet t\n"));

        Assert.Null(e.Line);
        Assert.Null(e.LineText);
        Assert.Equal("Could not process rule: Operation not supported", e.Message);
    }

    [Fact]
    public void The_exception_message_names_command_line_and_text()
    {
        var errors = NftErrorParser.Parse(Read("missing-set.stderr"), Read("missing-set.nft"));
        var e = new NftException("nft -f -", 1, errors, Read("missing-set.stderr"));

        Assert.Equal("nft -f -: line 3: No such file or directory: add rule inet t input udp dport 99 ip saddr @nosuch accept", e.Message);
        Assert.Equal(3, e.Line);
        Assert.True(e.IsNotFound);
        Assert.False(e.IsAlreadyExists);
    }

    [Fact]
    public void An_exception_without_parsed_errors_keeps_nfts_text()
    {
        var e = new NftException("nft -f -", 1, [], "Error: something new\n");

        Assert.Equal("nft -f -: exit code 1: Error: something new", e.Message);
        Assert.False(e.IsNotFound);
        Assert.Null(e.Line);
    }

    private static string Read(string file) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "testdata", file));
}
