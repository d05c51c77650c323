using Trellis.Core.Cni;

namespace Trellis.Core.Tests.Cni;

public class CniResultTests
{
    // One result with every field any version knows: a bridge port, a container veth, dual-stack
    // addresses, routes with 1.1.0 extras, full DNS.
    private const string Full110 =
        """{"cniVersion":"1.1.0","interfaces":[{"name":"trellis0","mac":"0a:58:0a:f4:01:01"},{"name":"veth1a2b3c4d","mac":"96:1c:5a:00:00:01"},{"name":"eth0","mac":"0a:58:0a:f4:01:05","mtu":1450,"sandbox":"/run/netns/p","socketPath":"/run/x.sock","pciID":"0000:00:1f.6"}],"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1","interface":2},{"address":"fd00:10:244:1::5/64","gateway":"fd00:10:244:1::1","interface":2}],"routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1","mtu":1400,"advmss":1360,"priority":100,"table":254,"scope":0},{"dst":"::/0"}],"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["demo.svc.cluster.local","svc.cluster.local"],"options":["ndots:5"]}}""";

    private const string Full100 =
        """{"cniVersion":"1.0.0","interfaces":[{"name":"trellis0","mac":"0a:58:0a:f4:01:01"},{"name":"veth1a2b3c4d","mac":"96:1c:5a:00:00:01"},{"name":"eth0","mac":"0a:58:0a:f4:01:05","sandbox":"/run/netns/p"}],"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1","interface":2},{"address":"fd00:10:244:1::5/64","gateway":"fd00:10:244:1::1","interface":2}],"routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1"},{"dst":"::/0"}],"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["demo.svc.cluster.local","svc.cluster.local"],"options":["ndots:5"]}}""";

    private static string Legacy(string version) =>
        "{\"cniVersion\":\"" + version + "\"," +
        """ "interfaces":[{"name":"trellis0","mac":"0a:58:0a:f4:01:01"},{"name":"veth1a2b3c4d","mac":"96:1c:5a:00:00:01"},{"name":"eth0","mac":"0a:58:0a:f4:01:05","sandbox":"/run/netns/p"}],"ips":[{"version":"4","address":"10.244.1.5/24","gateway":"10.244.1.1","interface":2},{"version":"6","address":"fd00:10:244:1::5/64","gateway":"fd00:10:244:1::1","interface":2}],"routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1"},{"dst":"::/0"}],"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["demo.svc.cluster.local","svc.cluster.local"],"options":["ndots:5"]}}""".TrimStart();

    private static string Golden(string version) => version switch
    {
        "1.1.0" => Full110,
        "1.0.0" => Full100,
        _ => Legacy(version),
    };

    public static TheoryData<string, string> Conversions()
    {
        var data = new TheoryData<string, string>();
        foreach (var from in CniVersions.Supported)
        {
            foreach (var to in CniVersions.Supported)
            {
                data.Add(from, to);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Conversions))]
    public void Converts_between_every_pair_of_versions(string from, string to)
    {
        var parsed = Json.ParseResult(Golden(from), from);
        // Going down drops what the older version lacks; coming back up cannot invent it again, so
        // the golden target for "up" is the lossy one.
        bool lostExtras = CniVersions.Compare(from, "1.1.0") < 0;
        string expected = lostExtras && to == "1.1.0" ? Full100.Replace("\"1.0.0\"", "\"1.1.0\"", StringComparison.Ordinal) : Golden(to);
        Assert.Equal(expected, Json.WriteResult(parsed, to));
    }

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void Round_trips_each_version_exactly(string version)
    {
        Assert.Equal(Golden(version), Json.WriteResult(Json.ParseResult(Golden(version), version), version));
    }

    [Fact]
    public void IPAM_style_result_without_interfaces_omits_empty_parts()
    {
        var r = Json.ParseResult("""{"cniVersion":"1.0.0","ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1"}],"dns":{}}""", "1.0.0");
        Assert.Equal("""{"cniVersion":"1.0.0","ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1"}]}""", Json.WriteResult(r, "1.0.0"));
        Assert.Equal("""{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.244.1.5/24","gateway":"10.244.1.1"}]}""", Json.WriteResult(r, "0.3.1"));
        Assert.Equal("""{"cniVersion":"1.1.0"}""", Json.WriteResult(new CniResult(), "1.1.0"));
    }

    [Fact]
    public void Version_field_is_ignored_from_1_0_0_and_may_be_absent_before()
    {
        var stray = Json.ParseResult("""{"ips":[{"version":"6","address":"10.244.1.5/24"}]}""", "1.0.0");
        Assert.Equal("10.244.1.5/24", stray.Ips[0].Address.ToString());
        var missing = Json.ParseResult("""{"ips":[{"address":"fd00::5/64"}]}""", "0.4.0");
        Assert.Equal("""{"cniVersion":"0.4.0","ips":[{"version":"6","address":"fd00::5/64"}]}""", Json.WriteResult(missing, "0.4.0"));
    }

    [Fact]
    public void Zero_route_extras_mean_unset_as_with_libcni_omitempty()
    {
        var r = Json.ParseResult("""{"routes":[{"dst":"10.96.0.0/16","mtu":0,"advmss":0,"priority":0,"table":0}]}""", "1.1.0");
        Assert.Equal("""{"cniVersion":"1.1.0","routes":[{"dst":"10.96.0.0/16","table":0}]}""", Json.WriteResult(r, "1.1.0"));
    }

    [Fact]
    public void Writing_an_unsupported_version_is_error_1()
    {
        Assert.Equal(CniErrorCode.IncompatibleVersion, Assert.Throws<CniException>(() => Json.WriteResult(new CniResult(), "0.2.0")).Code);
    }

    [Theory]
    [InlineData("""{"ips":[{"address":"10.244.1.5/24","gateway":"fd00::1"}]}""", "prevResult.ips[0].gateway:")]
    [InlineData("""{"ips":[{"gateway":"10.244.1.1"}]}""", "prevResult.ips[0].address:")]
    [InlineData("""{"routes":[{"dst":"0.0.0.0/0","scope":300}]}""", "prevResult.routes[0].scope:")]
    [InlineData("""{"interfaces":{}}""", "prevResult.interfaces: expected an array")]
    [InlineData("""{"dns":{"nameservers":"10.96.0.10"}}""", "prevResult.dns.nameservers: expected an array")]
    [InlineData("""[]""", "prevResult: expected an object")]
    public void Bad_results_name_the_field(string json, string fragment)
    {
        var e = Assert.Throws<CniException>(() => Json.ParseResult(json, "1.1.0"));
        Assert.Equal(CniErrorCode.InvalidConfig, e.Code);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }
}
