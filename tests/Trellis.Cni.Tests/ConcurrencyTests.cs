using System.Collections.Concurrent;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Cni.Tests;

[Collection("kernel")]
public sealed class ConcurrencyTests
{
    [KernelFact]
    public void Two_hundred_adds_sixteen_at_a_time_get_unique_ips_and_dels_leave_nothing()
    {
        using var node = new PluginNode(subnet: "10.78.0.0/23");
        const int Pods = 200;
        var pods = Enumerable.Range(0, Pods).Select(_ => node.NewPod()).ToArray();
        var ips = new ConcurrentDictionary<int, string>();
        var failures = new ConcurrentBag<string>();
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = 16 };

        Parallel.For(0, Pods, parallel, i =>
        {
            var exec = node.Add($"ctr-{i:D4}", pods[i]);
            if (exec.ExitCode != 0)
            {
                failures.Add($"ADD {i}: {exec.Stdout} {exec.Stderr}");
                return;
            }
            ips[i] = PluginNode.FirstIp(PluginNode.ParseResult(exec));
        });

        Assert.Empty(failures);
        Assert.Equal(Pods, ips.Values.Distinct().Count());
        Assert.Equal(Pods, node.Reserved().Count);
        Assert.Equal(Pods, node.HostVeths().Count);
        // Each pod really holds the address it was given.
        foreach (int i in new[] { 0, 99, 199 })
        {
            Assert.Contains($"inet {ips[i]}/23", pods[i].Exec("ip", "-4", "addr", "show", "eth0"), StringComparison.Ordinal);
        }

        Parallel.For(0, Pods, parallel, i =>
        {
            var exec = node.Del($"ctr-{i:D4}", pods[i]);
            if (exec.ExitCode != 0)
            {
                failures.Add($"DEL {i}: {exec.Stdout} {exec.Stderr}");
            }
        });

        Assert.Empty(failures);
        Assert.Empty(node.Reserved());
        Assert.Empty(node.HostVethsSettled());
    }
}
