using Trellis.Core.Routing;

namespace Trellis.Core.Tests.Routing;

public class MacAddressTests
{
    [Theory]
    [InlineData("0e:00:00:00:00:01", "0e:00:00:00:00:01")]
    [InlineData("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff")]
    [InlineData("aa-bb-cc-dd-ee-0f", "aa:bb:cc:dd:ee:0f")]
    public void Parses_and_prints_like_iproute2(string text, string printed) => Assert.Equal(printed, MacAddress.Parse(text).ToString());

    [Theory]
    [InlineData("")]
    [InlineData("0e:00:00:00:00")]
    [InlineData("0e:00:00:00:00:001")]
    [InlineData("0e:00-00:00:00:01")]
    [InlineData("0g:00:00:00:00:01")]
    [InlineData("0e.00.00.00.00.01")]
    [InlineData("+e:00:00:00:00:01")]
    public void Rejects_malformed(string text) => Assert.False(MacAddress.TryParse(text, out _));

    [Fact]
    public void Round_trips_bytes()
    {
        var mac = MacAddress.Parse("0e:12:34:56:78:9a");
        Assert.Equal(new byte[] { 0x0e, 0x12, 0x34, 0x56, 0x78, 0x9a }, mac.ToBytes());
        Assert.Equal(mac, MacAddress.FromBytes(mac.ToBytes()));
    }

    [Fact]
    public void Derived_vtep_macs_are_stable_unicast_and_locally_administered()
    {
        var a = MacAddress.ForNode("node-1");
        Assert.Equal(a, MacAddress.ForNode("node-1"));
        Assert.NotEqual(a, MacAddress.ForNode("node-2"));
        for (int i = 0; i < 200; i++)
        {
            var mac = MacAddress.ForNode($"node-{i}");
            Assert.False(mac.IsMulticast);
            Assert.Equal(0x02, mac.ToBytes()[0] & 0x03);
        }
    }
}
