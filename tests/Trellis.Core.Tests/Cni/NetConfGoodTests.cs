using System.Net;
using Trellis.Core.Cni;
using Trellis.Core.Ipam;

namespace Trellis.Core.Tests.Cni;

public class NetConfGoodTests
{
    private static readonly CniEnvironment s_addEnv = new() { Command = CniCommand.Add, ContainerId = "c1", NetNs = "/run/netns/p", IfName = "eth0" };

    [Fact]
    public void Design_doc_config_parses_with_host_local_defaults()
    {
        var c = Json.Parse(Json.Base);
        Assert.Equal("1.1.0", c.CniVersion);
        Assert.Equal("trellis", c.Name);
        Assert.Equal("trellis-cni", c.Type);
        Assert.Equal("trellis0", c.Bridge);
        Assert.True(c.IsGateway);
        Assert.False(c.IsDefaultGateway);
        Assert.Equal(1450, c.Mtu);
        Assert.True(c.HairpinMode);
        Assert.False(c.PromiscMode);
        var set = Assert.Single(c.Ipam.Ranges);
        var r = Assert.Single(set.Ranges);
        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), r.Subnet);
        Assert.Equal(IPAddress.Parse("10.244.1.1"), r.RangeStart);
        Assert.Equal(IPAddress.Parse("10.244.1.254"), r.RangeEnd);
        Assert.Equal(IPAddress.Parse("10.244.1.1"), r.Gateway);
        Assert.Equal("ipam.ranges[0]", set.Path);
        Assert.Equal(UInt128.Parse("253", System.Globalization.CultureInfo.InvariantCulture), IpAllocator.Capacity(set));
        var route = Assert.Single(c.Ipam.Routes);
        Assert.Equal("0.0.0.0/0", route.Dst.ToString());
        Assert.Null(route.Gw);
        Assert.Equal("/var/lib/cni/networks", c.Ipam.DataDir);
        Assert.Empty(c.UnknownKeys);
        Assert.Null(c.PrevResult);
        Assert.Null(c.ValidAttachments);
    }

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void Every_supported_version_parses_for_ADD_and_DEL(string version)
    {
        var json = Json.Base.Set("cniVersion", $"\"{version}\"");
        Assert.Equal(version, Json.Parse(json, CniCommand.Add).CniVersion);
        Assert.Equal(version, Json.Parse(json, CniCommand.Del).CniVersion);
    }

    [Theory]
    [InlineData("0.4.0", """{"cniVersion":"0.4.0","interfaces":[{"name":"trellis0","mac":"0a:58:0a:f4:01:01"},{"name":"eth0","mac":"0a:58:0a:f4:01:05","sandbox":"/run/netns/p"}],"ips":[{"version":"4","address":"10.244.1.5/24","gateway":"10.244.1.1","interface":1}],"routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1"}],"dns":{}}""")]
    [InlineData("1.0.0", """{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"0a:58:0a:f4:01:05","sandbox":"/run/netns/p"}],"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1","interface":0}]}""")]
    [InlineData("1.1.0", """{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mac":"0a:58:0a:f4:01:05","mtu":1450,"sandbox":"/run/netns/p"}],"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1","interface":0}],"routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1","mtu":1450,"table":254,"scope":0}]}""")]
    public void CHECK_reads_prevResult_in_the_config_version(string version, string prev)
    {
        var c = Json.Parse(Json.Base.Set("cniVersion", $"\"{version}\"").Set("prevResult", prev), CniCommand.Check);
        Assert.NotNull(c.PrevResult);
        var ip = Assert.Single(c.PrevResult.Ips);
        Assert.Equal("10.244.1.5/24", ip.Address.ToString());
        Assert.Equal(IPAddress.Parse("10.244.1.1"), ip.Gateway);
        Assert.Equal("eth0", c.PrevResult.Interfaces[ip.Interface!.Value].Name);
    }

    [Fact]
    public void STATUS_and_GC_parse_at_1_1_0_and_GC_accepts_both_attachment_keys()
    {
        Assert.Equal("1.1.0", Json.Parse(Json.Base, CniCommand.Status).CniVersion);
        const string Att = """[{"containerID":"3f6940ab5ab4","ifname":"eth0"},{"containerID":"3f6940ab5ab4","ifname":"net1"}]""";
        var viaNew = Json.Parse(Json.Base.Set("cni.dev/valid-attachments", Att), CniCommand.Gc);
        var viaOld = Json.Parse(Json.Base.Set("cni.dev/attachments", Att), CniCommand.Gc);
        Assert.Equal([new GcAttachment("3f6940ab5ab4", "eth0"), new GcAttachment("3f6940ab5ab4", "net1")], viaNew.ValidAttachments);
        Assert.Equal(viaNew.ValidAttachments, viaOld.ValidAttachments);
        var empty = Json.Parse(Json.Base.Set("cni.dev/valid-attachments", "[]"), CniCommand.Gc);
        Assert.Empty(empty.ValidAttachments!);
    }

    [Fact]
    public void Minimal_config_takes_reference_defaults()
    {
        var c = Json.Parse("""{"cniVersion":"1.0.0","name":"n","type":"trellis-cni","ipam":{"subnet":"10.1.0.0/16"}}""");
        Assert.Equal("trellis0", c.Bridge);
        Assert.False(c.IsGateway);
        Assert.Equal(1500, c.Mtu);
        Assert.False(c.HairpinMode);
        var r = Assert.Single(Assert.Single(c.Ipam.Ranges).Ranges);
        Assert.Equal(IPAddress.Parse("10.1.0.1"), r.Gateway);
        Assert.Equal(IPAddress.Parse("10.1.0.1"), r.RangeStart);
        Assert.Equal(IPAddress.Parse("10.1.255.254"), r.RangeEnd);
        Assert.Equal("ipam", c.Ipam.Ranges[0].Path);
    }

    [Fact]
    public void Legacy_single_range_is_prepended_to_ranges_as_host_local_does()
    {
        var c = Json.Parse(Json.Base
            .Set("ipam.subnet", "\"10.250.0.0/24\"").Set("ipam.rangeStart", "\"10.250.0.10\"").Set("ipam.rangeEnd", "\"10.250.0.20\"").Set("ipam.gateway", "\"10.250.0.254\""));
        Assert.Equal(2, c.Ipam.Ranges.Count);
        Assert.Equal("10.250.0.10-10.250.0.20", c.Ipam.Ranges[0].ToString());
        Assert.Equal(IPAddress.Parse("10.250.0.254"), c.Ipam.Ranges[0].Ranges[0].Gateway);
        Assert.Equal(0, c.Ipam.Ranges[0].Index);
        Assert.Equal(1, c.Ipam.Ranges[1].Index);
        Assert.Equal("ipam.ranges[0]", c.Ipam.Ranges[1].Path);
    }

    [Fact]
    public void IPv6_ranges_end_at_the_last_address_and_dual_stack_gives_two_sets()
    {
        var c = Json.Parse(Json.Base.Set("ipam.ranges[1]", """[{"subnet":"fd00:10:244:1::/64"}]"""));
        var v6 = c.Ipam.Ranges[1].Ranges[0];
        Assert.Equal(IPAddress.Parse("fd00:10:244:1::1"), v6.RangeStart);
        Assert.Equal(IPAddress.Parse("fd00:10:244:1:ffff:ffff:ffff:ffff"), v6.RangeEnd);
        Assert.Equal(IPAddress.Parse("fd00:10:244:1::1"), v6.Gateway);
    }

    [Fact]
    public void Several_ranges_in_one_set_and_ipam_type_host_local_are_accepted()
    {
        var c = Json.Parse(Json.Base.Set("ipam.type", "\"host-local\"")
            .Set("ipam.ranges[0][1]", """{"subnet":"10.244.2.0/24","rangeStart":"10.244.2.100","rangeEnd":"10.244.2.110"}"""));
        Assert.Equal("host-local", c.Ipam.Type);
        Assert.Equal("10.244.1.1-10.244.1.254,10.244.2.100-10.244.2.110", c.Ipam.Ranges[0].ToString());
        Assert.Equal("trellis-cni", Json.Parse(Json.Base.Set("ipam.type", "\"trellis-cni\"")).Ipam.Type);
    }

    [Fact]
    public void IsDefaultGateway_implies_isGateway_like_the_reference_bridge()
    {
        var c = Json.Parse(Json.Base.Set("isGateway", "false").Set("isDefaultGateway", "true"));
        Assert.True(c.IsGateway);
        Assert.True(c.IsDefaultGateway);
    }

    [Fact]
    public void Off_values_of_unimplemented_bridge_options_are_accepted()
    {
        var c = Json.Parse(Json.Base.Set("ipMasq", "false").Set("vlan", "0").Set("vlanTrunk", "[]").Set("macspoofchk", "false")
            .Set("preserveDefaultVlan", "true").Set("capabilities", """{"mac":true,"ips":true}""").Set("cniVersions", """["1.0.0","1.1.0"]"""));
        Assert.Empty(c.UnknownKeys);
    }

    [Fact]
    public void Keys_fold_case_like_go_encoding_json_and_unknown_keys_are_recorded()
    {
        var c = Json.Parse(Json.Base.Set("mtu", null).Set("MTU", "9000").Set("flannelExtra", "{\"x\":1}").Set("cni.dev/other", "1"));
        Assert.Equal(9000, c.Mtu);
        Assert.Equal(["flannelExtra", "cni.dev/other"], c.UnknownKeys);
    }

    [Fact]
    public void Null_values_count_as_absent()
    {
        var c = Json.Parse(Json.Base.Set("bridge", "null").Set("mtu", "null").Set("ipam.ranges[0][0].gateway", "null").Set("dns", "null"));
        Assert.Equal("trellis0", c.Bridge);
        Assert.Equal(1500, c.Mtu);
        Assert.Equal(IPAddress.Parse("10.244.1.1"), c.Ipam.Ranges[0].Ranges[0].Gateway);
    }

    [Fact]
    public void Dns_routes_and_resolvConf_pass_through()
    {
        var c = Json.Parse(Json.Base
            .Set("dns", """{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local","svc.cluster.local"],"options":["ndots:5"]}""")
            .Set("ipam.routes[1]", """{"dst":"10.96.0.0/16","gw":"10.244.1.1"}""")
            .Set("ipam.resolvConf", "\"/etc/resolv.conf\""));
        Assert.Equal(["10.96.0.10"], c.Dns.Nameservers);
        Assert.Equal("cluster.local", c.Dns.Domain);
        Assert.Equal(2, c.Dns.Search.Count);
        Assert.Equal(["ndots:5"], c.Dns.Options);
        Assert.Equal(IPAddress.Parse("10.244.1.1"), c.Ipam.Routes[1].Gw);
        Assert.Equal("/etc/resolv.conf", c.Ipam.ResolvConf);
    }

    [Fact]
    public void RuntimeConfig_ipRanges_are_prepended_as_host_local_does()
    {
        var c = Json.Parse(Json.Base.Set("runtimeConfig", """{"ipRanges":[[{"subnet":"10.99.0.0/24"}]]}"""));
        Assert.Equal("runtimeConfig.ipRanges[0]", c.Ipam.Ranges[0].Path);
        Assert.Equal("ipam.ranges[0]", c.Ipam.Ranges[1].Path);
    }

    [Fact]
    public void Requested_ips_combine_CNI_ARGS_then_args_then_runtimeConfig_without_duplicates()
    {
        var c = Json.Parse(Json.Base
            .Set("args", """{"cni":{"ips":["10.244.1.7","fd00::7"]},"labels":{"app":"x"}}""")
            .Set("runtimeConfig", """{"ips":["10.244.1.8/24","10.244.1.7"],"portMappings":[]}"""));
        var env = s_addEnv with { Args = CniArgs.Parse("IgnoreUnknown=1;IP=10.244.1.9,10.244.1.7") };
        Assert.Equal(
            ["10.244.1.9", "10.244.1.7", "fd00::7", "10.244.1.8"],
            c.RequestedIps(env).Select(i => i.ToString()));
        Assert.Empty(Json.Parse(Json.Base).RequestedIps(s_addEnv));
    }

    [Fact]
    public void Requested_mac_prefers_runtimeConfig_then_args_then_CNI_ARGS()
    {
        var env = s_addEnv with { Args = CniArgs.Parse("MAC=0A:58:0A:F4:01:09") };
        var plain = Json.Parse(Json.Base);
        Assert.Equal("0a:58:0a:f4:01:09", plain.RequestedMac(env));
        var withArgs = Json.Parse(Json.Base.Set("args", """{"cni":{"mac":"0a:58:0a:f4:01:0a"}}"""));
        Assert.Equal("0a:58:0a:f4:01:0a", withArgs.RequestedMac(env));
        var withRuntime = Json.Parse(Json.Base.Set("args", """{"cni":{"mac":"0a:58:0a:f4:01:0a"}}""").Set("runtimeConfig", """{"mac":"0a-58-0a-f4-01-0b"}"""));
        Assert.Equal("0a:58:0a:f4:01:0b", withRuntime.RequestedMac(env));
        Assert.Null(plain.RequestedMac(s_addEnv));
    }
}
