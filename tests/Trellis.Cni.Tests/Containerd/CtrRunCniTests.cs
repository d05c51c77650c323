using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Trellis.Cni.Tests.Containerd;

/// <summary>
/// A real CNI client: containerd 1.6's <c>ctr run --cni</c> loads our conflist with libcni (via
/// go-cni), chains loopback + the main plugin + portmap, and runs two busybox containers. Run once
/// with the reference plugins (proves the harness) and once with trellis-cni.
/// </summary>
[Collection(ContainerdCollectionDefinition.Name)]
[SupportedOSPlatform("linux")]
public sealed partial class CtrRunCniTests(ContainerdFixture containerd, ITestOutputHelper output)
{
    private const string Network = "ctrnet";
    private const string Bridge = "trlbr0";
    private const string Gateway = "10.88.7.1";
    private const int Port = 8080;
    private static readonly IPNetwork s_subnet = IPNetwork.Parse("10.88.7.0/24");

    [ContainerdFact]
    public Task Reference_bridge_and_host_local_network_ctr_containers() =>
        TwoContainersTalkAndReleaseTheirIpsAsync(
            "ref",
            ipamDir => $$$"""
                {"type":"bridge","bridge":"{{{Bridge}}}","isGateway":true,
                 "ipam":{"type":"host-local","ranges":[[{"subnet":"{{{s_subnet}}}"}]],"dataDir":"{{{ipamDir}}}"}}
                """);

    [ContainerdFact(RequiresTrellisCni = true)]
    public Task Trellis_cni_networks_ctr_containers() =>
        TwoContainersTalkAndReleaseTheirIpsAsync(
            "trl",
            ipamDir => $$$"""
                {"type":"trellis-cni","bridge":"{{{Bridge}}}","isGateway":true,"mtu":1500,"hairpinMode":true,
                 "ipam":{"ranges":[[{"subnet":"{{{s_subnet}}}"}]],"dataDir":"{{{ipamDir}}}"}}
                """);

    /// <param name="label">prefix of container ids, so a variant's leftovers can't collide with the next</param>
    /// <param name="mainPlugin">the main plugin's JSON, given the IPAM data dir</param>
    private async Task TwoContainersTalkAndReleaseTheirIpsAsync(string label, Func<string, string> mainPlugin)
    {
        var sw = Stopwatch.StartNew();
        string ipamDir = containerd.CreateScratchDir($"ipam-{label}");
        string networkDir = Path.Combine(ipamDir, Network);

        // Bridge plugins keep the bridge on DEL; start each variant without one.
        await containerd.IpAsync("link", "delete", Bridge);
        Assert.False(await HostHasLinkAsync(Bridge), $"host netns already has a link named {Bridge}");

        // containernetworking-plugins 1.1.1 (Debian 12) speak CNI ≤ 1.0.0.
        containerd.WriteConflist($$$"""
            {"cniVersion":"1.0.0","name":"{{{Network}}}","plugins":[
              {{{mainPlugin(ipamDir)}}},
              {"type":"portmap","capabilities":{"portMappings":true}}]}
            """);

        CtrContainer? a = null, b = null;
        try
        {
            // Concurrently, as a kubelet starts pods: two ADDs race for the IPAM store.
            Task<CtrContainer> startA = containerd.StartContainerAsync($"{label}-a", "httpd", "-f", "-p", $"{Port}", "-h", "/www");
            Task<CtrContainer> startB = containerd.StartContainerAsync($"{label}-b", "sleep", "3600");
            try
            {
                await Task.WhenAll(startA, startB);
            }
            finally
            {
                // If one start failed, still stop the other below.
                a = startA.IsCompletedSuccessfully ? startA.Result : null;
                b = startB.IsCompletedSuccessfully ? startB.Result : null;
            }

            (a, b) = (startA.Result, startB.Result);
            Log(sw, $"both containers running (containerd {containerd.Name} started in {containerd.StartupTime.TotalMilliseconds:F0} ms)");

            IPAddress ipA = await ContainerIPv4Async(a);
            IPAddress ipB = await ContainerIPv4Async(b);
            Log(sw, $"{a.Id}={ipA} {b.Id}={ipB}");
            Assert.NotEqual(ipA, ipB);
            foreach (IPAddress ip in new[] { ipA, ipB })
            {
                Assert.True(s_subnet.Contains(ip), $"{ip} outside {s_subnet}");
                Assert.NotEqual(s_subnet.BaseAddress, ip);
                Assert.NotEqual(IPAddress.Parse(Gateway), ip);
                Assert.NotEqual(IPAddress.Parse("10.88.7.255"), ip);
            }

            // host-local layout: <dataDir>/<network>/<ip> holding "<CNI_CONTAINERID>\r\n<ifname>".
            foreach (var (c, ip) in new[] { (a, ipA), (b, ipB) })
            {
                string file = Path.Combine(networkDir, ip.ToString());
                Assert.True(File.Exists(file), $"no IPAM reservation {file}; {networkDir} holds: {ListDir(networkDir)}");
                Assert.Equal(c.CniContainerId, File.ReadAllText(file).Split('\n')[0].Trim());
            }

            // The bridge is the gateway, in the throwaway netns, not in the host's.
            CommandResult bridge = await containerd.IpAsync("-4", "-o", "addr", "show", "dev", Bridge);
            Assert.True(bridge.Succeeded, bridge.ToString());
            Assert.Contains($"{Gateway}/24", bridge.StdOut, StringComparison.Ordinal);
            Assert.False(await HostHasLinkAsync(Bridge), $"{Bridge} appeared in the host netns");

            foreach (CtrContainer c in new[] { a, b })
            {
                string routes = Expect(await containerd.ExecAsync(c.Id, "ip", "-4", "route", "show"));
                Assert.Contains($"{s_subnet} dev eth0", routes, StringComparison.Ordinal);
                string link = Expect(await containerd.ExecAsync(c.Id, "ip", "-o", "link", "show", "dev", "eth0"));
                Assert.Contains("mtu 1500", link, StringComparison.Ordinal);
            }

            string response = await HttpGetAsync(from: b, ipA);
            Assert.Contains(BusyboxOciImage.IndexHtml.Trim(), response, StringComparison.Ordinal);
            Log(sw, $"{b.Id} fetched http://{ipA}:{Port}/ from {a.Id}");

            // ctr 1.6 runs CNI DEL (with an empty CNI_NETNS) when the task of a foreground `ctr run` exits.
            int[] exits = await Task.WhenAll(containerd.StopContainerAsync(a), containerd.StopContainerAsync(b));
            foreach (var (c, exit) in new[] { (a, exits[0]), (b, exits[1]) })
            {
                Assert.True(exit == 137, $"`ctr run {c.Id}` exited {exit}, expected 137 (SIGKILL):\n{c.Output}");
                Assert.DoesNotContain("network review", c.Output, StringComparison.Ordinal); // ctr's CNI DEL error log
            }

            Log(sw, "both stopped");
            foreach (IPAddress ip in new[] { ipA, ipB })
            {
                Assert.False(File.Exists(Path.Combine(networkDir, ip.ToString())), $"{ip} not released; {networkDir} holds: {ListDir(networkDir)}");
            }

            Assert.DoesNotContain(
                Directory.EnumerateFiles(networkDir).Select(Path.GetFileName),
                n => IPAddress.TryParse(n, out _));

            string containers = await containerd.CtrAsync("container", "ls", "-q");
            Assert.DoesNotContain(a.Id, containers, StringComparison.Ordinal);
            Assert.DoesNotContain(b.Id, containers, StringComparison.Ordinal);

            // The veths die with the containers' netns (the kernel tears those down asynchronously).
            string veths = "";
            for (var wait = Stopwatch.StartNew(); wait.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(100))
            {
                veths = Expect(await containerd.IpAsync("-o", "link", "show", "type", "veth"));
                if (veths.Length == 0)
                {
                    break;
                }
            }

            Assert.True(veths.Length == 0, $"veths left in {containerd.Name}: {veths}");
            Log(sw, "IPs released, containers and veths gone");
        }
        finally
        {
            foreach (CtrContainer? c in new[] { a, b })
            {
                if (c is not null && !c.Process.HasExited)
                {
                    await containerd.StopContainerAsync(c);
                }
            }

            output.WriteLine($"--- ctr run output ---\n{a?.Output}{b?.Output}");
        }
    }

