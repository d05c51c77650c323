using System.Diagnostics;
using System.Text.Json.Nodes;
using Trellis.CniClient;
using Trellis.Netlink;

namespace Trellis.Cli.Demo;

/// <summary>
/// `trellis demo`: the plugin end to end before the lab exists. A throwaway node namespace, two
/// pod namespaces wired by trellis-cni exactly as a runtime calls it (conflist, CNI env, exec'd
/// from inside the node's netns), real TCP and UDP between them, then DEL, GC and removal of
/// every namespace and file it made.
/// </summary>
internal static class CniDemo
{
    private const string NodeNs = "trl-demo-node";
    private static readonly string[] s_pods = ["pod-a", "pod-b"];

    public static async Task<int> RunAsync(TextWriter o, CancellationToken ct)
    {
        string bin = Path.GetDirectoryName(Environment.ProcessPath)!;
        string self = Environment.ProcessPath!;
        if (!File.Exists(Path.Combine(bin, "trellis-cni")))
        {
            await Console.Error.WriteLineAsync($"demo: trellis-cni not found next to {self}; run ./trellis demo from the repository").ConfigureAwait(false);
            return 1;
        }
        if (!Environment.IsPrivilegedProcess)
        {
            await Console.Error.WriteLineAsync("demo: needs root to create network namespaces (sudo ./trellis demo)").ConfigureAwait(false);
            return 1;
        }
        string work = Directory.CreateTempSubdirectory("trellis-demo-").FullName;
        var servers = new List<Process>();
        Cleanup(); // a demo killed half-way leaves its namespaces behind; they are ours by name
        try
        {
            Ip("netns", "add", NodeNs);
            foreach (var pod in s_pods)
            {
                Ip("netns", "add", PodNs(pod));
                // A runtime brings up the pod's loopback (containerd runs the loopback plugin):
                // without it a pod cannot even reach its own address.
                using var podNs = NetNs.Open("/var/run/netns/" + PodNs(pod));
                using var nl = RtNetlink.OpenIn(podNs);
                nl.LinkSetUp(nl.LinkGetByName("lo")!.Index);
            }
            string conflist = $$$"""
                {"cniVersion":"1.1.0","name":"demo","plugins":[{"type":"trellis-cni","bridge":"trellis0","isGateway":true,"mtu":1500,"hairpinMode":true,
                 "ipam":{"ranges":[[{"subnet":"10.244.1.0/24","gateway":"10.244.1.1"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"{{{work}}}/ipam"}}]}
                """;
            var list = CniConfigList.Parse(conflist);
            var invoker = new CniInvoker([bin], Path.Combine(work, "cache"));
            var timings = new List<PluginExecution>();
            invoker.OnExec = timings.Add;
            using var node = NetNs.Open("/var/run/netns/" + NodeNs);

            await o.WriteLineAsync($"Trellis demo: node netns {NodeNs}, bridge trellis0 (10.244.1.1/24), pods wired by trellis-cni").ConfigureAwait(false);
            var ips = new Dictionary<string, string>();
            foreach (var pod in s_pods)
            {
                var rt = new CniRuntimeConf("demo-" + pod, "/var/run/netns/" + PodNs(pod), "eth0")
                {
                    Args = [new("K8S_POD_NAMESPACE", "demo"), new("K8S_POD_NAME", pod)],
                };
                var result = node.Run(() => invoker.Add(list, rt));
                ips[pod] = result["ips"]![0]!["address"]!.GetValue<string>();
                string hostVeth = result["interfaces"]![1]!["name"]!.GetValue<string>();
                await o.WriteLineAsync($"  ADD   {pod}: eth0 {ips[pod],-16} host veth {hostVeth}  ({timings[^1].Elapsed.TotalMilliseconds:0.0} ms)").ConfigureAwait(false);
                servers.Add(StartServer(self, pod));
            }

            bool allOk = true;
            foreach (var (from, to) in new[] { ("pod-b", "pod-a"), ("pod-a", "pod-b"), ("pod-a", "pod-a") })
            {
                foreach (var proto in new[] { "tcp", "udp" })
                {
                    string ip = ips[to].Split('/')[0];
                    var (exit, answer) = Connect(self, PodNs(from), $"{ip}:8080", proto);
                    allOk &= exit == 0 && answer == to;
                    await o.WriteLineAsync($"  {from} -> {to} {ip}:8080/{proto}: {(exit == 0 ? $"answered \"{answer}\"" : $"FAILED (exit {exit})")}").ConfigureAwait(false);
                }
            }
            var (nodeExit, nodeAnswer) = Connect(self, NodeNs, $"{ips["pod-a"].Split('/')[0]}:8080", "tcp");
            allOk &= nodeExit == 0;
            await o.WriteLineAsync($"  node  -> pod-a: {(nodeExit == 0 ? $"answered \"{nodeAnswer}\"" : "FAILED")}").ConfigureAwait(false);

            foreach (var pod in s_pods)
            {
                var rt = new CniRuntimeConf("demo-" + pod, "/var/run/netns/" + PodNs(pod), "eth0");
                node.Run(() => invoker.Check(list, rt));
                node.Run(() => invoker.Del(list, rt));
                await o.WriteLineAsync($"  CHECK ok, DEL {pod} ({timings[^1].Elapsed.TotalMilliseconds:0.0} ms)").ConfigureAwait(false);
            }
            node.Run(() => invoker.Gc(list, []));
            int left = Directory.Exists(Path.Combine(work, "ipam", "demo"))
                ? Directory.EnumerateFiles(Path.Combine(work, "ipam", "demo")).Count(f => System.Net.IPAddress.TryParse(Path.GetFileName(f), out _))
                : 0;
            await o.WriteLineAsync($"  GC: {left} addresses still reserved").ConfigureAwait(false);
            await o.WriteLineAsync(allOk ? "demo: every pair connected" : "demo: some pairs did not connect").ConfigureAwait(false);
            return allOk && left == 0 ? 0 : 1;
        }
        catch (CniClientException e)
        {
            await Console.Error.WriteLineAsync($"demo: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        finally
        {
            foreach (var s in servers)
            {
                if (!s.HasExited)
                {
                    s.Kill();
                    await s.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                }
                s.Dispose();
            }
            Cleanup();
            Directory.Delete(work, recursive: true);
        }
    }

    private static string PodNs(string pod) => "trl-demo-" + pod;

    private static Process StartServer(string self, string pod)
    {
        var p = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", PodNs(pod), self, "serve-hostname", "--name", pod, "--port", "8080/tcp", "8080/udp"])
        {
            RedirectStandardError = true,
        })!;
        p.StandardError.ReadLine(); // "serving …" once both listeners are bound
        return p;
    }

    private static (int Exit, string Answer) Connect(string self, string ns, string target, string proto)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", ns, self, "connect", target, "--protocol", proto, "--timeout", "1s"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        string answer = p.StandardOutput.ReadToEnd().Trim();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, answer);
    }

    private static void Cleanup()
    {
        foreach (var ns in s_pods.Select(PodNs).Append(NodeNs))
        {
            if (File.Exists("/var/run/netns/" + ns))
            {
                Ip("netns", "del", ns);
            }
        }
    }

    private static void Ip(params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new CniClientException($"ip {string.Join(' ', args)}: {err.Trim()}");
        }
    }
}
