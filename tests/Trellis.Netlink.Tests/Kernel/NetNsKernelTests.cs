using System.Globalization;
using Trellis.Netlink.Tests.Support;

namespace Trellis.Netlink.Tests.Kernel;

public sealed class NetNsKernelTests
{
    [KernelFact]
    public void Identity_tells_namespaces_apart_and_matches_stat()
    {
        using var t = new TestNetns();
        using var again = NetNs.Open(t.Path);
        using var current = NetNs.Current();
        Assert.Equal(t.Ns.Identity(), again.Identity());
        Assert.NotEqual(t.Ns.Identity(), current.Identity());

        var parts = Cmd.Check("stat", "-L", "-c", "%d %i", t.Path).Trim().Split(' ');
        Assert.Equal((ulong.Parse(parts[0], CultureInfo.InvariantCulture), ulong.Parse(parts[1], CultureInfo.InvariantCulture)), t.Ns.Identity());
    }

    [KernelFact]
    public void Run_executes_inside_the_namespace_and_leaves_the_caller_alone()
    {
        using var t = new TestNetns();
        using var before = NetNs.Current();
        var inside = t.Ns.Run(() =>
        {
            using var here = NetNs.Current();
            return here.Identity();
        });
        Assert.Equal(t.Ns.Identity(), inside);
        using var after = NetNs.Current();
        Assert.Equal(before.Identity(), after.Identity());

        var error = Assert.Throws<InvalidOperationException>(() => t.Ns.Run(() => throw new InvalidOperationException("from inside")));
        Assert.Equal("from inside", error.Message);

        int ran = 0;
        t.Ns.Run(() => ran++);
        Assert.Equal(1, ran);
    }

    [KernelFact]
    public void Handle_opened_in_a_namespace_works_from_other_threads()
    {
        using var t = new TestNetns();
        t.Ip("link", "add", "trl-only-here", "type", "bridge");
        var seen = Task.Run(() => t.Nl.LinkGetByName("trl-only-here")).GetAwaiter().GetResult();
        Assert.NotNull(seen);
        using var host = RtNetlink.Open();
        Assert.Null(host.LinkGetByName("trl-only-here")); // read-only look at the host namespace
    }

    [KernelFact]
    public void Missing_namespace_is_a_not_found_error_naming_the_path()
    {
        var error = Assert.Throws<NetlinkException>(() => NetNs.Open("/var/run/netns/trl-nltest-missing"));
        Assert.True(error.IsNotFound);
        Assert.Equal("open netns '/var/run/netns/trl-nltest-missing': No such file or directory (ENOENT)", error.Message);
    }

    [KernelFact]
    public void A_file_that_is_not_a_namespace_fails_at_setns()
    {
        string path = Path.GetTempFileName();
        try
        {
            using var ns = NetNs.Open(path);
            var error = Assert.Throws<NetlinkException>(() => RtNetlink.OpenIn(ns));
            Assert.Equal("EINVAL", error.ErrnoName);
            Assert.StartsWith("setns netns '" + path + "'", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [KernelFact]
    public void Disposed_handles_refuse_work()
    {
        using var t = new TestNetns();
        var ns = NetNs.Open(t.Path);
        ns.Dispose();
        Assert.Throws<ObjectDisposedException>(() => ns.Run(() => 1));
        var nl = RtNetlink.OpenIn(t.Ns);
        nl.Dispose();
        Assert.Throws<ObjectDisposedException>(() => nl.LinkList());
    }
}