    private async Task<IPAddress> ContainerIPv4Async(CtrContainer c)
    {
        string addr = Expect(await containerd.ExecAsync(c.Id, "ip", "-4", "-o", "addr", "show", "dev", "eth0"));
        Match m = InetRegex().Match(addr);
        Assert.True(m.Success, $"no IPv4 on eth0 of {c.Id}: {addr}");
        Assert.Equal("24", m.Groups[2].Value);
        return IPAddress.Parse(m.Groups[1].Value);
    }

    /// <summary>A TCP connection from one container to the other (busybox wget crashes in an
    /// NSS-less static rootfs, so speak HTTP/1.0 through nc). Retried while httpd comes up.</summary>
    private async Task<string> HttpGetAsync(CtrContainer from, IPAddress to)
    {
        CommandResult last = null!;
        for (var wait = Stopwatch.StartNew(); wait.Elapsed < TimeSpan.FromSeconds(10); await Task.Delay(200))
        {
            last = await containerd.ExecAsync(from.Id, "sh", "-c", $"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {to} {Port}");
            if (last.Succeeded && last.StdOut.Contains("200 OK", StringComparison.Ordinal))
            {
                return last.StdOut;
            }
        }

        Assert.Fail($"{from.Id} could not fetch http://{to}:{Port}/: {last}");
        return "";
    }

    private static async Task<bool> HostHasLinkAsync(string name) =>
        (await HostCommand.RunAsync(HostCommand.Which("ip") ?? "ip", ["-o", "link", "show", "dev", name])).Succeeded;

    private string Expect(CommandResult r) =>
        r.Succeeded ? r.StdOut.Trim() : throw new InvalidOperationException(r + containerd.ContainerdLogTail());

    private static string ListDir(string dir) =>
        Directory.Exists(dir) ? string.Join(", ", Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName)) : "(missing)";

    private void Log(Stopwatch sw, string message) => output.WriteLine($"[{sw.Elapsed.TotalSeconds,6:F2}s] {message}");

    [GeneratedRegex(@"inet (\d+\.\d+\.\d+\.\d+)/(\d+)")]
    private static partial Regex InetRegex();
}
