using System.Net;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;
using Trellis.Core.Cni;
using Trellis.Netlink;

namespace Trellis.Cni.Tests;

/// <summary>
/// Each CNI command against the real executable in a throwaway node: the answer's format per
/// spec version, and what the kernel holds afterwards (addresses, MAC, MTU, routes, hairpin).
/// </summary>
[Collection("kernel")]
public sealed class CommandTests
{
    private static Dictionary<string, string?> NoContainerEnv() => PluginNode.Env(null, null, null);

    private static string WithRange(PluginNode node, string rangeJson) =>
        node.Config().Replace($"{{\"subnet\":\"{node.Subnet}\"}}", rangeJson, StringComparison.Ordinal);

    [KernelTheory]
    [InlineData("")]
    [InlineData("""{"cniVersion":"1.1.0"}""")]
    public void Version_lists_the_supported_versions_without_needing_a_config(string stdin)
    {
        using var node = new PluginNode();

        var exec = node.Exec("VERSION", stdin, NoContainerEnv());

        Assert.True(exec.ExitCode == 0, exec.Stdout + exec.Stderr);
        var answer = JsonNode.Parse(exec.Stdout)!.AsObject();
        Assert.Equal("1.1.0", answer["cniVersion"]!.GetValue<string>());
        var versions = answer["supportedVersions"]!.AsArray().Select(v => v!.GetValue<string>()).ToList();
        Assert.Subset(versions.ToHashSet(), new HashSet<string> { "0.3.1", "0.4.0", "1.0.0", "1.1.0" });
        Assert.DoesNotContain("0.2.0", versions);
    }

    [KernelTheory]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void Add_answers_in_the_format_of_the_config_version(string version)
    {
        using var node = new PluginNode();
        var pod = node.NewPod();

        var result = PluginNode.ParseResult(node.Add("ver-" + version.Replace('.', '-'), pod, node.Config(version)));

        Assert.Equal(version, result["cniVersion"]!.GetValue<string>());
        var ip = result["ips"]!.AsArray().Single()!.AsObject();
        bool v0 = version.StartsWith("0.", StringComparison.Ordinal);
        // 0.3.x/0.4.0 results carry "version"; 1.0.0 dropped it.
        Assert.Equal(v0, ip.ContainsKey("version"));
        if (v0)
        {
            Assert.Equal("4", ip["version"]!.GetValue<string>());
        }
        Assert.Equal("10.77.0.1", ip["gateway"]!.GetValue<string>());
        var address = IPNetwork.Parse(ip["address"]!.GetValue<string>().Split('/')[0] + "/32");
        Assert.True(IPNetwork.Parse(node.Subnet).Contains(address.BaseAddress));
        Assert.EndsWith("/24", ip["address"]!.GetValue<string>(), StringComparison.Ordinal);
        var interfaces = result["interfaces"]!.AsArray();
        int index = ip["interface"]!.GetValue<int>();
        Assert.Equal("eth0", interfaces[index]!["name"]!.GetValue<string>());
        Assert.Equal(pod.Path, interfaces[index]!["sandbox"]!.GetValue<string>());
        // The per-interface mtu is a 1.1.0 field.
        Assert.Equal(version == "1.1.0", interfaces[index]!.AsObject().ContainsKey("mtu"));
        Assert.Contains($"inet {address.BaseAddress}/24", pod.Exec("ip", "-4", "addr", "show", "eth0"), StringComparison.Ordinal);

        Assert.True(node.Del("ver-" + version.Replace('.', '-'), pod, node.Config(version)).ExitCode == 0);
        Assert.Empty(node.Reserved());
        Assert.Empty(node.HostVethsSettled());
    }

    [KernelTheory]
    [InlineData("CNI_ARGS")]
    [InlineData("runtimeConfig.ips")]
    [InlineData("args.cni.ips")]
    public void A_requested_ip_is_the_one_assigned(string source)
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        string config = source switch
        {
            "runtimeConfig.ips" => node.Config(extra: ",\"runtimeConfig\":{\"ips\":[\"10.77.0.42/24\"]}"),
            "args.cni.ips" => node.Config(extra: ",\"args\":{\"cni\":{\"ips\":[\"10.77.0.42\"]}}"),
            _ => node.Config(),
        };
        string? args = source == "CNI_ARGS" ? "IgnoreUnknown=1;K8S_POD_NAME=web-0;IP=10.77.0.42" : null;

        var result = PluginNode.ParseResult(node.Add("req-ip-1", pod, config, args: args));

