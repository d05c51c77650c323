using System.Net;
using System.Text;
using Trellis.Core.Leases;
using Trellis.Core.Routing;

namespace Trellis.Core.Tests.Leases;

public class SubnetLeaseJsonTests
{
    private static readonly SubnetLease s_lease = new(
        IPNetwork.Parse("10.244.1.0/24"), "node-1", IPAddress.Parse("172.30.0.11"), MacAddress.Parse("0e:00:00:00:00:01"),
        new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero));

    private const string Key = "/trellis/leases/subnets/10.244.1.0-24";

    [Fact]
    public void Canonical_json_is_fixed_order_compact_utc()
    {
        Assert.Equal(
            """{"subnet":"10.244.1.0/24","nodeName":"node-1","nodeIP":"172.30.0.11","vtepMAC":"0e:00:00:00:00:01","expires":"2025-01-02T03:04:05Z"}""",
            Encoding.UTF8.GetString(s_lease.ToJson()));
    }

    [Fact]
    public void Host_gw_lease_has_no_vtep_mac_and_sub_second_expiry_survives()
    {
        var lease = s_lease with { VtepMac = null, Expires = new DateTimeOffset(2025, 1, 2, 5, 4, 5, TimeSpan.FromHours(2)).AddTicks(1234500) };
        string json = Encoding.UTF8.GetString(lease.ToJson());
        Assert.Equal("""{"subnet":"10.244.1.0/24","nodeName":"node-1","nodeIP":"172.30.0.11","expires":"2025-01-02T03:04:05.12345Z"}""", json);
        Assert.Equal(lease, SubnetLease.Parse(Key, lease.ToJson()));
    }

    [Fact]
    public void Round_trips()
    {
        Assert.Equal(s_lease, SubnetLease.Parse(Key, s_lease.ToJson()));
        var v6 = s_lease with { Subnet = IPNetwork.Parse("fd00:10:244:1::/64"), NodeIp = IPAddress.Parse("fd00:30::11") };
        Assert.Equal(v6, SubnetLease.Parse(v6.Key, v6.ToJson()));
    }

    [Fact]
    public void Accepts_other_zones_and_unknown_members()
    {
        var lease = SubnetLease.Parse(Key, """
            {"future":{"x":1},"subnet":"10.244.1.0/24","nodeName":"node-1","nodeIP":"172.30.0.11","vtepMAC":"0E-00-00-00-00-01","expires":"2025-01-02T05:04:05+02:00"}
            """u8);
        Assert.Equal(s_lease, lease);
        Assert.Equal(TimeSpan.Zero, lease.Expires.Offset);
    }

    [Theory]
    [InlineData("/trellis/leases/subnets/10.244.1.0-24", "10.244.1.0/24")]
    [InlineData("/trellis/leases/subnets/fd00:10:244:1::-64", "fd00:10:244:1::/64")]
    public void Keys_name_the_subnet(string key, string subnet)
    {
        Assert.Equal(key, SubnetLease.KeyFor(IPNetwork.Parse(subnet)));
        Assert.True(SubnetLease.TryParseKey(key, out var parsed));
        Assert.Equal(IPNetwork.Parse(subnet), parsed);
    }

    [Theory]
    [InlineData("/trellis/leases/subnets/10.244.1.0/24")]
    [InlineData("/trellis/leases/subnets/10.244.1.5-24")]
    [InlineData("/trellis/leases/subnets/10.244.1.0-024")]
    [InlineData("/trellis/leases/subnets/10.244.1-24")]
    [InlineData("/trellis/leases/subnets/-24")]
    [InlineData("/trellis/leases/other/10.244.1.0-24")]
    [InlineData("/trellis/leases/subnets/FD00::-64")]
    public void Non_canonical_keys_are_not_lease_keys(string key) => Assert.False(SubnetLease.TryParseKey(key, out _));

    [Theory]
    [InlineData("", "(value): is not JSON")]
    [InlineData("[]", "(value): is a JSON Array, not an object")]
    [InlineData("""{"nodeName":"n","nodeIP":"1.2.3.4","expires":"2025-01-02T03:04:05Z"}""", "subnet: is required")]
    [InlineData("""{"subnet":"10.244.1.5/24","nodeName":"n","nodeIP":"1.2.3.4","expires":"2025-01-02T03:04:05Z"}""", "subnet: '10.244.1.5/24' is not a network")]
    [InlineData("""{"subnet":"10.244.2.0/24","nodeName":"n","nodeIP":"1.2.3.4","expires":"2025-01-02T03:04:05Z"}""", "subnet: 10.244.2.0/24 is not the subnet the key names (10.244.1.0/24)")]
    [InlineData("""{"subnet":"10.244.1.0/24","nodeName":"","nodeIP":"1.2.3.4","expires":"2025-01-02T03:04:05Z"}""", "nodeName: must be 1-253 characters")]
    [InlineData("""{"subnet":"10.244.1.0/24","nodeName":7,"nodeIP":"1.2.3.4","expires":"2025-01-02T03:04:05Z"}""", "nodeName: is a JSON Number, not a string")]
    [InlineData("""{"subnet":"10.244.1.0/24","nodeName":"n","nodeIP":"1.2.3","expires":"2025-01-02T03:04:05Z"}""", "nodeIP: '1.2.3' is not an IP address")]
    [InlineData("""{"subnet":"10.244.1.0/24","nodeName":"n","nodeIP":"1.2.3.4","vtepMAC":"zz","expires":"2025-01-02T03:04:05Z"}""", "vtepMAC: \"zz\" is not a MAC address")]
    [InlineData("""{"subnet":"10.244.1.0/24","nodeName":"n","nodeIP":"1.2.3.4","expires":"2025-01-02T03:04:05"}""", "expires: '2025-01-02T03:04:05' is not an RFC 3339 time with a zone")]
    [InlineData("""{"subnet":"10.244.1.0/24","nodeName":"n","nodeIP":"1.2.3.4","expires":"tomorrow"}""", "expires: 'tomorrow' is not an RFC 3339")]
    public void Bad_values_name_the_key_and_field(string json, string problem)
    {
        var e = Assert.Throws<LeaseFormatException>(() => SubnetLease.Parse(Key, Encoding.UTF8.GetBytes(json)));
        Assert.StartsWith($"lease {Key}: {problem}", e.Message, StringComparison.Ordinal);
        Assert.Equal(Key, e.Key);
    }

    [Fact]
    public void Deep_json_is_refused_not_crashed_on()
    {
        string deep = new string('[', 10_000) + new string(']', 10_000);
        Assert.Throws<LeaseFormatException>(() => SubnetLease.Parse(Key, Encoding.UTF8.GetBytes(deep)));
    }
}
