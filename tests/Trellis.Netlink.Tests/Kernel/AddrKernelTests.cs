using System.Net;
using System.Net.Sockets;
using Trellis.Model;
using Trellis.Netlink.Tests.Support;

namespace Trellis.Netlink.Tests.Kernel;

public sealed class AddrKernelTests
{
    [KernelFact]
    public void Ipv4_add_list_replace_delete()
    {
        using var t = new TestNetns();
        var veth = t.Nl.LinkAddVeth("trl-a0", "trl-a1");
        var cidr = IPCidr.Parse("10.244.1.5/24");

        t.Nl.AddrAdd(veth.Index, cidr);
        var address = Assert.Single(t.Nl.AddrList(veth.Index));
        Assert.Equal(cidr, address.Cidr);
        Assert.Equal(veth.Index, address.Index);
        Assert.Equal(RouteScope.Universe, address.Scope);
        Assert.Equal("trl-a0", address.Label);
        Assert.Equal(IPAddress.Parse("10.244.1.255"), address.Broadcast); // computed
        var json = Cmd.IpJson(t.Name, "-4", "addr", "show", "dev", "trl-a0")[0].GetProperty("addr_info")[0];
        Assert.Equal("10.244.1.5", json.GetProperty("local").GetString());
        Assert.Equal(24, json.GetProperty("prefixlen").GetInt32());
        Assert.Equal("10.244.1.255", json.GetProperty("broadcast").GetString());

        var again = Assert.Throws<NetlinkException>(() => t.Nl.AddrAdd(veth.Index, cidr));
        Assert.True(again.IsExists);
        Assert.Contains("RTM_NEWADDR address 10.244.1.5/24 on link " + veth.Index, again.Message, StringComparison.Ordinal);

        // Replace is idempotent where add is not, and creates when absent.
        t.Nl.AddrReplace(veth.Index, cidr);
        Assert.Equal(cidr, Assert.Single(t.Nl.AddrList(veth.Index, AddressFamily.InterNetwork)).Cidr);
        var second = IPCidr.Parse("10.244.2.5/24");
        t.Nl.AddrReplace(veth.Index, second, new AddrOptions { Scope = RouteScope.Link, Broadcast = IPAddress.Parse("10.244.2.254") });
        var created = Assert.Single(t.Nl.AddrList(veth.Index, AddressFamily.InterNetwork), a => a.Cidr == second);
        Assert.Equal(RouteScope.Link, created.Scope);
        Assert.Equal(IPAddress.Parse("10.244.2.254"), created.Broadcast);
        t.Nl.AddrDel(veth.Index, second);

        t.Nl.AddrDel(veth.Index, cidr);
        Assert.Empty(t.Nl.AddrList(veth.Index, AddressFamily.InterNetwork));
    }

    [KernelFact]
    public void Ipv6_with_nodad_and_filters()
    {
        using var t = new TestNetns();
        var a = t.Nl.LinkAddVeth("trl-a0", "trl-a1");
        var b = t.Nl.LinkGetByName("trl-a1")!;
        t.Nl.AddrAdd(a.Index, IPCidr.Parse("fd00:10::1/64"), new AddrOptions { NoDad = true });
        t.Nl.AddrAdd(a.Index, IPCidr.Parse("10.0.0.1/31"));
        t.Nl.AddrAdd(b.Index, IPCidr.Parse("fd00:10::2/64"), new AddrOptions { NoDad = true });

        var v6 = Assert.Single(t.Nl.AddrList(a.Index, AddressFamily.InterNetworkV6));
        Assert.Equal(IPCidr.Parse("fd00:10::1/64"), v6.Cidr);
        Assert.NotEqual(0u, v6.Flags & 0x02); // IFA_F_NODAD
        Assert.Null(v6.Broadcast);
        var v4 = Assert.Single(t.Nl.AddrList(a.Index, AddressFamily.InterNetwork));
        Assert.Null(v4.Broadcast); // a /31 has none
        Assert.Equal(2, t.Nl.AddrList(a.Index).Count);
        Assert.Equal(3, t.Nl.AddrList(family: AddressFamily.InterNetworkV6).Count + t.Nl.AddrList(family: AddressFamily.InterNetwork).Count);

        var ipAddrs = Cmd.IpJson(t.Name, "-6", "addr", "show", "dev", "trl-a0")[0].GetProperty("addr_info").EnumerateArray()
            .Select(i => i.GetProperty("local").GetString()).ToArray();
        Assert.Contains("fd00:10::1", ipAddrs);

        t.Nl.AddrDel(a.Index, IPCidr.Parse("fd00:10::1/64"));
        Assert.Empty(t.Nl.AddrList(a.Index, AddressFamily.InterNetworkV6));
        var missing = Assert.Throws<NetlinkException>(() => t.Nl.AddrDel(a.Index, IPCidr.Parse("fd00:10::1/64")));
        Assert.True(missing.IsNotFound, missing.Message);
        Assert.StartsWith("RTM_DELADDR address fd00:10::1/64", missing.Message, StringComparison.Ordinal);
    }
}
