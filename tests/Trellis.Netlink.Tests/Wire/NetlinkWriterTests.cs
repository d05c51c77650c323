using System.Net;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Tests.Wire;

public sealed class NetlinkWriterTests
{
    [Fact]
    public void Message_round_trips_through_the_reader()
    {
        var writer = new NetlinkWriter(16); // small, to exercise growth
        writer.BeginMessage(MessageType.RTM_NEWLINK, MessageFlags.NLM_F_REQUEST | MessageFlags.NLM_F_ACK, 99);
        writer.Write(new IfInfoMsg { Family = 7, Index = 12, Flags = 1, Change = 1 });
        writer.WriteString(Ifla.IFLA_IFNAME, "eth0");
        writer.WriteU8(50, 0xab);
        writer.WriteU16(51, 0x1234);
        writer.WriteU16BigEndian(52, 4789);
        writer.WriteU32(Ifla.IFLA_MTU, 1450);
        writer.WriteAddress(53, IPAddress.Parse("10.1.2.3"));
        writer.WriteAddress(54, IPAddress.Parse("fd00::1"));
        int outer = writer.BeginNested(Ifla.IFLA_LINKINFO);
        writer.WriteString(Ifla.IFLA_INFO_KIND, "vxlan");
        int inner = writer.BeginNested(Ifla.IFLA_INFO_DATA | AttributeFlags.NLA_F_NESTED);
        writer.WriteU32(Ifla.IFLA_VXLAN_ID, 42);
        writer.EndNested(inner);
        writer.EndNested(outer);
        writer.EndMessage();

        var bytes = writer.WrittenSpan;
        Assert.Equal(0, bytes.Length % 4);
        var reader = new NetlinkMessageReader(bytes);
        Assert.True(reader.TryRead(out var message));
        Assert.False(reader.TryRead(out _));
        Assert.Equal(MessageType.RTM_NEWLINK, message.Type);
        Assert.Equal(MessageFlags.NLM_F_REQUEST | MessageFlags.NLM_F_ACK, message.Flags);
        Assert.Equal(99u, message.Sequence);
        Assert.Equal(bytes.Length - 16, message.Payload.Length);

        var header = Headers.Read<IfInfoMsg>(message.Payload, "ifinfomsg", out var attributes);
        Assert.Equal(7, header.Family);
        Assert.Equal(12, header.Index);
        var attrs = new AttributeReader(attributes);
        Assert.True(attrs.TryRead(out var a));
        Assert.Equal("eth0", a.GetString());
        Assert.Equal(5, a.Value.Length); // NUL-terminated
        Assert.True(attrs.TryRead(out a));
        Assert.Equal(0xab, a.GetU8());
        Assert.True(attrs.TryRead(out a));
        Assert.Equal(0x1234, a.GetU16());
        Assert.True(attrs.TryRead(out a));
        Assert.Equal(4789, a.GetU16BigEndian());
        Assert.Equal([0x12, 0xb5], a.Value.ToArray());
        Assert.True(attrs.TryRead(out a));
        Assert.Equal(1450u, a.GetU32());
        Assert.True(attrs.TryRead(out a));
        Assert.Equal(IPAddress.Parse("10.1.2.3"), a.GetAddress());
        Assert.True(attrs.TryRead(out a));
        Assert.Equal(IPAddress.Parse("fd00::1"), a.GetAddress());
        Assert.True(attrs.TryRead(out a));
        Assert.Equal(Ifla.IFLA_LINKINFO, a.Type);
        Assert.False(a.IsNestedFlagSet);
        var info = a.Nested;
        Assert.True(info.TryRead(out var kind));
        Assert.Equal("vxlan", kind.GetString());
        Assert.True(info.TryRead(out var data));
        Assert.Equal(Ifla.IFLA_INFO_DATA, data.Type);
        Assert.True(data.IsNestedFlagSet);
        var vxlan = data.Nested;
        Assert.True(vxlan.TryRead(out var id));
        Assert.Equal(42u, id.GetU32());
        Assert.False(vxlan.TryRead(out _));
        Assert.False(info.TryRead(out _));
        Assert.False(attrs.TryRead(out _));
    }

    [Fact]
    public void Reused_buffer_produces_the_same_bytes_as_a_fresh_one()
    {
        static void Build(NetlinkWriter w)
        {
            w.BeginMessage(MessageType.RTM_NEWADDR, 0, 1);
            w.Write(new IfAddrMsg { Family = 2, PrefixLength = 24, Index = 3 });
            w.WriteString(Ifa.IFA_LABEL, "a"); // 2 bytes of value, 2 of padding
            w.WriteU8(9, 1);
            w.EndMessage();
        }
        var reused = new NetlinkWriter();
        reused.BeginMessage(1, 0, 0);
        reused.WriteAttribute(1, Enumerable.Repeat((byte)0xff, 200).ToArray());
        reused.EndMessage();
        reused.Reset();
        Build(reused);
        var fresh = new NetlinkWriter();
        Build(fresh);
        Assert.Equal(fresh.WrittenSpan.ToArray(), reused.WrittenSpan.ToArray());
    }

    [Fact]
    public void Oversized_attribute_is_refused()
    {
        var writer = new NetlinkWriter();
        writer.BeginMessage(1, 0, 0);
        Assert.Throws<ArgumentException>(() => writer.WriteAttribute(1, new byte[70000]));
    }
}
