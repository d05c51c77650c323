namespace Trellis.Store.Tests.Etcd;

/// <summary>The etcd URL forms: parsed without I/O, refused with the URL and the fault named.</summary>
public sealed class EtcdUrlTests
{
    [Theory]
    [InlineData("etcd://127.0.0.1:2379", "127.0.0.1:2379")]
    [InlineData("etcd://10.0.0.1:2379,10.0.0.2:12379,etcd-3.lab:2379", "10.0.0.1:2379|10.0.0.2:12379|etcd-3.lab:2379")]
    [InlineData("etcd://etcd", "etcd:2379")]
    [InlineData("etcd://[fd00::1]:2379,[::1]", "[fd00::1]:2379|[::1]:2379")]
    [InlineData("ETCD://127.0.0.1:1", "127.0.0.1:1")]
    [InlineData("etcd+unix:///run/etcd/localhost:2379", "unix:/run/etcd/localhost:2379")]
    public async Task Urls_list_their_endpoints_in_order(string url, string expected)
    {
        await using var store = new EtcdClusterStore(url);

        Assert.Equal(expected.Split('|'), store.Endpoints);
    }

    [Theory]
    [InlineData("etcd://", "no endpoint")]
    [InlineData("etcd://a:1,,b:2", "empty endpoint")]
    [InlineData("etcd://a:1/", "no path")]
    [InlineData("etcd://a:1?x=1", "no path, query")]
    [InlineData("etcd://user@a:1", "user")]
    [InlineData("etcd://a:0", "1 to 65535")]
    [InlineData("etcd://a:65536", "1 to 65535")]
    [InlineData("etcd://a:", "1 to 65535")]
    [InlineData("etcd://a:x1", "1 to 65535")]
    [InlineData("etcd://fd00::1:2379", "must be in brackets")]
    [InlineData("etcd://[fd00::1", "unterminated")]
    [InlineData("etcd://[10.0.0.1]:2379", "not an IPv6 address")]
    [InlineData("etcd://bad_host!:2379", "not a host name")]
    [InlineData("etcd+unix://relative.sock", "must be absolute")]
    [InlineData("etcd+unix:///run/a.sock,/run/b.sock", "exactly one socket")]
    [InlineData("etcd+unix:///run/", "not a directory")]
    public void Malformed_urls_are_refused_naming_the_url_and_the_fault(string url, string reason)
    {
        var ex = Assert.Throws<ArgumentException>(() => ClusterStore.Open(url));

        Assert.Equal("url", ex.ParamName);
        Assert.Contains(url, ex.Message, StringComparison.Ordinal);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Opening_sends_nothing_so_a_down_cluster_fails_on_the_first_call()
    {
        await using var store = ClusterStore.Open("etcd://127.0.0.1:1");

        Assert.IsType<EtcdClusterStore>(store);
    }

    [Fact]
    public void Prefix_ranges_end_at_the_prefix_with_its_last_byte_incremented()
    {
        Assert.Equal("/registry/pods0"u8.ToArray(), EtcdJson.PrefixEnd("/registry/pods/"u8.ToArray()));
        Assert.Equal(new byte[] { 0x2F, 0x62 }, EtcdJson.PrefixEnd([0x2F, 0x61, 0xFF]));
        Assert.Equal(new byte[] { 0 }, EtcdJson.PrefixEnd([0xFF, 0xFF]));
    }
}
