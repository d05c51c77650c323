using System.Text.Json;
using Trellis.Core.Cni;

namespace Trellis.Core.Tests.Cni;

public class CniVersionsTests
{
    [Fact]
    public void VERSION_response_lists_every_supported_version()
    {
        Assert.Equal(
            """{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}""",
            Json.Write(CniVersions.WriteVersionResponse));
    }

    [Theory]
    [InlineData("1.1.0", "1.0.0", 1)]
    [InlineData("0.4.0", "0.4.0", 0)]
    [InlineData("0.3.1", "0.4.0", -1)]
    [InlineData("1", "1.0.0", 0)]
    [InlineData("0.10.0", "0.9.0", 1)]
    [InlineData("1.1", "1.0.9", 1)]
    public void Versions_compare_semantically(string a, string b, int sign)
    {
        Assert.Equal(sign, Math.Sign(CniVersions.Compare(a, b)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("1.x.0")]
    [InlineData("1.0.0.0")]
    [InlineData("+1.0.0")]
    [InlineData("1.0.0-rc1")]
    public void Unparseable_version_in_a_comparison_is_a_decode_failure(string v)
    {
        Assert.Equal(CniErrorCode.DecodeFailure, Assert.Throws<CniException>(() => CniVersions.Compare(v, "1.0.0")).Code);
    }

    [Theory]
    [InlineData(CniCommand.Add, "0.3.0", true)]
    [InlineData(CniCommand.Del, "0.3.0", true)]
    [InlineData(CniCommand.Check, "0.3.1", false)]
    [InlineData(CniCommand.Check, "0.4.0", true)]
    [InlineData(CniCommand.Status, "1.0.0", false)]
    [InlineData(CniCommand.Status, "1.1.0", true)]
    [InlineData(CniCommand.Gc, "1.0.0", false)]
    [InlineData(CniCommand.Gc, "1.1.0", true)]
    public void Command_floors_are_error_1(CniCommand command, string version, bool allowed)
    {
        if (allowed)
        {
            CniVersions.EnsureCommandAllowed(command, version);
        }
        else
        {
            var e = Assert.Throws<CniException>(() => CniVersions.EnsureCommandAllowed(command, version));
            Assert.Equal(CniErrorCode.IncompatibleVersion, e.Code);
            Assert.StartsWith("cniVersion:", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Error_json_has_the_spec_shape()
    {
        var e = new CniException(CniErrorCode.InvalidConfig, "ipam.ranges[0][0].rangeStart: 10.0.9.5 is not in subnet 10.244.1.0/24");
        Assert.Equal(
            """{"cniVersion":"1.0.0","code":7,"msg":"ipam.ranges[0][0].rangeStart: 10.0.9.5 is not in subnet 10.244.1.0/24"}""",
            Json.Write(w => e.WriteErrorJson(w, "1.0.0")));
        var withDetails = new CniException(CniErrorCode.InvalidEnvironment, "CNI_IFNAME: \"eth0/x\" must not contain '/'", "see SPEC.md");
        Assert.Equal(
            """{"cniVersion":"1.1.0","code":4,"msg":"CNI_IFNAME: \"eth0/x\" must not contain '/'","details":"see SPEC.md"}""",
            Json.Write(w => withDetails.WriteErrorJson(w, CniVersions.Latest)));
    }

    [Theory]
    [InlineData("""{"name":"x","cniVersion":"0.4.0"}""", "0.4.0")]
    [InlineData("""{"prevResult":{"cniVersion":"0.3.1"},"cniVersion":"1.0.0"}""", "1.0.0")]
    [InlineData("""{"cniVersion":"0.2.0"}""", "1.1.0")]
    [InlineData("""{"cniVersion":5}""", "1.1.0")]
    [InlineData("""{"cniVersion":""", "1.1.0")]
    [InlineData("""[]""", "1.1.0")]
    [InlineData("", "1.1.0")]
    public void Error_version_is_the_configs_own_when_supported(string stdin, string expected)
    {
        Assert.Equal(expected, CniVersions.ForErrors(System.Text.Encoding.UTF8.GetBytes(stdin)));
    }

    [Fact]
    public void Writer_options_do_not_escape_quotes()
    {
        using var doc = JsonDocument.Parse(Json.Write(w => new CniException(7, "a \"b\"").WriteErrorJson(w, "1.1.0")));
        Assert.Equal("a \"b\"", doc.RootElement.GetProperty("msg").GetString());
    }
}
