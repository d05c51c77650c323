using Trellis.Netlink.Tests.Support;

namespace Trellis.Netlink.Tests.Kernel;

/// <summary>Kernel errors arrive as typed exceptions naming the operation, the object and the errno.</summary>
public sealed class ErrorKernelTests
{
    [KernelFact]
    public void Adding_an_existing_link_is_exists()
    {
        using var t = new TestNetns();
        t.Nl.LinkAddVeth("trl1234", "trl1234p");
        var error = Assert.Throws<NetlinkException>(() => t.Nl.LinkAddVeth("trl1234", "eth0"));
        Assert.True(error.IsExists);
        Assert.False(error.IsNotFound);
        Assert.Equal(17, error.Errno);
        Assert.Equal("RTM_NEWLINK", error.Operation);
        Assert.Equal("veth 'trl1234' (peer 'eth0')", error.Target);
        Assert.Equal("RTM_NEWLINK veth 'trl1234' (peer 'eth0'): File exists (EEXIST)", error.Message);
        Assert.Null(t.Nl.LinkGetByName("eth0")); // nothing half-created

        var bridge = Assert.Throws<NetlinkException>(() => t.Nl.LinkAddBridge("trl1234"));
        Assert.True(bridge.IsExists);
        Assert.StartsWith("RTM_NEWLINK bridge 'trl1234': ", bridge.Message, StringComparison.Ordinal);
    }

    [KernelFact]
    public void Operations_on_a_missing_link_are_not_found()
    {
        using var t = new TestNetns();
        var delete = Assert.Throws<NetlinkException>(() => t.Nl.LinkDel(4242));
        Assert.True(delete.IsNotFound);
        Assert.Equal("RTM_DELLINK link 4242: No such device (ENODEV)", delete.Message);

        var mtu = Assert.Throws<NetlinkException>(() => t.Nl.LinkSetMtu(4242, 1400));
        Assert.True(mtu.IsNotFound);
        Assert.Equal("RTM_SETLINK link 4242 (set mtu): No such device (ENODEV)", mtu.Message);

        Assert.True(Assert.Throws<NetlinkException>(() => t.Nl.LinkSetUp(4242)).IsNotFound);
        Assert.True(Assert.Throws<NetlinkException>(() => t.Nl.LinkSetBridgePortHairpin(4242, true)).IsNotFound);
        Assert.Null(t.Nl.LinkGetByIndex(4242));
        Assert.Null(t.Nl.LinkGetByName("trl-nope"));
        Assert.False(t.Nl.LinkDelByName("trl-nope"));
    }

    [KernelFact]
    public void Kernel_extended_ack_text_is_part_of_the_message()
    {
        using var t = new TestNetns();
        var veth = t.Nl.LinkAddVeth("trl-e0", "trl-e1");
        var error = Assert.Throws<NetlinkException>(() => t.Nl.LinkSetMtu(veth.Index, 10));
        Assert.Equal("EINVAL", error.ErrnoName);
        Assert.Equal("RTM_SETLINK", error.Operation);
        Assert.NotNull(error.KernelMessage);
        Assert.EndsWith(": " + error.KernelMessage, error.Message, StringComparison.Ordinal);
    }
}
