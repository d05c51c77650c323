using System.Diagnostics;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;
using Trellis.CniClient;
using Trellis.Netlink;

namespace Trellis.Cni.Tests;

/// <summary>
/// trellis-cni as the first plugin of a conflist followed by the reference portmap and bandwidth
/// plugins, driven by our libcni-like invoker: prevResult flows down the chain, DEL runs in
/// reverse, CHECK and GC honour the list's switches.
/// </summary>
[Collection("kernel")]
public sealed class ChainingTests
{
    private static string ConfList(PluginNode node, string extra = "") => $$$"""
        {"cniVersion":"0.4.0","cniVersions":["0.4.0","1.0.0","9.9.9"],"name":"{{{node.NetworkName}}}"{{{extra}}},"plugins":[
          {"type":"trellis-cni","bridge":"{{{node.Bridge}}}","isGateway":true,"mtu":1500,"hairpinMode":true,
           "ipam":{"ranges":[[{"subnet":"{{{node.Subnet}}}"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"{{{node.DataDir}}}"}},
          {"type":"portmap","capabilities":{"portMappings":true},"snat":true},
          {"type":"bandwidth","capabilities":{"bandwidth":true}}]}
        """;

    [KernelFact]
    public void Portmap_and_bandwidth_chain_after_trellis_and_del_unwinds_everything()
    {
        using var node = new PluginNode(subnet: "10.81.0.0/24");
        using var nodeNs = NetNs.Open(node.Node.Path);
        var list = CniConfigList.Parse(ConfList(node));
        Assert.Equal("1.0.0", list.CniVersion); // the highest of cniVersions this client speaks (the reference plugins stop at 1.0.0)
        var invoker = new CniInvoker([Repo.BinDir, Repo.ReferencePluginDir], Path.Combine(node.DataDir, "cache"));
        var pod = node.NewPod();
        var rt = new CniRuntimeConf("chain-1", pod.Path, "eth0")
        {
            CapabilityArgs = new Dictionary<string, JsonNode?>
            {
                ["portMappings"] = JsonNode.Parse("""[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]"""),
                ["bandwidth"] = JsonNode.Parse("""{"ingressRate":100000000,"ingressBurst":1000000,"egressRate":100000000,"egressBurst":1000000}"""),
            },
        };

        var result = nodeNs.Run(() => invoker.Add(list, rt));
        string podIp = result["ips"]![0]!["address"]!.GetValue<string>().Split('/')[0];
        // bandwidth appends its ifb device to the result it got from portmap, which got ours.
        var names = result["interfaces"]!.AsArray().Select(i => i!["name"]!.GetValue<string>()).ToList();
        Assert.Contains("eth0", names);
        Assert.Contains(names, n => n.StartsWith("bwp", StringComparison.Ordinal));
        Assert.Contains("CNI-HOSTPORT-DNAT", node.Node.Exec("iptables", "-t", "nat", "-S"), StringComparison.Ordinal);

        // The port mapping really delivers: node -> gateway:18080 -> pod:80.
        using var server = StartServer(pod, "chained-pod", 80);
        string gw = node.Subnet.Replace(".0/24", ".1", StringComparison.Ordinal);
        Assert.Equal("chained-pod", Connect(node.Node, $"{gw}:18080"));
        Assert.Equal("chained-pod", Connect(node.Node, $"{podIp}:80"));

        // portmap 1.1.1's CHECK insists on ip6tables chains it never made for an IPv4-only pod,
        // so the list turns CHECK off (disableCheck) and the invoker must then not run it at all.
        var noCheck = CniConfigList.Parse(ConfList(node, extra: ",\"disableCheck\":true"));
        nodeNs.Run(() => invoker.Check(noCheck, rt));
        // trellis-cni's own CHECK, against the chain's final (cached) result.
        var trellisOnly = CniConfigList.Parse($$$"""{"cniVersion":"1.0.0","name":"{{{node.NetworkName}}}","plugins":[{"type":"trellis-cni","bridge":"{{{node.Bridge}}}","ipam":{"ranges":[[{"subnet":"{{{node.Subnet}}}"}]],"dataDir":"{{{node.DataDir}}}"}}]}""");
        nodeNs.Run(() => invoker.Check(trellisOnly, rt));
        // ... and CHECK notices when the pod's address is gone.
        pod.Exec("ip", "addr", "flush", "dev", "eth0");
        var broken = Assert.Throws<CniClientException>(() => nodeNs.Run(() => invoker.Check(trellisOnly, rt)));
        Assert.Contains(podIp, broken.Message, StringComparison.Ordinal);

        nodeNs.Run(() => invoker.Del(list, rt));
        Assert.DoesNotContain("chain-1", node.Node.Exec("iptables", "-t", "nat", "-S"), StringComparison.Ordinal);
        Assert.Empty(node.Reserved());
        Assert.Empty(node.HostVethsSettled());
        // DEL again: everything is already gone, and that is success.
        nodeNs.Run(() => invoker.Del(list, rt));
    }

    [KernelFact]
    public void Gc_releases_attachments_the_runtime_no_longer_knows_and_disableGC_turns_it_off()
    {
        using var node = new PluginNode(subnet: "10.82.0.0/24");
        using var nodeNs = NetNs.Open(node.Node.Path);
        var invoker = new CniInvoker([Repo.BinDir, Repo.ReferencePluginDir]);
        string single = $$$"""{"cniVersion":"1.1.0","name":"{{{node.NetworkName}}}","plugins":[{"type":"trellis-cni","bridge":"{{{node.Bridge}}}","ipam":{"ranges":[[{"subnet":"{{{node.Subnet}}}"}]],"dataDir":"{{{node.DataDir}}}"}}]}""";
        var list = CniConfigList.Parse(single);
        var podA = node.NewPod();
        var podB = node.NewPod();
        nodeNs.Run(() => invoker.Add(list, new CniRuntimeConf("keep", podA.Path, "eth0")));
        nodeNs.Run(() => invoker.Add(list, new CniRuntimeConf("stale", podB.Path, "eth0")));
        Assert.Equal(2, node.Reserved().Count);

        var disabled = CniConfigList.Parse(single.Replace("\"plugins\"", "\"disableGC\":true,\"plugins\"", StringComparison.Ordinal));
        nodeNs.Run(() => invoker.Gc(disabled, [("keep", "eth0")]));
        Assert.Equal(2, node.Reserved().Count);

        nodeNs.Run(() => invoker.Gc(list, [("keep", "eth0")]));
        Assert.Single(node.Reserved());
        Assert.Single(node.HostVeths());
        Assert.Contains("eth0", podA.Exec("ip", "link"), StringComparison.Ordinal);
        Assert.DoesNotContain("eth0", podB.Exec("ip", "link"), StringComparison.Ordinal);
    }

    private static KilledOnDispose StartServer(TestNetns pod, string name, int port)
    {
        var p = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", pod.Name, Path.Combine(Repo.BinDir, "trellis"), "serve-hostname", "--name", name, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardError = true,
        })!;
        // Ready when it says so on stderr.
        string? line = p.StandardError.ReadLine();
        Assert.True(line is not null && line.Contains("serving", StringComparison.Ordinal), line);
        return new KilledOnDispose(p);
    }

    private static string Connect(TestNetns from, string target)
    {
        var (exit, o, e) = from.TryExec(Path.Combine(Repo.BinDir, "trellis"), "connect", target, "--timeout", "2s");
        Assert.True(exit == 0, $"connect {target} from {from.Name}: exit {exit} {e}");
        return o.Trim();
    }
}
