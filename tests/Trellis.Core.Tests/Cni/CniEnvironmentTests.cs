using System.Net;
using Trellis.Core.Cni;

namespace Trellis.Core.Tests.Cni;

public class CniEnvironmentTests
{
    private static Func<string, string?> Env(params (string Key, string? Value)[] vars)
    {
        var d = vars.ToDictionary(v => v.Key, v => v.Value);
        return k => d.TryGetValue(k, out var v) ? v : null;
    }

    // Serializable form for theory rows: "KEY=VALUE" sets, a bare "KEY" unsets.
    private static string[] Add(params string[] overrides) =>
        Encode(Add(overrides.Select(o => o.Contains('=', StringComparison.Ordinal) ? (o[..o.IndexOf('=', StringComparison.Ordinal)], (string?)o[(o.IndexOf('=', StringComparison.Ordinal) + 1)..]) : (o, null)).ToArray()));

    private static string[] Encode((string Key, string? Value)[] vars) => vars.Select(v => v.Value is null ? v.Key : v.Key + "=" + v.Value).ToArray();

    private static (string, string?)[] Decode(string[] vars) =>
        vars.Select(o => o.Contains('=', StringComparison.Ordinal) ? (o[..o.IndexOf('=', StringComparison.Ordinal)], (string?)o[(o.IndexOf('=', StringComparison.Ordinal) + 1)..]) : (o, null)).ToArray();

    private static (string, string?)[] Add(params (string Key, string? Value)[] overrides)
    {
        var d = new Dictionary<string, string?>
        {
            ["CNI_COMMAND"] = "ADD",
            ["CNI_CONTAINERID"] = "3f6940ab5ab43bc5",
            ["CNI_NETNS"] = "/run/netns/trl-default-pod-1",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = "/opt/cni/bin:/usr/lib/cni",
        };
        foreach (var (k, v) in overrides)
        {
            d[k] = v;
        }
        return d.Select(kv => (kv.Key, kv.Value)).ToArray();
    }

    public static TheoryData<string, string[], string> BadCases() => new()
    {
        { "command missing", Add("CNI_COMMAND"), "CNI_COMMAND:" },
        { "command empty", Add("CNI_COMMAND="), "CNI_COMMAND:" },
        { "command lower case", Add("CNI_COMMAND=add"), "CNI_COMMAND: \"add\" is not one of" },
        { "command unknown", Add("CNI_COMMAND=INIT"), "CNI_COMMAND:" },
        { "ADD without container id", Add("CNI_CONTAINERID"), "CNI_CONTAINERID" },
        { "ADD without netns", Add("CNI_NETNS="), "CNI_NETNS" },
        { "ADD without ifname", Add("CNI_IFNAME"), "CNI_IFNAME" },
        { "ADD without three", Add("CNI_IFNAME", "CNI_NETNS", "CNI_CONTAINERID"), "CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME:" },
        { "CHECK without netns", Add("CNI_COMMAND=CHECK", "CNI_NETNS"), "CNI_NETNS" },
        { "DEL without ifname", Add("CNI_COMMAND=DEL", "CNI_IFNAME"), "CNI_IFNAME" },
        { "DEL without container id", Add("CNI_COMMAND=DEL", "CNI_CONTAINERID"), "CNI_CONTAINERID" },
        { "container id leading dash", Add("CNI_CONTAINERID=-abc"), "CNI_CONTAINERID:" },
        { "container id with space", Add("CNI_CONTAINERID=ab c"), "CNI_CONTAINERID:" },
        { "container id with slash", Add("CNI_CONTAINERID=ab/../c"), "CNI_CONTAINERID:" },
        { "ifname with slash", Add("CNI_IFNAME=eth0/x"), "CNI_IFNAME: \"eth0/x\" must not contain '/'" },
        { "ifname dot", Add("CNI_IFNAME=."), "CNI_IFNAME:" },
        { "ifname dotdot", Add("CNI_IFNAME=.."), "CNI_IFNAME:" },
        { "ifname 16 bytes", Add("CNI_IFNAME=eth0123456789012"), "CNI_IFNAME: \"eth0123456789012\" is 16 bytes long" },
        { "ifname multibyte too long", Add("CNI_IFNAME=ééééééééé"), "CNI_IFNAME:" },
        { "ifname with space", Add("CNI_IFNAME=et h0"), "CNI_IFNAME:" },
        { "ifname with tab", Add("CNI_IFNAME=eth\t0"), "CNI_IFNAME:" },
        { "ifname with NBSP", Add("CNI_IFNAME=eth\u00a00"), "CNI_IFNAME:" },
        { "ifname with colon", Add("CNI_IFNAME=eth0:1"), "CNI_IFNAME: \"eth0:1\" must not contain ':'" },
        { "args pair without =", Add("CNI_ARGS=IgnoreUnknown=1;FOO"), "CNI_ARGS: invalid pair \"FOO\"" },
        { "args pair with two =", Add("CNI_ARGS=IgnoreUnknown=1;A=B=C"), "CNI_ARGS: invalid pair" },
        { "args trailing semicolon", Add("CNI_ARGS=IP=10.244.1.5;"), "CNI_ARGS: invalid pair \"\"" },
        { "args unknown key", Add("CNI_ARGS=FOO=bar"), "CNI_ARGS: unknown keys \"FOO\"" },
        { "args unknown key with IgnoreUnknown=0", Add("CNI_ARGS=IgnoreUnknown=0;FOO=bar"), "CNI_ARGS: unknown keys" },
        { "args lower-case key is unknown", Add("CNI_ARGS=ip=10.244.1.5"), "CNI_ARGS: unknown keys \"ip\"" },
        { "args IgnoreUnknown garbage", Add("CNI_ARGS=IgnoreUnknown=yes"), "CNI_ARGS: IgnoreUnknown:" },
        { "args bad IP", Add("CNI_ARGS=IP=10.244.1.300"), "CNI_ARGS: IP: \"10.244.1.300\"" },
        { "args empty IP", Add("CNI_ARGS=IP="), "CNI_ARGS: IP:" },
        { "args one bad IP of two", Add("CNI_ARGS=IP=10.244.1.5,fd00::zz"), "CNI_ARGS: IP: \"fd00::zz\"" },
        { "args broadcast MAC", Add("CNI_ARGS=MAC=ff:ff:ff:ff:ff:ff"), "CNI_ARGS: MAC:" },
        { "args short MAC", Add("CNI_ARGS=MAC=0a:58:0a"), "CNI_ARGS: MAC:" },
        { "args zero MAC", Add("CNI_ARGS=MAC=00:00:00:00:00:00"), "CNI_ARGS: MAC:" },
    };