        Assert.Equal("10.77.0.42/24", result["ips"]![0]!["address"]!.GetValue<string>());
        Assert.Contains("inet 10.77.0.42/24", pod.Exec("ip", "-4", "addr", "show", "eth0"), StringComparison.Ordinal);
        Assert.Equal(["10.77.0.42"], node.Reserved());

        // Held now: another pod asking for it is refused (host-local's plain error, 999).
        var second = node.Add("req-ip-2", node.NewPod(), config, args: args);
        Assert.Equal(1, second.ExitCode);
        var error = CniError.Parse(second.Stdout);
        Assert.Equal(CniErrorCode.Internal, error.Code);
        Assert.Contains("requested IP 10.77.0.42", error.Msg, StringComparison.Ordinal);
        Assert.Equal(["10.77.0.42"], node.Reserved());

        Assert.True(node.Del("req-ip-1", pod, config).ExitCode == 0);
        Assert.Empty(node.Reserved());
        Assert.Empty(node.HostVethsSettled());
    }

    [KernelTheory]
    [InlineData("CNI_ARGS", "0A-58-0A-4D-00-99")]
    [InlineData("runtimeConfig.mac", "0a:58:0a:4d:00:99")]
    public void A_requested_mac_is_set_on_the_pod_interface(string source, string mac)
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        string config = source == "runtimeConfig.mac" ? node.Config(extra: $",\"runtimeConfig\":{{\"mac\":\"{mac}\"}}") : node.Config();
        string? args = source == "CNI_ARGS" ? "IgnoreUnknown=1;MAC=" + mac : null;

        var result = PluginNode.ParseResult(node.Add("mac-1", pod, config, args: args));

        Assert.Contains("link/ether 0a:58:0a:4d:00:99 ", Sh.Must("ip", "-n", pod.Name, "link", "show", "eth0"), StringComparison.Ordinal);
        var eth0 = result["interfaces"]!.AsArray().Single(i => i!["name"]!.GetValue<string>() == "eth0")!;
        Assert.Equal("0a:58:0a:4d:00:99", eth0["mac"]!.GetValue<string>());
        Assert.True(node.Del("mac-1", pod, config).ExitCode == 0);
    }

    [KernelFact]
    public void Del_is_idempotent_even_without_the_netns()
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        PluginNode.ParseResult(node.Add("del-1", pod));
        Assert.Single(node.Reserved());

        for (int i = 0; i < 2; i++)
        {
            var del = node.Del("del-1", pod);
            Assert.True(del.ExitCode == 0, $"DEL #{i + 1}: {del.Stdout} {del.Stderr}");
            Assert.Equal("", del.Stdout.Trim());
            Assert.Empty(node.Reserved());
        }
        Assert.Empty(node.HostVethsSettled());

        // The runtime lost the netns: DEL with the stale path, then with none at all.
        pod.Dispose();
        Assert.False(File.Exists(pod.Path));
        var stale = node.Del("del-1", pod);
        Assert.True(stale.ExitCode == 0, stale.Stdout + stale.Stderr);
        var noNetns = node.Exec("DEL", node.Config(), PluginNode.Env("del-1", "", "eth0"));
        Assert.True(noNetns.ExitCode == 0, noNetns.Stdout + noNetns.Stderr);
        Assert.Equal("", noNetns.Stdout.Trim());
        Assert.Empty(CniExec.StoreFiles(node.DataDir, allowHints: true));
    }

    [KernelFact]
    public void Del_after_the_netns_is_gone_still_releases_the_ip()
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        PluginNode.ParseResult(node.Add("del-gone-1", pod));
        Assert.Single(node.Reserved());

        pod.Dispose(); // the kernel destroys the pod's veth, and with it the host end

        var del = node.Exec("DEL", node.Config(), PluginNode.Env("del-gone-1", null, "eth0"));
        Assert.True(del.ExitCode == 0, del.Stdout + del.Stderr);
        Assert.Empty(node.Reserved());
        Assert.Empty(CniExec.StoreFiles(node.DataDir, allowHints: true));
        Assert.Empty(node.HostVethsSettled());
    }

    [KernelFact]
    public void Status_is_50_exactly_while_a_one_address_range_is_used()
    {
        using var node = new PluginNode();
        string config = WithRange(node, """{"subnet":"10.77.0.0/24","rangeStart":"10.77.0.10","rangeEnd":"10.77.0.10"}""");
        var empty = PluginNode.Env(null, null, null);

        var free = node.Exec("STATUS", config, empty);
        Assert.True(free.ExitCode == 0, free.Stdout + free.Stderr);
        Assert.Equal("", free.Stdout.Trim());

        var pod = node.NewPod();
        Assert.Equal("10.77.0.10", PluginNode.FirstIp(PluginNode.ParseResult(node.Add("status-1", pod, config))));

        var full = node.Exec("STATUS", config, empty);
        Assert.Equal(1, full.ExitCode);
        var error = CniError.Parse(full.Stdout);
        Assert.Equal(CniErrorCode.NotAvailable, error.Code);
        Assert.StartsWith("ipam.ranges[0]: no IP addresses available", error.Msg, StringComparison.Ordinal);

        // ADD agrees with STATUS, and leaves nothing behind for the pod it could not place.
        var pod2 = node.NewPod();
        var refused = node.Add("status-2", pod2, config);
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal(CniErrorCode.Internal, CniError.Parse(refused.Stdout).Code);
        Assert.Equal(["lo"], CniExec.LinkNames(pod2.Path));
        Assert.Equal(["10.77.0.10"], node.Reserved());

        Assert.True(node.Del("status-1", pod, config).ExitCode == 0);
        var again = node.Exec("STATUS", config, empty);
        Assert.True(again.ExitCode == 0, again.Stdout + again.Stderr);
        Assert.Empty(node.HostVethsSettled());
    }

    [KernelFact]
    public void Mtu_from_the_config_is_set_on_both_veth_ends_and_the_bridge()
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        string config = node.Config().Replace("\"mtu\":1500", "\"mtu\":1400", StringComparison.Ordinal);

        var result = PluginNode.ParseResult(node.Add("mtu-1", pod, config));

        var podEth0 = CniExec.Links(pod.Path).Single(l => l.Name == "eth0");
        Assert.Equal(1400, podEth0.Mtu);
        var hostLinks = CniExec.Links(node.Node.Path);
        var hostVeth = hostLinks.Single(l => l.Kind == "veth" && l.Name.StartsWith("trl", StringComparison.Ordinal));
        Assert.Equal(1400, hostVeth.Mtu);
        Assert.Equal(1400, hostLinks.Single(l => l.Name == node.Bridge).Mtu);
        Assert.Contains("mtu 1400 ", Sh.Must("ip", "-n", pod.Name, "link", "show", "eth0"), StringComparison.Ordinal);
        var eth0 = result["interfaces"]!.AsArray().Single(i => i!["name"]!.GetValue<string>() == "eth0")!;
        Assert.Equal(1400, eth0["mtu"]!.GetValue<int>());
        Assert.True(node.Del("mtu-1", pod, config).ExitCode == 0);
    }

    [KernelFact]
    public void Pod_gets_its_address_and_a_default_route_via_the_gateway_on_the_bridge()
    {
        using var node = new PluginNode();
        var pod = node.NewPod();

        var result = PluginNode.ParseResult(node.Add("route-1", pod));

        string ip = PluginNode.FirstIp(result);
        Assert.Contains("default via 10.77.0.1 dev eth0", pod.Exec("ip", "-4", "route", "show", "default"), StringComparison.Ordinal);
        Assert.Contains("inet 10.77.0.1/24", node.Node.Exec("ip", "-4", "addr", "show", node.Bridge), StringComparison.Ordinal);
        Assert.Equal("0.0.0.0/0", result["routes"]![0]!["dst"]!.GetValue<string>());
        // The kernel's own choice for an off-subnet destination is the gateway, and the node reaches the pod over the bridge.
        Assert.Contains("via 10.77.0.1 dev eth0", pod.Exec("ip", "route", "get", "192.0.2.1"), StringComparison.Ordinal);
        Assert.Contains($"{ip} dev {node.Bridge}", node.Node.Exec("ip", "route", "get", ip), StringComparison.Ordinal);
        Assert.True(node.Del("route-1", pod).ExitCode == 0);
    }

    [KernelTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void Hairpin_mode_follows_the_config_on_the_host_port(bool hairpin)
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        string config = hairpin ? node.Config() : node.Config().Replace("\"hairpinMode\":true", "\"hairpinMode\":false", StringComparison.Ordinal);

        PluginNode.ParseResult(node.Add("hairpin-1", pod, config));

        var links = CniExec.Links(node.Node.Path);
        var bridge = links.Single(l => l.Name == node.Bridge);
        var port = links.Single(l => l.Kind == "veth" && l.Name.StartsWith("trl", StringComparison.Ordinal));
        Assert.Equal(bridge.Index, port.MasterIndex);
        Assert.Equal(hairpin, port.Hairpin);
        string detail = node.Node.Exec("bridge", "-d", "link", "show", "dev", port.Name);
        Assert.Contains(hairpin ? "hairpin on" : "hairpin off", detail, StringComparison.Ordinal);
        Assert.True(node.Del("hairpin-1", pod, config).ExitCode == 0);
    }

    [KernelFact]
    public void Check_passes_after_add_and_fails_with_7_once_the_pod_address_is_gone()
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        string config = node.Config("1.1.0");
        var result = PluginNode.ParseResult(node.Add("check-1", pod, config));
        var withPrev = JsonNode.Parse(config)!.AsObject();
        withPrev["prevResult"] = result.DeepClone();
        var env = PluginNode.Env("check-1", pod.Path, "eth0");

        var ok = node.Exec("CHECK", withPrev.ToJsonString(), env);
        Assert.True(ok.ExitCode == 0, ok.Stdout + ok.Stderr);

        pod.Exec("ip", "addr", "flush", "dev", "eth0");
        var broken = node.Exec("CHECK", withPrev.ToJsonString(), env);
        Assert.Equal(1, broken.ExitCode);
        var error = CniError.Parse(broken.Stdout);
        Assert.Equal(CniErrorCode.InvalidConfig, error.Code);
        Assert.Contains("prevResult.ips", error.Msg, StringComparison.Ordinal);
        Assert.True(node.Del("check-1", pod, config).ExitCode == 0);
    }

    [KernelFact]
    public void Gc_releases_and_unplugs_exactly_the_attachments_not_listed()
    {
        using var node = new PluginNode();
        var keep = node.NewPod();
        var drop = node.NewPod();
        string keepIp = PluginNode.FirstIp(PluginNode.ParseResult(node.Add("gc-keep", keep)));
        PluginNode.ParseResult(node.Add("gc-drop", drop));
        Assert.Equal(2, node.HostVeths().Count);

        var gc = JsonNode.Parse(node.Config())!.AsObject();
        gc["cni.dev/valid-attachments"] = JsonNode.Parse("""[{"containerID":"gc-keep","ifname":"eth0"}]""");
        var exec = node.Exec("GC", gc.ToJsonString(), NoContainerEnv());

        Assert.True(exec.ExitCode == 0, exec.Stdout + exec.Stderr);
        Assert.Equal([keepIp], node.Reserved());
        Assert.Single(node.HostVethsSettled(expected: 1));
        Assert.Equal(["lo"], CniExec.LinkNames(drop.Path));
        Assert.Contains("eth0", CniExec.LinkNames(keep.Path));
        Assert.True(node.Del("gc-keep", keep).ExitCode == 0);
        Assert.Empty(node.HostVethsSettled());
    }

    /// <summary>
    /// CNI_CONTAINERID has no length limit in the spec (only the pattern), and runtimes other than
    /// containerd's 64-hex ids exist. A 250-character id must work like any other.
    /// </summary>
    [KernelFact]
    public void Add_and_del_work_with_a_long_container_id()
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        string id = "c" + new string('0', 249);

        var add = node.Add(id, pod);

        Assert.True(add.ExitCode == 0, $"ADD with a {id.Length}-character container id: {add.Stdout} {add.Stderr}");
        Assert.Single(node.Reserved());
        Assert.True(node.Del(id, pod).ExitCode == 0);
        Assert.Empty(node.Reserved());
        Assert.Empty(node.HostVethsSettled());
    }

    [KernelFact]
    public void Host_veth_carries_the_attachment_and_sits_on_the_bridge()
    {
        using var node = new PluginNode();
        var pod = node.NewPod();
        var result = PluginNode.ParseResult(node.Add("alias-1", pod));
        var hostName = result["interfaces"]![1]!["name"]!.GetValue<string>();

        using var nl = node.OpenNodeNetlink();
        Link veth = nl.LinkGetByName(hostName)!;
        Assert.Equal("veth", veth.Kind);
        Assert.True(veth.IsUp);
        Assert.Equal(nl.LinkGetByName(node.Bridge)!.Index, veth.MasterIndex);
        Assert.Equal($"trellis-cni {node.NetworkName} alias-1 eth0", veth.Alias);
        Assert.True(node.Del("alias-1", pod).ExitCode == 0);
        Assert.Empty(node.HostVethsSettled());
    }
}
