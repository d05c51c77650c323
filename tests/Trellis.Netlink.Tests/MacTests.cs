namespace Trellis.Netlink.Tests;

public sealed class MacTests
{
    [Theory]
    [InlineData("02:42:ac:11:00:02", new byte[] { 0x02, 0x42, 0xac, 0x11, 0x00, 0x02 })]
    [InlineData("02:42:AC:11:00:02", new byte[] { 0x02, 0x42, 0xac, 0x11, 0x00, 0x02 })]
    [InlineData("02-42-ac-11-00-02", new byte[] { 0x02, 0x42, 0xac, 0x11, 0x00, 0x02 })]
    [InlineData("ff", new byte[] { 0xff })]
    public void Parses(string text, byte[] expected) => Assert.Equal(expected, Mac.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("02:42:ac:11:00:0")]
    [InlineData("02:42-ac:11:00:02")]
    [InlineData("0g:42:ac:11:00:02")]
    [InlineData("02.42.ac.11.00.02")]
    [InlineData("+2:42:ac:11:00:02")]
    [InlineData("02:42:ac:11:00:02:")]
    public void Rejects(string text)
    {
        Assert.False(Mac.TryParse(text, out _));
        Assert.Throws<FormatException>(() => Mac.Parse(text));
    }

    [Fact]
    public void Formats_lower_case_with_colons()
    {
        Assert.Equal("02:42:ac:11:00:02", Mac.Format([0x02, 0x42, 0xAC, 0x11, 0x00, 0x02]));
        Assert.Equal("", Mac.Format([]));
        var mac = Mac.Parse("de:ad:be:ef:00:01");
        Assert.Equal("de:ad:be:ef:00:01", Mac.Format(mac));
    }
}
