using System.Text;
using Trellis.Core.Cni;

namespace Trellis.Core.Tests.Cni;

public class NetConfBadTests
{
    private const string B = Json.Base;
    private const string V4Prev = """{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","mac":"0a:58:0a:f4:01:05","sandbox":"/run/netns/p"}],"ips":[{"version":"4","address":"10.244.1.5/24","gateway":"10.244.1.1","interface":0}]}""";

    // (why, config, command, expected code, text the message must contain)
    public static TheoryData<string, string, CniCommand, int, string> Cases() => new()
    {
        { "truncated", "{\"cniVersion\":", CniCommand.Add, 6, "network configuration" },
        { "not an object", "[1,2]", CniCommand.Add, 6, "network configuration" },
        { "empty stdin", "", CniCommand.Add, 6, "network configuration" },
        { "trailing garbage", B + "x", CniCommand.Add, 6, "network configuration" },
        { "nesting deeper than 64", B.Replace("\"mtu\"", "\"x\":" + new string('[', 70) + new string(']', 70) + ",\"mtu\"", StringComparison.Ordinal), CniCommand.Add, 6, "network configuration" },
        { "name missing", B.Set("name", null), CniCommand.Add, 7, "name:" },
        { "name pattern", B.Set("name", "\"-net\""), CniCommand.Add, 7, "name:" },
        { "name not a string", B.Set("name", "5"), CniCommand.Add, 7, "name: expected a string" },
        { "cniVersion missing", B.Set("cniVersion", null), CniCommand.Add, 7, "cniVersion:" },
        { "cniVersion not a string", B.Set("cniVersion", "1.1"), CniCommand.Add, 7, "cniVersion: expected a string" },
        { "cniVersion 0.2.0", B.Set("cniVersion", "\"0.2.0\""), CniCommand.Add, 1, "cniVersion:" },
        { "cniVersion from the future", B.Set("cniVersion", "\"2.0.0\""), CniCommand.Add, 1, "cniVersion:" },
        { "cniVersion short form", B.Set("cniVersion", "\"1.1\""), CniCommand.Add, 1, "cniVersion:" },
        { "CHECK below 0.4.0", B.Set("cniVersion", "\"0.3.1\""), CniCommand.Check, 1, "does not allow CHECK" },
        { "STATUS below 1.1.0", B.Set("cniVersion", "\"1.0.0\""), CniCommand.Status, 1, "does not allow STATUS" },
        { "GC below 1.1.0", B.Set("cniVersion", "\"1.0.0\""), CniCommand.Gc, 1, "does not allow GC" },
        { "type missing", B.Set("type", null), CniCommand.Add, 7, "type:" },
        { "type with a slash", B.Set("type", "\"../bin/sh\""), CniCommand.Add, 7, "type:" },
        { "bridge too long", B.Set("bridge", "\"trellis-bridge-0\""), CniCommand.Add, 7, "bridge:" },
        { "bridge with colon", B.Set("bridge", "\"br:0\""), CniCommand.Add, 7, "bridge: \"br:0\" must not contain ':'" },
        { "isGateway as string", B.Set("isGateway", "\"true\""), CniCommand.Add, 7, "isGateway: expected true or false" },
        { "mtu below 68", B.Set("mtu", "67"), CniCommand.Add, 7, "mtu:" },
        { "mtu above 65535", B.Set("mtu", "70000"), CniCommand.Add, 7, "mtu:" },
        { "mtu huge", B.Set("mtu", "123456789012345678901234567890"), CniCommand.Add, 7, "mtu:" },
        { "mtu as string", B.Set("mtu", "\"1450\""), CniCommand.Add, 7, "mtu: expected an integer" },
        { "mtu fractional", B.Set("mtu", "1450.5"), CniCommand.Add, 7, "mtu:" },
        { "mtu too small for IPv6", B.Set("mtu", "1000").Set("ipam.ranges[0][0].subnet", "\"fd00:10:244:1::/64\"").Set("ipam.ranges[0][0].gateway", null), CniCommand.Add, 7, "mtu: 1000 is below the IPv6 minimum" },
        { "ipMasq on", B.Set("ipMasq", "true"), CniCommand.Add, 2, "ipMasq: true" },
        { "vlan set", B.Set("vlan", "100"), CniCommand.Add, 2, "vlan: 100" },
        { "vlan out of range", B.Set("vlan", "5000"), CniCommand.Add, 7, "vlan:" },
        { "vlanTrunk set", B.Set("vlanTrunk", "[{\"id\":5}]"), CniCommand.Add, 2, "vlanTrunk:" },
        { "macspoofchk on", B.Set("macspoofchk", "true"), CniCommand.Add, 2, "macspoofchk: true" },
        { "portIsolation on", B.Set("portIsolation", "true"), CniCommand.Add, 2, "portIsolation: true" },
        { "hairpin with promisc", B.Set("promiscMode", "true"), CniCommand.Add, 7, "hairpinMode, promiscMode" },
        { "ipam missing", B.Set("ipam", null), CniCommand.Add, 7, "ipam:" },
        { "ipam not an object", B.Set("ipam", "[]"), CniCommand.Add, 7, "ipam: expected an object" },
        { "ipam.type dhcp", B.Set("ipam.type", "\"dhcp\""), CniCommand.Add, 7, "ipam.type:" },
        { "ranges empty", B.Set("ipam.ranges", "[]"), CniCommand.Add, 7, "ipam.ranges:" },
        { "ranges not an array", B.Set("ipam.ranges", "\"10.244.1.0/24\""), CniCommand.Add, 7, "ipam.ranges: expected an array" },
        { "range set empty", B.Set("ipam.ranges[0]", "[]"), CniCommand.Add, 7, "ipam.ranges[0]: empty range set" },
        { "range set not an array", B.Set("ipam.ranges[0]", "{}"), CniCommand.Add, 7, "ipam.ranges[0]: expected an array" },
        { "subnet missing", B.Set("ipam.ranges[0][0].subnet", null), CniCommand.Add, 7, "ipam.ranges[0][0].subnet:" },
        { "subnet a number", B.Set("ipam.ranges[0][0].subnet", "5"), CniCommand.Add, 7, "ipam.ranges[0][0].subnet: expected a string" },
        { "subnet without prefix", B.Set("ipam.ranges[0][0].subnet", "\"10.244.1.0\""), CniCommand.Add, 7, "ipam.ranges[0][0].subnet:" },
        { "subnet with host bits", B.Set("ipam.ranges[0][0].subnet", "\"10.244.1.7/24\""), CniCommand.Add, 7, "ipam.ranges[0][0].subnet: 10.244.1.7/24 has host bits set" },
        { "subnet /31", B.Set("ipam.ranges[0][0].subnet", "\"10.244.1.0/31\"").Set("ipam.ranges[0][0].gateway", null), CniCommand.Add, 7, "ipam.ranges[0][0].subnet: network 10.244.1.0/31 is too small" },
        { "subnet /32", B.Set("ipam.ranges[0][0].subnet", "\"10.244.1.0/32\"").Set("ipam.ranges[0][0].gateway", null), CniCommand.Add, 7, "ipam.ranges[0][0].subnet:" },
        { "subnet IPv6 /127", B.Set("ipam.ranges[0][0].subnet", "\"fd00::/127\"").Set("ipam.ranges[0][0].gateway", null), CniCommand.Add, 7, "ipam.ranges[0][0].subnet:" },
        { "subnet octal", B.Set("ipam.ranges[0][0].subnet", "\"010.244.1.0/24\""), CniCommand.Add, 7, "ipam.ranges[0][0].subnet:" },
        { "rangeStart outside", B.Set("ipam.ranges[0][0].rangeStart", "\"10.0.9.5\""), CniCommand.Add, 7, "ipam.ranges[0][0].rangeStart: 10.0.9.5 is not in subnet 10.244.1.0/24" },
        { "rangeStart not an IP", B.Set("ipam.ranges[0][0].rangeStart", "\"10.244.1\""), CniCommand.Add, 7, "ipam.ranges[0][0].rangeStart:" },
        { "rangeStart network address", B.Set("ipam.ranges[0][0].rangeStart", "\"10.244.1.0\""), CniCommand.Add, 7, "ipam.ranges[0][0].rangeStart: 10.244.1.0 is the network address" },
        { "rangeStart other family", B.Set("ipam.ranges[0][0].rangeStart", "\"fd00::5\""), CniCommand.Add, 7, "ipam.ranges[0][0].rangeStart: fd00::5 is IPv6" },
        { "rangeEnd broadcast", B.Set("ipam.ranges[0][0].rangeEnd", "\"10.244.1.255\""), CniCommand.Add, 7, "ipam.ranges[0][0].rangeEnd: 10.244.1.255 is the broadcast address" },
        { "rangeEnd before rangeStart", B.Set("ipam.ranges[0][0].rangeStart", "\"10.244.1.100\"").Set("ipam.ranges[0][0].rangeEnd", "\"10.244.1.50\""), CniCommand.Add, 7, "ipam.ranges[0][0].rangeEnd: 10.244.1.50 is before rangeStart 10.244.1.100" },
        { "gateway outside", B.Set("ipam.ranges[0][0].gateway", "\"10.244.2.1\""), CniCommand.Add, 7, "ipam.ranges[0][0].gateway: 10.244.2.1 is not in subnet" },
        { "gateway a bool", B.Set("ipam.ranges[0][0].gateway", "true"), CniCommand.Add, 7, "ipam.ranges[0][0].gateway: expected a string" },
        { "range is only the gateway", B.Set("ipam.ranges[0][0].rangeStart", "\"10.244.1.1\"").Set("ipam.ranges[0][0].rangeEnd", "\"10.244.1.1\""), CniCommand.Add, 7, "ipam.ranges[0][0]: range 10.244.1.1-10.244.1.1 has no allocatable address" },
        { "ranges overlap within a set", B.Set("ipam.ranges[0][1]", "{\"subnet\":\"10.244.1.0/24\",\"rangeStart\":\"10.244.1.200\"}"), CniCommand.Add, 7, "ipam.ranges[0][1]: range 10.244.1.200-10.244.1.254 overlaps ipam.ranges[0][0]" },
        { "mixed families within a set", B.Set("ipam.ranges[0][1]", "{\"subnet\":\"fd00::/64\"}"), CniCommand.Add, 7, "ipam.ranges[0][1].subnet: fd00::/64 is IPv6" },
        { "range sets overlap", B.Set("ipam.ranges[1]", "[{\"subnet\":\"10.244.0.0/16\"}]"), CniCommand.Add, 7, "ipam.ranges[1]: range set" },
        { "legacy rangeStart without subnet", B.Set("ipam.rangeStart", "\"10.244.1.10\""), CniCommand.Add, 7, "ipam.rangeStart:" },
        { "legacy subnet overlaps ranges", B.Set("ipam.subnet", "\"10.244.1.0/24\""), CniCommand.Add, 7, "ipam.ranges[0]: range set" },
        { "legacy gateway outside", B.Set("ipam.ranges", null).Set("ipam.subnet", "\"10.1.0.0/16\"").Set("ipam.gateway", "\"10.2.0.1\""), CniCommand.Add, 7, "ipam.gateway: 10.2.0.1 is not in subnet 10.1.0.0/16" },
        { "route dst missing", B.Set("ipam.routes[0]", "{\"gw\":\"10.244.1.1\"}"), CniCommand.Add, 7, "ipam.routes[0].dst:" },
        { "route dst host bits", B.Set("ipam.routes[0].dst", "\"10.96.0.1/16\""), CniCommand.Add, 7, "ipam.routes[0].dst: 10.96.0.1/16 has host bits set" },
        { "route gw other family", B.Set("ipam.routes[0].gw", "\"fd00::1\""), CniCommand.Add, 7, "ipam.routes[0].gw:" },
        { "routes not an array", B.Set("ipam.routes", "{}"), CniCommand.Add, 7, "ipam.routes: expected an array" },
        { "dataDir relative", B.Set("ipam.dataDir", "\"var/lib/cni\""), CniCommand.Add, 7, "ipam.dataDir:" },
        { "dns nameserver not an IP", B.Set("dns", "{\"nameservers\":[\"dns.local\"]}"), CniCommand.Add, 7, "dns.nameservers[0]:" },
        { "dns search not strings", B.Set("dns", "{\"search\":[1]}"), CniCommand.Add, 7, "dns.search[0]: expected a string" },
        { "runtimeConfig.mac multicast", B.Set("runtimeConfig", "{\"mac\":\"01:00:5e:00:00:01\"}"), CniCommand.Add, 7, "runtimeConfig.mac:" },
        { "runtimeConfig.mac garbage", B.Set("runtimeConfig", "{\"mac\":\"0a:58:0a:f4:01\"}"), CniCommand.Add, 7, "runtimeConfig.mac:" },
        { "runtimeConfig.ips not IPs", B.Set("runtimeConfig", "{\"ips\":[\"10.244.1.5\",\"nope\"]}"), CniCommand.Add, 7, "runtimeConfig.ips[1]:" },
        { "runtimeConfig.ipRanges bad subnet", B.Set("runtimeConfig", "{\"ipRanges\":[[{\"subnet\":\"x\"}]]}"), CniCommand.Add, 7, "runtimeConfig.ipRanges[0][0].subnet:" },
        { "args.cni.ips numbers", B.Set("args", "{\"cni\":{\"ips\":[5]}}"), CniCommand.Add, 7, "args.cni.ips[0]: expected a string" },
        { "args not an object", B.Set("args", "\"x\""), CniCommand.Add, 7, "args: expected an object" },
        { "CHECK without prevResult", B, CniCommand.Check, 7, "prevResult:" },
        { "prevResult address bad", B.Set("prevResult", "{\"ips\":[{\"address\":\"10.244.1.5\"}]}"), CniCommand.Check, 7, "prevResult.ips[0].address:" },
        { "prevResult version mismatch", B.Set("cniVersion", "\"0.4.0\"").Set("prevResult", V4Prev.Set("ips[0].version", "\"6\"")), CniCommand.Check, 7, "prevResult.ips[0].version:" },
        { "prevResult interface index", B.Set("prevResult", V4Prev.Set("ips[0].interface", "3")), CniCommand.Check, 7, "prevResult.ips[0].interface:" },
        { "prevResult interface without name", B.Set("prevResult", V4Prev.Set("interfaces[0].name", null)), CniCommand.Check, 7, "prevResult.interfaces[0].name:" },
        { "GC without attachments", B, CniCommand.Gc, 7, "cni.dev/valid-attachments:" },
        { "GC attachment id not a string", B.Set("cni.dev/valid-attachments", "[{\"containerID\":5,\"ifname\":\"eth0\"}]"), CniCommand.Gc, 7, "cni.dev/valid-attachments[0].containerID: expected a string" },
        { "GC attachment ifname bad", B.Set("cni.dev/valid-attachments", "[{\"containerID\":\"abc\",\"ifname\":\"a/b\"}]"), CniCommand.Gc, 7, "cni.dev/valid-attachments[0].ifname:" },
        { "GC old key, bad entry", B.Set("cni.dev/attachments", "[\"abc\"]"), CniCommand.Gc, 7, "cni.dev/attachments[0]: expected an object" },
        { "duplicate key", B.Replace("\"mtu\":1450", "\"mtu\":1450,\"mtu\":9000", StringComparison.Ordinal), CniCommand.Add, 7, "mtu: duplicate key" },
        { "case-folded duplicates", B.Replace("\"mtu\":1450", "\"MTU\":1450,\"Mtu\":9000", StringComparison.Ordinal), CniCommand.Add, 7, "mtu: ambiguous" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bad_config_is_refused_with_the_spec_code_naming_the_field(string why, string config, CniCommand command, int code, string fragment)
    {
        var e = Assert.Throws<CniException>(() => Json.Parse(config, command));
        Assert.True(code == e.Code, $"{why}: expected code {code}, got {e.Code}: {e.Message}");
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_inside_a_string_is_a_decode_failure()
    {
        var bytes = Encoding.UTF8.GetBytes(Json.Base.Replace("trellis0", "trellis\u00e9", StringComparison.Ordinal));
        int at = Array.IndexOf(bytes, (byte)0xC3);
        bytes[at + 1] = 0x28; // broken continuation byte
        var e = Assert.Throws<CniException>(() => NetConf.Parse(bytes, CniCommand.Add));
        Assert.Equal(CniErrorCode.DecodeFailure, e.Code);
    }

    [Fact]
    public void Unknown_command_name_is_error_4_naming_CNI_COMMAND()
    {
        var e = Assert.Throws<CniException>(() => NetConf.Parse(Encoding.UTF8.GetBytes(Json.Base), "add"));
        Assert.Equal(CniErrorCode.InvalidEnvironment, e.Code);
        Assert.StartsWith("CNI_COMMAND:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_value_message_carries_key_and_value_as_the_spec_requires()
    {
        var e = Assert.Throws<CniException>(() => Json.Parse(Json.Base.Set("ipMasq", "true")));
        Assert.Equal(CniErrorCode.UnsupportedField, e.Code);
        Assert.StartsWith("ipMasq: true is not supported", e.Message, StringComparison.Ordinal);
    }
}
