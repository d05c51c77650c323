using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;
using Trellis.Core.Cni;

namespace Trellis.Cni.Tests;

/// <summary>
/// Bad stdin and env against the real executable, exec'd in a node netns as a runtime does it:
/// each case must get the spec's error object with the right code and a message naming the
/// field, a non-zero exit, and leave nothing behind — no IPAM files, no links in the node, no
/// interface in the pod (DESIGN.md §9: never half-applied state).
/// </summary>
[Collection("kernel")]
public sealed class BadInputTests
{
    private const string ContainerId = "bad-input-0001";

    private sealed record Case(
        string Command,
        Func<PluginNode, string> Config,
        Func<PluginNode, TestNetns, Dictionary<string, string?>> Env,
        int Code,
        string Fragment);

    private static Dictionary<string, string?> DefaultEnv(PluginNode node, TestNetns pod) => PluginNode.Env(ContainerId, pod.Path, "eth0");

    private static Func<PluginNode, TestNetns, Dictionary<string, string?>> EnvWith(params (string Key, string? Value)[] changes) => (node, pod) =>
    {
        var env = DefaultEnv(node, pod);
        foreach (var (k, v) in changes)
        {
            env[k] = v;
        }
        return env;
    };

    private static string Valid(PluginNode node) => node.Config();

    private static Func<PluginNode, string> Edit(Action<JsonObject> edit) => node =>
    {
        var o = JsonNode.Parse(node.Config())!.AsObject();
        edit(o);
        return o.ToJsonString();
    };

    private static Func<PluginNode, string> EditRange(Action<JsonObject> edit) =>
        Edit(o => edit(o["ipam"]!["ranges"]![0]![0]!.AsObject()));

    private static Func<PluginNode, string> Text(string text) => _ => text;

    private static Case Config(Func<PluginNode, string> config, int code, string fragment, string command = "ADD") =>
        new(command, config, DefaultEnv, code, fragment);

    private static Case Env(Func<PluginNode, TestNetns, Dictionary<string, string?>> env, int code, string fragment, string command = "ADD") =>
        new(command, Valid, env, code, fragment);

