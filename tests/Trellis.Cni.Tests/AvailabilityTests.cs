using Trellis.Cni.Tests.Infrastructure;
using Trellis.Core.Cni;

namespace Trellis.Cni.Tests;

/// <summary>The two "come back later" answers: 11 when the node's IPAM is locked too long, 51 when existing pods are cut off.</summary>
[Collection("kernel")]
public sealed class AvailabilityTests
{
    [KernelFact]
    public void A_held_ipam_lock_gets_try_again_later_and_nothing_is_made()
    {
        using var node = new PluginNode(subnet: "10.83.0.0/24");
        var pod = node.NewPod();
        Directory.CreateDirectory(node.StoreDir);
        // .NET takes flock(LOCK_EX) for FileShare.None: the same lock the plugin waits for.
        using (var held = new FileStream(Path.Combine(node.StoreDir, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var env = PluginNode.Env("locked-1", pod.Path, "eth0");
            env["TRELLIS_CNI_LOCK_TIMEOUT_MS"] = "300";
            var exec = node.Exec("ADD", node.Config(), env);
            Assert.Equal(1, exec.ExitCode);
            Assert.True(CniError.TryParse(exec.Stdout, out var error, out var why), why);
            Assert.Equal(CniErrorCode.TryAgainLater, error!.Code);
            Assert.StartsWith("ipam.dataDir:", error.Msg, StringComparison.Ordinal);
            Assert.Empty(node.Reserved());
            Assert.Empty(node.HostVeths());
        }
        // Lock released: the retry the runtime makes succeeds.
        Assert.Equal(0, node.Add("locked-1", pod).ExitCode);
        Assert.Single(node.Reserved());
    }

    [KernelFact]
    public void Status_is_51_when_the_bridge_is_down_or_forwarding_is_off_and_0_when_repaired()
    {
        using var node = new PluginNode(subnet: "10.84.0.0/24");
        var pod = node.NewPod();
        Assert.Equal(0, node.Add("status-1", pod).ExitCode);
        Assert.Equal(0, Status(node).ExitCode);

        node.Node.Exec("ip", "link", "set", node.Bridge, "down");
        var down = Status(node);
        Assert.True(CniError.TryParse(down.Stdout, out var e1, out var why1), why1);
        Assert.Equal((CniErrorCode.LimitedConnectivity, true), (e1!.Code, e1.Msg.StartsWith("bridge:", StringComparison.Ordinal)));
        node.Node.Exec("ip", "link", "set", node.Bridge, "up");

        node.Node.Exec("sysctl", "-qw", "net.ipv4.ip_forward=0");
        var noForward = Status(node);
        Assert.True(CniError.TryParse(noForward.Stdout, out var e2, out var why2), why2);
        Assert.Equal((CniErrorCode.LimitedConnectivity, true), (e2!.Code, e2.Msg.StartsWith("isGateway:", StringComparison.Ordinal)));
        node.Node.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1");

        Assert.Equal(0, Status(node).ExitCode);
    }

    private static Trellis.CniClient.PluginExecution Status(PluginNode node) =>
        node.Exec("STATUS", node.Config(), PluginNode.Env(null, null, null));
}