    [Theory]
    [MemberData(nameof(BadCases))]
    public void Bad_environment_is_error_4_naming_the_variable(string why, string[] vars, string fragment)
    {
        var e = Assert.Throws<CniException>(() => CniEnvironment.Parse(Env(Decode(vars))));
        Assert.True(e.Code == CniErrorCode.InvalidEnvironment, $"{why}: got {e.Code} {e.Message}");
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ADD_environment_parses()
    {
        var env = CniEnvironment.Parse(Env(Add(("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=3f69;K8S_POD_UID=u-1;IP=10.244.1.5,fd00::5/64;MAC=0A-58-0A-F4-01-05;FOO=bar"))));
        Assert.Equal(CniCommand.Add, env.Command);
        Assert.Equal("3f6940ab5ab43bc5", env.ContainerId);
        Assert.Equal("/run/netns/trl-default-pod-1", env.NetNs);
        Assert.Equal("eth0", env.IfName);
        Assert.Equal(["/opt/cni/bin", "/usr/lib/cni"], env.Path);
        Assert.True(env.Args.IgnoreUnknown);
        Assert.Equal("demo", env.Args.K8sPodNamespace);
        Assert.Equal("web-0", env.Args.K8sPodName);
        Assert.Equal("3f69", env.Args.K8sPodInfraContainerId);
        Assert.Equal("u-1", env.Args.K8sPodUid);
        Assert.Equal([IPAddress.Parse("10.244.1.5"), IPAddress.Parse("fd00::5")], env.Args.Ips);
        Assert.Equal("0a:58:0a:f4:01:05", env.Args.Mac);
        Assert.Equal(["FOO"], env.Args.UnknownKeys);
    }

    [Fact]
    public void DEL_needs_no_netns_and_CNI_PATH_is_optional()
    {
        var env = CniEnvironment.Parse(Env(Add(("CNI_COMMAND", "DEL"), ("CNI_NETNS", null), ("CNI_PATH", null))));
        Assert.Equal(CniCommand.Del, env.Command);
        Assert.Null(env.NetNs);
        Assert.Empty(env.Path);
    }

    [Theory]
    [InlineData("STATUS", CniCommand.Status)]
    [InlineData("GC", CniCommand.Gc)]
    [InlineData("VERSION", CniCommand.Version)]
    public void Container_scoped_variables_are_not_looked_at_for_STATUS_GC_VERSION(string command, CniCommand expected)
    {
        var env = CniEnvironment.Parse(Env(("CNI_COMMAND", command), ("CNI_IFNAME", "bad/name"), ("CNI_ARGS", "garbage")));
        Assert.Equal(expected, env.Command);
        Assert.Null(env.IfName);
        Assert.Same(CniArgs.Empty, env.Args);
    }

    [Theory]
    [InlineData("IgnoreUnknown=TRUE;X=1", true)]
    [InlineData("IgnoreUnknown=true;X=1", true)]
    [InlineData("IgnoreUnknown=1;X=1", true)]
    [InlineData("IgnoreUnknown=false", false)]
    [InlineData("X=1;IgnoreUnknown=1", true)]
    [InlineData("MAC=", false)]
    public void IgnoreUnknown_follows_libcni_boolean_rules(string args, bool ignore)
    {
        Assert.Equal(ignore, CniArgs.Parse(args).IgnoreUnknown);
    }

    [Fact]
    public void Last_duplicate_key_wins_as_in_LoadArgs()
    {
        Assert.Equal("b", CniArgs.Parse("K8S_POD_NAME=a;K8S_POD_NAME=b").K8sPodName);
    }

    [Fact]
    public void Interface_names_of_exactly_15_bytes_are_fine()
    {
        Assert.Null(CniNames.CheckInterfaceName("eth012345678901"));
        Assert.Null(CniNames.CheckInterfaceName("éééééééx"));
    }
}
