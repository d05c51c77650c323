using System.Net;
using System.Net.Sockets;
using Trellis.Model;
using Trellis.Netlink.Tests.Support;

namespace Trellis.Netlink.Tests.Kernel;

public sealed class NeighKernelTests
{
    [KernelFact]
    public void Neighbour_replace_list_delete()
    {
        using var t = new TestNetns();
        var veth = t.Nl.LinkAddVeth("trl-n0", "trl-n1");
        t.Nl.LinkSetUp(veth.Index);
        var mac = Mac.Parse("02:00:00:00:00:aa");
        var v4 = new Neigh(veth.Index, IPAddress.Parse("10.0.0.2"), mac);
        var v6 = new Neigh(veth.Index, IPAddress.Parse("fd00::2"), mac);
        t.Nl.NeighReplace(v4);
        t.Nl.NeighReplace(v6);

        var listed = Assert.Single(t.Nl.NeighList(veth.Index, AddressFamily.InterNetwork), n => n.Ip!.Equals(v4.Ip));
        Assert.Equal(mac, listed.Mac);
        Assert.Equal(NeighState.Permanent, listed.State);
        Assert.Contains(t.Nl.NeighList(veth.Index), n => n.Ip!.Equals(v6.Ip));
        Assert.DoesNotContain(t.Nl.NeighList(veth.Index, AddressFamily.InterNetworkV6), n => n.Ip!.Equals(v4.Ip));
        var json = Cmd.IpJson(t.Name, "neigh", "show", "dev", "trl-n0", "10.0.0.2")[0];
        Assert.Equal("02:00:00:00:00:aa", json.GetProperty("lladdr").GetString());
        Assert.Equal("PERMANENT", json.GetProperty("state")[0].GetString());

        var newMac = Mac.Parse("02:00:00:00:00:bb");
        t.Nl.NeighReplace(v4 with { Mac = newMac });
        Assert.Equal(newMac, Assert.Single(t.Nl.NeighList(veth.Index, AddressFamily.InterNetwork), n => n.Ip!.Equals(v4.Ip)).Mac);

        t.Nl.NeighDel(v4);
        t.Nl.NeighDel(v6);
        Assert.DoesNotContain(t.Nl.NeighList(veth.Index), n => n.State == NeighState.Permanent);
        Assert.True(Assert.Throws<NetlinkException>(() => t.Nl.NeighDel(v4)).IsNotFound);
    }

    [KernelFact]
    public void Vxlan_fdb_replace_append_list_delete()
    {
        using var t = new TestNetns();
        var underlay = t.Nl.LinkAddVeth("trl-u0", "trl-u1");
        t.Nl.AddrAdd(underlay.Index, IPCidr.Parse("10.0.0.1/24"));
        var vx = t.Nl.LinkAddVxlan("trl-vx0", new VxlanOptions { Vni = 42, Local = IPAddress.Parse("10.0.0.1"), DeviceIndex = underlay.Index, Learning = false });
        t.Nl.LinkSetUp(vx.Index);

        var mac = Mac.Parse("02:00:00:00:03:01");
        t.Nl.FdbReplace(new Fdb(vx.Index, mac, IPAddress.Parse("10.0.0.2")));
        var entry = Assert.Single(t.Nl.FdbList(vx.Index), f => f.Mac.AsSpan().SequenceEqual(mac));
        Assert.Equal(IPAddress.Parse("10.0.0.2"), entry.Destination);
        Assert.True(entry.Self);
        Assert.Equal(NeighState.Permanent, entry.State);
        Assert.Null(entry.Vni);
        var json = Cmd.IpJson(t.Name, "link", "show", "dev", "trl-vx0"); // the device exists for ip too
        Assert.Equal(1, json.GetArrayLength());
        var bridgeJson = System.Text.Json.JsonDocument.Parse(Cmd.Check("bridge", "-n", t.Name, "-j", "fdb", "show", "dev", "trl-vx0")).RootElement;
        Assert.Contains(bridgeJson.EnumerateArray(), e => e.GetProperty("mac").GetString() == "02:00:00:00:03:01" && e.GetProperty("dst").GetString() == "10.0.0.2");

        // replace moves the MAC to another VTEP, with its own VNI
        t.Nl.FdbReplace(new Fdb(vx.Index, mac, IPAddress.Parse("10.0.0.3"), Vni: 43));
        entry = Assert.Single(t.Nl.FdbList(vx.Index), f => f.Mac.AsSpan().SequenceEqual(mac));
        Assert.Equal(IPAddress.Parse("10.0.0.3"), entry.Destination);
        Assert.Equal(43, entry.Vni);

        // all-zeros MAC: flood list with several remotes
        var zero = new byte[6];
        t.Nl.FdbAppend(new Fdb(vx.Index, zero, IPAddress.Parse("10.0.0.8")));
        t.Nl.FdbAppend(new Fdb(vx.Index, zero, IPAddress.Parse("10.0.0.9")));
        Assert.Equal(2, t.Nl.FdbList(vx.Index).Count(f => f.Mac.AsSpan().SequenceEqual(zero)));
        t.Nl.FdbDel(new Fdb(vx.Index, zero, IPAddress.Parse("10.0.0.8")));
        Assert.Equal(IPAddress.Parse("10.0.0.9"), Assert.Single(t.Nl.FdbList(vx.Index), f => f.Mac.AsSpan().SequenceEqual(zero)).Destination);

        t.Nl.FdbDel(entry);
        Assert.DoesNotContain(t.Nl.FdbList(vx.Index), f => f.Mac.AsSpan().SequenceEqual(mac));
        Assert.True(Assert.Throws<NetlinkException>(() => t.Nl.FdbDel(entry)).IsNotFound);
    }

    [KernelFact]
    public void Bridge_master_fdb_entry()
    {
        using var t = new TestNetns();
        var bridge = t.Nl.LinkAddBridge("trl-br0");
        var port = t.Nl.LinkAddVeth("trl-p0", "trl-p1");
        t.Nl.LinkSetMaster(port.Index, bridge.Index);
        var mac = Mac.Parse("02:00:00:00:04:01");
        t.Nl.FdbReplace(new Fdb(port.Index, mac, Self: false, Master: true, State: NeighState.NoArp));
        var entry = Assert.Single(t.Nl.FdbList(port.Index), f => f.Mac.AsSpan().SequenceEqual(mac));
        Assert.True(entry.Master);
        Assert.False(entry.Self);
        Assert.Equal(bridge.Index, entry.MasterIndex);
        Assert.Contains("02:00:00:00:04:01 master trl-br0 static", Cmd.Check("bridge", "-n", t.Name, "fdb", "show", "dev", "trl-p0"), StringComparison.Ordinal);
        t.Nl.FdbDel(entry);
        Assert.DoesNotContain(t.Nl.FdbList(port.Index), f => f.Mac.AsSpan().SequenceEqual(mac));
    }
}
