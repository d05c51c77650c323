using System.Buffers.Binary;
using CsCheck;
using Trellis.Netlink.Codec;
using Trellis.Netlink.Tests.Support;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Tests.Wire;

/// <summary>Bad replies must become a typed EBADMSG error, never an out-of-range crash.</summary>
public sealed class NetlinkReaderTests
{
    [Fact]
    public void Truncated_message_header_is_malformed()
    {
        var error = Assert.Throws<NetlinkException>(() => ReadAll(new byte[10]));
        Assert.True(error.IsMalformed);
        Assert.Equal("EBADMSG", error.ErrnoName);
        Assert.Contains("truncated nlmsghdr", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Message_length_beyond_the_datagram_is_malformed()
    {
        var datagram = Message(MessageType.RTM_NEWLINK, new byte[16]);
        BinaryPrimitives.WriteUInt32LittleEndian(datagram, 4096);
        var error = Assert.Throws<NetlinkException>(() => ReadAll(datagram));
        Assert.True(error.IsMalformed);
        Assert.Contains("nlmsg_len 4096 exceeds", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Message_length_below_the_header_is_malformed()
    {
        var datagram = Message(MessageType.RTM_NEWLINK, []);
        BinaryPrimitives.WriteUInt32LittleEndian(datagram, 8);
        Assert.True(Assert.Throws<NetlinkException>(() => ReadAll(datagram)).IsMalformed);
    }

    [Fact]
    public void Attribute_length_overflowing_its_container_is_malformed()
    {
        // nla_len 200 with 8 bytes present
        byte[] attributes = [200, 0, 3, 0, 0x65, 0x74, 0x68, 0];
        var error = Assert.Throws<NetlinkException>(() => ReadAttributes(attributes));
        Assert.True(error.IsMalformed);
        Assert.Contains("nla_len 200 overflows", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Attribute_length_below_its_header_is_malformed()
    {
        byte[] attributes = [2, 0, 3, 0];
        Assert.True(Assert.Throws<NetlinkException>(() => ReadAttributes(attributes)).IsMalformed);
    }

    [Fact]
    public void Truncated_attribute_header_is_malformed()
    {
        byte[] attributes = [8, 0, 4, 0, 0xdc, 5, 0, 0, 7, 0];
        Assert.True(Assert.Throws<NetlinkException>(() => ReadAttributes(attributes)).IsMalformed);
    }

    [Fact]
    public void Attribute_too_short_for_its_type_is_malformed()
    {
        // IFLA_MTU with a 2-byte value inside a link message
        byte[] payload = [.. new byte[16], 6, 0, 4, 0, 0xdc, 5, 0, 0];
        var datagram = Message(MessageType.RTM_NEWLINK, payload);
        var error = Assert.Throws<NetlinkException>(() => DecodeLink(datagram));
        Assert.Contains("attribute 4: 4 bytes needed, 2 present", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(MessageType.RTM_NEWLINK, 15)]
    [InlineData(MessageType.RTM_NEWADDR, 7)]
    [InlineData(MessageType.RTM_NEWROUTE, 11)]
    [InlineData(MessageType.RTM_NEWNEIGH, 11)]
    public void Payload_shorter_than_the_family_header_is_malformed(ushort type, int length)
    {
        var datagram = Message(type, new byte[length]);
        var error = Assert.Throws<NetlinkException>(() => Captured.DecodeAny(datagram));
        Assert.True(error.IsMalformed);
        Assert.Contains("needs", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Error_message_without_errno_is_malformed()
    {
        var datagram = Message(MessageType.NLMSG_ERROR, [1, 2]);
        Assert.True(Assert.Throws<NetlinkException>(() => Captured.DecodeAny(datagram)).IsMalformed);
    }

    [Fact]
    public void Link_without_a_name_is_malformed()
    {
        var datagram = Message(MessageType.RTM_NEWLINK, new byte[16]);
        Assert.Contains("no IFLA_IFNAME", Assert.Throws<NetlinkException>(() => DecodeLink(datagram)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Uncapped_error_skips_the_echoed_request_to_find_the_extended_ack()
    {
        // errno, the echoed 20-byte request (header + 4 bytes), then NLMSGERR_ATTR_MSG "boom".
        var writer = new NetlinkWriter();
        writer.BeginMessage(MessageType.NLMSG_ERROR, MessageFlags.NLM_F_ACK_TLVS, 7);
        writer.Write(-Errno.EINVAL);
        writer.Write(new NlMsgHdr { Length = 20, Type = MessageType.RTM_NEWLINK, Sequence = 7 });
        writer.Write(0xdeadbeef);
        writer.WriteString(NlmsgErrAttr.NLMSGERR_ATTR_MSG, "boom");
        writer.EndMessage();
        var reader = new NetlinkMessageReader(writer.WrittenSpan);
        Assert.True(reader.TryRead(out var message));
        var error = NetlinkSocket.ErrorOf(message, new Op(MessageType.RTM_NEWLINK, "link", Index: 3));
        Assert.NotNull(error);
        Assert.Equal("boom", error.KernelMessage);
        Assert.Equal("RTM_NEWLINK link 3: Invalid argument (EINVAL): boom", error.Message);
    }

    [Fact]
    public void Ack_is_not_an_error()
    {
        var datagram = Message(MessageType.NLMSG_ERROR, new byte[20]);
        var reader = new NetlinkMessageReader(datagram);
        Assert.True(reader.TryRead(out var message));
        Assert.Null(NetlinkSocket.ErrorOf(message, new Op(MessageType.RTM_NEWLINK, "link")));
    }

    [Theory]
    [InlineData("link.hex")]
    [InlineData("addr.hex")]
    [InlineData("route4.hex")]
    [InlineData("route6.hex")]
    [InlineData("neigh.hex")]
    [InlineData("fdb.hex")]
    public void Every_truncation_of_a_captured_reply_fails_cleanly(string file)
    {
        foreach (var datagram in HexCapture.Load(file))
        {
            for (int length = 0; length < datagram.Length; length++)
            {
                try
                {
                    Captured.DecodeAny(datagram.AsSpan(0, length));
                }
                catch (NetlinkException e) when (e.IsMalformed)
                {
                }
            }
        }
    }

    [Theory]
    [InlineData("link.hex")]
    [InlineData("addr.hex")]
    [InlineData("route4.hex")]
    [InlineData("neigh.hex")]
    [InlineData("fdb.hex")]
    public void Corrupted_captured_replies_fail_cleanly(string file)
    {
        var datagrams = HexCapture.Load(file);
        var mutation = Gen.Select(Gen.Int[0, datagrams.Count - 1], Gen.Int[0, int.MaxValue], Gen.Byte, Gen.Int[1, 4]);
        mutation.Sample((which, position, value, count) =>
        {
            var datagram = (byte[])datagrams[which].Clone();
            for (int i = 0; i < count; i++)
            {
                datagram[(int)((position + i * 7919L) % datagram.Length)] = (byte)(value + i);
            }
            try
            {
                Captured.DecodeAny(datagram);
            }
            catch (NetlinkException e) when (e.IsMalformed)
            {
            }
        }, iter: 5000);
    }

    /// <summary>One message in host (little-endian) order, as the captures are.</summary>
    private static byte[] Message(ushort type, byte[] payload)
    {
        var datagram = new byte[16 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(datagram, (uint)datagram.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(datagram.AsSpan(4), type);
        BinaryPrimitives.WriteUInt32LittleEndian(datagram.AsSpan(8), 1);
        payload.CopyTo(datagram, 16);
        return datagram;
    }

    private static void ReadAll(ReadOnlySpan<byte> datagram)
    {
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out _))
        {
        }
    }

    private static void ReadAttributes(ReadOnlySpan<byte> attributes)
    {
        var reader = new AttributeReader(attributes);
        while (reader.TryRead(out _))
        {
        }
    }

    private static void DecodeLink(ReadOnlySpan<byte> datagram)
    {
        var reader = new NetlinkMessageReader(datagram);
        Assert.True(reader.TryRead(out var message));
        LinkCodec.Decode(message);
    }
}