    private static readonly Dictionary<string, Case> s_cases = new()
    {
        // stdin that is not a configuration at all
        ["broken JSON"] = Config(Text("""{"cniVersion":"1.1.0","name":"""), 6, "network configuration: not valid JSON"),
        ["empty stdin"] = Config(Text(""), 6, "network configuration"),
        ["JSON array"] = Config(Text("[1,2,3]"), 6, "network configuration: expected a JSON object"),
        ["JSON string"] = Config(Text("\"trellis\""), 6, "network configuration: expected a JSON object"),
        ["trailing garbage"] = Config(n => n.Config() + "}", 6, "network configuration"),
        ["nesting deeper than 64"] = Config(n => n.Config().Replace("\"mtu\"", "\"x\":" + new string('[', 70) + new string(']', 70) + ",\"mtu\"", StringComparison.Ordinal), 6, "network configuration"),

        // top-level fields
        ["cniVersion unsupported"] = Config(Edit(o => o["cniVersion"] = "0.2.0"), 1, "cniVersion: \"0.2.0\" is not supported"),
        ["cniVersion from the future"] = Config(Edit(o => o["cniVersion"] = "2.0.0"), 1, "cniVersion: \"2.0.0\""),
        ["cniVersion missing"] = Config(Edit(o => o.Remove("cniVersion")), 7, "cniVersion: required"),
        ["name missing"] = Config(Edit(o => o.Remove("name")), 7, "name: missing"),
        ["name invalid"] = Config(Edit(o => o["name"] = "-testnet"), 7, "name: \"-testnet\""),
        ["name with slash"] = Config(Edit(o => o["name"] = "a/../../etc"), 7, "name:"),
        ["mtu too small"] = Config(Edit(o => o["mtu"] = 67), 7, "mtu: 67"),
        ["mtu wrong type"] = Config(Edit(o => o["mtu"] = "1500"), 7, "mtu: expected an integer"),
        ["mtu too large"] = Config(Edit(o => o["mtu"] = 65536), 7, "mtu:"),
        ["bridge name too long"] = Config(Edit(o => o["bridge"] = "trl-bridge-01234"), 7, "bridge: \"trl-bridge-01234\" is 16 bytes long"),
        ["bridge name with slash"] = Config(Edit(o => o["bridge"] = "trl/0"), 7, "bridge: \"trl/0\" must not contain '/'"),
        ["ipMasq true"] = Config(Edit(o => o["ipMasq"] = true), 2, "ipMasq: true is not supported"),
        ["hairpin with promisc"] = Config(Edit(o => o["promiscMode"] = true), 7, "hairpinMode, promiscMode"),

        // ipam
        ["ipam missing"] = Config(Edit(o => o.Remove("ipam")), 7, "ipam: required"),
        ["ipam.type unknown"] = Config(Edit(o => o["ipam"]!["type"] = "dhcp"), 7, "ipam.type: \"dhcp\""),
        ["subnet /31"] = Config(EditRange(r => r["subnet"] = "10.77.0.0/31"), 7, "ipam.ranges[0][0].subnet: network 10.77.0.0/31 is too small"),
        ["subnet /32"] = Config(EditRange(r => r["subnet"] = "10.77.0.0/32"), 7, "ipam.ranges[0][0].subnet:"),
        ["subnet not CIDR"] = Config(EditRange(r => r["subnet"] = "10.77.0.0"), 7, "ipam.ranges[0][0].subnet: \"10.77.0.0\" is not a subnet in CIDR notation"),
        ["subnet host bits"] = Config(EditRange(r => r["subnet"] = "10.77.0.9/24"), 7, "ipam.ranges[0][0].subnet: 10.77.0.9/24 has host bits set"),
        ["rangeStart outside subnet"] = Config(EditRange(r => r["rangeStart"] = "10.78.0.5"), 7, "ipam.ranges[0][0].rangeStart: 10.78.0.5 is not in subnet 10.77.0.0/24"),
        ["rangeEnd before rangeStart"] = Config(EditRange(r => { r["rangeStart"] = "10.77.0.100"; r["rangeEnd"] = "10.77.0.50"; }), 7, "ipam.ranges[0][0].rangeEnd: 10.77.0.50 is before rangeStart 10.77.0.100"),
        ["gateway outside subnet"] = Config(EditRange(r => r["gateway"] = "10.78.0.1"), 7, "ipam.ranges[0][0].gateway: 10.78.0.1 is not in subnet"),
        ["ranges empty"] = Config(Edit(o => o["ipam"]!["ranges"] = new JsonArray()), 7, "ipam.ranges: no IP ranges specified"),
        ["range set empty"] = Config(Edit(o => o["ipam"]!["ranges"] = JsonNode.Parse("[[]]")), 7, "ipam.ranges[0]: empty range set"),
        ["range sets overlap"] = Config(Edit(o => o["ipam"]!["ranges"]!.AsArray().Add(JsonNode.Parse("""[{"subnet":"10.77.0.0/16"}]"""))), 7, "ipam.ranges[1]: range set"),
        ["route dst not CIDR"] = Config(Edit(o => o["ipam"]!["routes"]![0]!["dst"] = "default"), 7, "ipam.routes[0].dst:"),
        ["route dst host bits"] = Config(Edit(o => o["ipam"]!["routes"]![0]!["dst"] = "10.96.0.1/12"), 7, "ipam.routes[0].dst: 10.96.0.1/12 has host bits set"),
        ["dataDir relative"] = Config(Edit(o => o["ipam"]!["dataDir"] = "var/lib/cni/networks"), 7, "ipam.dataDir: \"var/lib/cni/networks\" must be an absolute path"),
        ["runtimeConfig.mac multicast"] = Config(Edit(o => o["runtimeConfig"] = JsonNode.Parse("""{"mac":"01:00:5e:00:00:01"}""")), 7, "runtimeConfig.mac:"),
        ["runtimeConfig.mac garbage"] = Config(Edit(o => o["runtimeConfig"] = JsonNode.Parse("""{"mac":"not-a-mac"}""")), 7, "runtimeConfig.mac: \"not-a-mac\" is not a MAC address"),

        // commands against the config's version and required fields
        ["CHECK at 0.3.1"] = Config(Edit(o => { o["cniVersion"] = "0.3.1"; o["prevResult"] = JsonNode.Parse("""{"cniVersion":"0.3.1","ips":[]}"""); }), 1, "does not allow CHECK", "CHECK"),
        ["STATUS at 1.0.0"] = Config(Edit(o => o["cniVersion"] = "1.0.0"), 1, "cniVersion: \"1.0.0\" does not allow STATUS", "STATUS"),
        ["GC at 1.0.0"] = Config(Edit(o => { o["cniVersion"] = "1.0.0"; o["cni.dev/valid-attachments"] = new JsonArray(); }), 1, "does not allow GC", "GC"),
        ["CHECK without prevResult"] = Config(Valid, 7, "prevResult: required for CHECK", "CHECK"),
        ["GC without valid-attachments"] = Config(Valid, 7, "cni.dev/valid-attachments: required for GC", "GC"),

        // environment
        ["container id bad pattern"] = Env(EnvWith(("CNI_CONTAINERID", "-abc")), 4, "CNI_CONTAINERID: \"-abc\" must start with a letter or digit"),
        ["container id with slash"] = Env(EnvWith(("CNI_CONTAINERID", "abc/../../x")), 4, "CNI_CONTAINERID: \"abc/../../x\" may contain only"),
        ["container id missing"] = Env(EnvWith(("CNI_CONTAINERID", null)), 4, "CNI_CONTAINERID: required for ADD"),
        ["ifname too long"] = Env(EnvWith(("CNI_IFNAME", "eth0123456789012")), 4, "CNI_IFNAME: \"eth0123456789012\" is 16 bytes long"),
        ["ifname with slash"] = Env(EnvWith(("CNI_IFNAME", "eth0/x")), 4, "CNI_IFNAME: \"eth0/x\" must not contain '/'"),
        ["ifname dot"] = Env(EnvWith(("CNI_IFNAME", ".")), 4, "CNI_IFNAME: \".\""),
        ["ifname with colon"] = Env(EnvWith(("CNI_IFNAME", "eth0:1")), 4, "CNI_IFNAME: \"eth0:1\" must not contain ':'"),
        ["ifname missing"] = Env(EnvWith(("CNI_IFNAME", null)), 4, "CNI_IFNAME: required for ADD"),
        ["ifname missing on DEL"] = Env(EnvWith(("CNI_IFNAME", null)), 4, "CNI_IFNAME: required for DEL", "DEL"),
        ["netns missing on ADD"] = Env(EnvWith(("CNI_NETNS", null)), 4, "CNI_NETNS: required for ADD"),
        ["netns missing on CHECK"] = new("CHECK", Edit(o => o["prevResult"] = JsonNode.Parse("""{"cniVersion":"1.1.0","ips":[]}""")), EnvWith(("CNI_NETNS", null)), 4, "CNI_NETNS: required for CHECK"),
        ["netns does not exist"] = Env(EnvWith(("CNI_NETNS", "/var/run/netns/trl-no-such-netns")), 3, "CNI_NETNS: network namespace '/var/run/netns/trl-no-such-netns' does not exist"),
        ["command unknown"] = Env(DefaultEnv, 4, "CNI_COMMAND: \"INIT\" is not one of", "INIT"),
        ["command lower case"] = Env(DefaultEnv, 4, "CNI_COMMAND: \"add\"", "add"),
        ["command missing"] = Env(DefaultEnv, 4, "CNI_COMMAND: required variable is missing", ""),
        ["CNI_ARGS malformed"] = Env(EnvWith(("CNI_ARGS", "IgnoreUnknown=1;FOO")), 4, "CNI_ARGS: invalid pair \"FOO\""),
        ["CNI_ARGS unknown key"] = Env(EnvWith(("CNI_ARGS", "FOO=bar")), 4, "CNI_ARGS: unknown keys \"FOO\""),
        ["CNI_ARGS IP not an address"] = Env(EnvWith(("CNI_ARGS", "IgnoreUnknown=1;IP=10.77.0.300")), 4, "CNI_ARGS: IP: \"10.77.0.300\" is not an IP address"),
        ["CNI_ARGS MAC multicast"] = Env(EnvWith(("CNI_ARGS", "MAC=01:00:5e:00:00:01")), 4, "CNI_ARGS: MAC:"),
        // Valid on its own, refused against the ranges: host-local's plain error, hence 999 (CniErrorCode.Internal).
        ["requested IP outside the range"] = Env(EnvWith(("CNI_ARGS", "IgnoreUnknown=1;IP=10.99.0.5")), 999, "requested IP 10.99.0.5: not in any range set"),
        ["runtimeConfig.ips outside the range"] = Config(Edit(o => o["runtimeConfig"] = JsonNode.Parse("""{"ips":["10.99.0.6/24"]}""")), 999, "requested IP 10.99.0.6"),
    };

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in s_cases.Keys)
        {
            data.Add(name);
        }
        return data;
    }

    [Fact]
    public void The_table_covers_enough_cases()
    {
        Assert.True(s_cases.Count >= 35, $"{s_cases.Count} cases");
    }

    [KernelTheory]
    [MemberData(nameof(CaseNames))]
    public void Bad_input_gets_the_spec_error_and_leaves_nothing_behind(string why)
    {
        var c = s_cases[why];
        using var node = new PluginNode();
        var pod = node.NewPod();
        var nodeBefore = CniExec.LinkNames(node.Node.Path);
        var podBefore = CniExec.LinkNames(pod.Path);
        string config = c.Config(node);
        var env = c.Env(node, pod);

        var exec = node.Exec(c.Command, config, env);

        string context = $"{why}: exit {exec.ExitCode}\nstdout: {exec.Stdout}\nstderr: {exec.Stderr}";
        Assert.True(exec.ExitCode == 1, context);
        Assert.True(CniError.TryParse(exec.Stdout, out var error, out var whyNot), $"{context}\n{whyNot}");
        Assert.True(c.Code == error!.Code, $"expected code {c.Code}; {context}");
        Assert.Contains(c.Fragment, error.Msg, StringComparison.Ordinal);
        Assert.Contains(error.CniVersion, CniVersions.Supported);
        AssertNothingLeft(node, pod, nodeBefore, podBefore, context);
    }

    /// <summary>
    /// ADD that fails after the reservation (the pod already has an interface named CNI_IFNAME, so
    /// the veth cannot be created): the error names CNI_IFNAME, the address goes back, no host
    /// veth stays, and the pod keeps exactly the interfaces it had.
    /// </summary>
    [KernelFact]
    public void Add_failing_after_reserving_releases_the_ip_and_removes_its_links()
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        pod.Exec("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "x0");
        var podBefore = CniExec.LinkNames(pod.Path);

        var exec = node.Add("midway-0001", pod);

        Assert.True(exec.ExitCode == 1, exec.Stdout + exec.Stderr);
        var error = CniError.Parse(exec.Stdout);
        Assert.Equal(CniErrorCode.InvalidConfig, error.Code);
        Assert.StartsWith("CNI_IFNAME: interface 'eth0' already exists", error.Msg, StringComparison.Ordinal);
        // It did get as far as reserving: the round-robin hint moved to the address it took.
        Assert.Equal("10.77.0.2", File.ReadAllText(Path.Combine(node.StoreDir, "last_reserved_ip.0")).Trim());
        Assert.Empty(node.Reserved());
        Assert.Empty(CniExec.StoreFiles(node.DataDir, allowHints: true));
        Assert.Empty(node.HostVeths());
        Assert.Equal(podBefore, CniExec.LinkNames(pod.Path));

        // The address really is free again: another pod may ask for exactly it.
        var next = node.Add("midway-0002", node.NewPod(), args: "IgnoreUnknown=1;IP=10.77.0.2");
        Assert.Equal("10.77.0.2", PluginNode.FirstIp(PluginNode.ParseResult(next)));
        Assert.True(node.Del("midway-0002", null).ExitCode == 0);
        Assert.Empty(node.HostVethsSettled());
    }

    /// <summary>
    /// A CNI_NETNS the plugin cannot even open (a path under a regular file: ENOTDIR; a name over
    /// NAME_MAX: ENAMETOOLONG) is bad input like a missing one and must get the error object.
    /// </summary>
    [KernelTheory]
    [InlineData("ADD", "under-a-file")]
    [InlineData("ADD", "too-long")]
    [InlineData("CHECK", "under-a-file")]
    public void Unopenable_netns_gets_an_error_object_not_a_crash(string command, string kind)
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        string file = Path.GetTempFileName();
        try
        {
            string netns = kind == "under-a-file" ? file + "/netns" : "/var/run/netns/trl-" + new string('n', 300);
            var config = JsonNode.Parse(node.Config())!.AsObject();
            config["prevResult"] = JsonNode.Parse("""{"cniVersion":"1.1.0","ips":[]}""");
            var nodeBefore = CniExec.LinkNames(node.Node.Path);
            var podBefore = CniExec.LinkNames(pod.Path);

            var exec = node.Exec(command, config.ToJsonString(), PluginNode.Env(ContainerId, netns, "eth0"));

            string context = $"{command} CNI_NETNS={netns}: exit {exec.ExitCode}\nstdout: {exec.Stdout}\nstderr: {exec.Stderr}";
            Assert.True(exec.ExitCode == 1, context);
            Assert.True(CniError.TryParse(exec.Stdout, out var error, out var whyNot), $"{context}\n{whyNot}");
            Assert.True(error!.Code is CniErrorCode.UnknownContainer or CniErrorCode.InvalidEnvironment, context);
            Assert.StartsWith("CNI_NETNS:", error.Msg, StringComparison.Ordinal);
            AssertNothingLeft(node, pod, nodeBefore, podBefore, context);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// The kernel's dev_valid_name() rejects a name containing a byte for which its isspace() holds,
    /// and Linux's ctype table counts 0xA0 as space — so "trlà" (UTF-8 74 72 6c c3 a0) is refused
    /// with EINVAL. Such a name is a config (bridge) or environment (CNI_IFNAME) error and must be
    /// refused before anything is created.
    /// </summary>
    [KernelTheory]
    [InlineData("bridge", "trl\u00e0", CniErrorCode.InvalidConfig, "bridge:")]
    [InlineData("CNI_IFNAME", "e\u00e0", CniErrorCode.InvalidEnvironment, "CNI_IFNAME:")]
    public void Names_the_kernel_refuses_are_refused_up_front(string field, string name, int code, string fragment)
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        var nodeBefore = CniExec.LinkNames(node.Node.Path);
        var podBefore = CniExec.LinkNames(pod.Path);
        string config = field == "bridge" ? node.Config().Replace("\"trl0\"", $"\"{name}\"", StringComparison.Ordinal) : node.Config();
        var env = PluginNode.Env(ContainerId, pod.Path, field == "CNI_IFNAME" ? name : "eth0");

        var exec = node.Exec("ADD", config, env);

        string context = $"{field}={name}: exit {exec.ExitCode}\nstdout: {exec.Stdout}\nstderr: {exec.Stderr}";
        Assert.True(exec.ExitCode == 1, context);
        Assert.True(CniError.TryParse(exec.Stdout, out var error, out var whyNot), $"{context}\n{whyNot}");
        Assert.True(error!.Code == code, context);
        Assert.StartsWith(fragment, error.Msg, StringComparison.Ordinal);
        AssertNothingLeft(node, pod, nodeBefore, podBefore, context);
    }

    private static void AssertNothingLeft(PluginNode node, TestNetns pod, IReadOnlyList<string> nodeBefore, IReadOnlyList<string> podBefore, string context)
    {
        var storeFiles = CniExec.StoreFiles(node.DataDir);
        Assert.True(storeFiles.Count == 0, $"IPAM files left: {string.Join(", ", storeFiles)}; {context}");
        var nodeAfter = CniExec.LinkNames(node.Node.Path);
        Assert.True(nodeBefore.SequenceEqual(nodeAfter), $"node links before [{string.Join(", ", nodeBefore)}], after [{string.Join(", ", nodeAfter)}]; {context}");
        var podAfter = CniExec.LinkNames(pod.Path);
        Assert.True(podBefore.SequenceEqual(podAfter), $"pod links before [{string.Join(", ", podBefore)}], after [{string.Join(", ", podAfter)}]; {context}");
    }
}
