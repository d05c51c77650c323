using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;
using Trellis.Netlink;

namespace Trellis.Cni.Tests;

[Collection("kernel")]
public sealed class CrashSafetyTests
{
    /// <summary>
    /// SIGKILL at random instants of ADD, 100 times. Whatever survives a kill must be collectable:
    /// after GC with the successful attachments as the valid ones, the store holds exactly their
    /// addresses, the node exactly their veths, and no address was ever handed out twice.
    /// </summary>
    [KernelFact]
    public void Killed_adds_leak_nothing_after_gc_and_never_share_an_ip()
    {
        using var node = new PluginNode(subnet: "10.79.0.0/24");
        using var nodeNs = NetNs.Open(node.Node.Path);
        var rng = new Random(20261126);
        var succeeded = new Dictionary<string, (TestNetns Pod, string Ip)>();
        int killed = 0;

        for (int i = 0; i < 100; i++)
        {
            string cid = $"crash-{i:D3}";
            var pod = node.NewPod();
            // Spread the kills across the whole ADD (~1-5 ms), including before and after.
            int delayUs = rng.Next(0, 6000);
            var (exit, stdout) = nodeNs.Run(() => AddAndMaybeKill(node, cid, pod, delayUs));
            if (exit == 0)
            {
                succeeded[cid] = (pod, PluginNode.FirstIp((JsonObject)JsonNode.Parse(stdout)!));
            }
            else
            {
                killed++;
            }
        }

        Assert.True(killed >= 20, $"only {killed} of 100 ADDs were killed: the test did not exercise crashes");
        Assert.Equal(succeeded.Count, succeeded.Values.Select(v => v.Ip).Distinct().Count());

        // GC with the live attachments (as a runtime would after a restart).
        var valid = new JsonArray(succeeded.Keys.Select(cid => (JsonNode)new JsonObject { ["containerID"] = cid, ["ifname"] = "eth0" }).ToArray());
        var gcConf = JsonNode.Parse(node.Config())!.AsObject();
        gcConf["cni.dev/valid-attachments"] = valid;
        var gc = node.Exec("GC", gcConf.ToJsonString(), PluginNode.Env(null, null, null));
        Assert.True(gc.ExitCode == 0, gc.Stdout + gc.Stderr);

        Assert.Equal(succeeded.Values.Select(v => v.Ip).Order(), node.Reserved().Order());
        Assert.Equal(succeeded.Count, node.HostVeths().Count);
        foreach (var (cid, (pod, ip)) in succeeded)
        {
            Assert.Contains($"inet {ip}/24", pod.Exec("ip", "-4", "addr", "show", "eth0"), StringComparison.Ordinal);
        }

        // The survivors still come apart cleanly.
        foreach (var (cid, (pod, _)) in succeeded)
        {
            var del = node.Del(cid, pod);
            Assert.True(del.ExitCode == 0, del.Stdout + del.Stderr);
        }
        Assert.Empty(node.Reserved());
        Assert.Empty(node.HostVethsSettled());
    }

    private static (int Exit, string Stdout) AddAndMaybeKill(PluginNode node, string cid, TestNetns pod, int delayUs)
    {
        var psi = new ProcessStartInfo(Repo.CniPlugin) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["CNI_COMMAND"] = "ADD";
        psi.Environment["CNI_CONTAINERID"] = cid;
        psi.Environment["CNI_NETNS"] = pod.Path;
        psi.Environment["CNI_IFNAME"] = "eth0";
        psi.Environment["CNI_PATH"] = Repo.BinDir;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        p.StandardInput.BaseStream.Write(Encoding.UTF8.GetBytes(node.Config()));
        p.StandardInput.Close();
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalMicroseconds < delayUs && !p.HasExited)
        {
            Thread.SpinWait(50);
        }
        if (!p.HasExited)
        {
            p.Kill(); // SIGKILL on Unix
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result);
    }
}
