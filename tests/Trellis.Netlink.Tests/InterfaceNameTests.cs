namespace Trellis.Netlink.Tests;

public sealed class InterfaceNameTests
{
    [Theory]
    [InlineData("eth0")]
    [InlineData("veth1234abcd")]
    [InlineData("fifteen-chars-x")]
    [InlineData("vxlan.1")]
    public void Accepts(string name) => InterfaceName.Validate(name, "ifname");

    [Theory]
    [InlineData("", "empty")]
    [InlineData(".", "reserved")]
    [InlineData("..", "reserved")]
    [InlineData("sixteen-chars-xx", "15 bytes")]
    [InlineData("ééééééééé", "15 bytes")] // 9 characters, 18 bytes
    [InlineData("a/b", "'/'")]
    [InlineData("a b", "whitespace")]
    [InlineData("a\nb", "whitespace")]
    [InlineData("eth0:1", "':'")]
    public void Rejects_naming_the_value(string name, string reason)
    {
        var error = Assert.Throws<ArgumentException>(() => InterfaceName.Validate(name, "ifname"));
        Assert.Contains("'" + name + "'", error.Message, StringComparison.Ordinal);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        Assert.Equal("ifname", error.ParamName);
    }
}
