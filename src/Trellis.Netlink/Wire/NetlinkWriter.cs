using System.Buffers.Binary;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Trellis.Netlink.Wire;

/// <summary>
/// Builds one netlink request into a reusable buffer: header, family header, attributes and
/// nested attributes, each padded to 4 bytes. One writer belongs to one socket and is reset per
/// request, so building a request allocates nothing once the buffer has grown to fit.
/// </summary>
internal sealed class NetlinkWriter
{
    private const int AttributeHeaderSize = 4;
    private byte[] _buffer;
    private int _length;
    private int _messageStart = -1;

    public NetlinkWriter(int initialCapacity = 1024) => _buffer = new byte[initialCapacity];

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public void Reset()
    {
        _length = 0;
        _messageStart = -1;
    }

    public void BeginMessage(ushort type, ushort flags, uint sequence)
    {
        _messageStart = _length;
        var header = new NlMsgHdr { Length = 0, Type = type, Flags = flags, Sequence = sequence, PortId = 0 };
        Write(in header);
    }

    /// <summary>Patches nlmsg_len of the message begun last.</summary>
    public void EndMessage()
    {
        if (_messageStart < 0)
        {
            throw new InvalidOperationException("EndMessage without BeginMessage");
        }
        MemoryMarshal.Write(_buffer.AsSpan(_messageStart), (uint)(_length - _messageStart));
        _messageStart = -1;
    }

    /// <summary>Appends a fixed header (ifinfomsg, rtmsg, ...) padded to 4 bytes.</summary>
    public void Write<T>(in T header)
        where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        var span = Append(Headers.Align(size));
        MemoryMarshal.Write(span, in header);
    }

    public void WriteAttribute(ushort type, ReadOnlySpan<byte> value)
    {
        var span = Append(Headers.Align(AttributeHeaderSize + value.Length));
        WriteAttributeHeader(span, type, AttributeHeaderSize + value.Length);
        value.CopyTo(span.Slice(AttributeHeaderSize));
    }

    public void WriteU8(ushort type, byte value) => WriteAttribute(type, [value]);

    public void WriteU16(ushort type, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        MemoryMarshal.Write(b, in value);
        WriteAttribute(type, b);
    }

    public void WriteU16BigEndian(ushort type, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        WriteAttribute(type, b);
    }

    public void WriteU32(ushort type, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        MemoryMarshal.Write(b, in value);
        WriteAttribute(type, b);
    }

    public void WriteI32(ushort type, int value) => WriteU32(type, unchecked((uint)value));

    /// <summary>A NUL-terminated UTF-8 string, as the kernel's NLA_STRING/NLA_NUL_STRING policies expect.</summary>
    public void WriteString(ushort type, string value)
    {
        int byteCount = Encoding.UTF8.GetByteCount(value);
        var span = Append(Headers.Align(AttributeHeaderSize + byteCount + 1));
        WriteAttributeHeader(span, type, AttributeHeaderSize + byteCount + 1);
        Encoding.UTF8.GetBytes(value, span.Slice(AttributeHeaderSize));
    }

    public void WriteAddress(ushort type, IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        if (!address.TryWriteBytes(b, out int written))
        {
            throw new ArgumentException($"cannot encode address '{address}'", nameof(address));
        }
        WriteAttribute(type, b.Slice(0, written));
    }

    /// <summary>Opens a nested attribute; pass the returned offset to <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type)
    {
        int start = _length;
        var span = Append(AttributeHeaderSize);
        WriteAttributeHeader(span, type, 0);
        return start;
    }

    /// <summary>
    /// Opens one struct rtnexthop inside RTA_MULTIPATH (len, flags, hops, ifindex; its attributes
    /// follow); its length field sits where an attribute's does, so <see cref="EndNested"/> closes it.
    /// </summary>
    public int BeginNextHop(byte flags, byte hops, int ifindex)
    {
        int start = _length;
        var span = Append(8);
        span[2] = flags;
        span[3] = hops;
        MemoryMarshal.Write(span.Slice(4), ifindex);
        return start;
    }

    public void EndNested(int start)
    {
        int length = _length - start;
        if (length > ushort.MaxValue)
        {
            throw new InvalidOperationException($"nested attribute of {length} bytes exceeds nla_len");
        }
        MemoryMarshal.Write(_buffer.AsSpan(start), (ushort)length);
    }

    private static void WriteAttributeHeader(Span<byte> span, ushort type, int length)
    {
        if (length > ushort.MaxValue)
        {
            throw new ArgumentException($"attribute {type} of {length} bytes exceeds nla_len");
        }
        MemoryMarshal.Write(span, (ushort)length);
        MemoryMarshal.Write(span.Slice(2), type);
    }

    /// <summary>Reserves <paramref name="size"/> zeroed bytes (the buffer is reused, so padding must be cleared).</summary>
    private Span<byte> Append(int size)
    {
        if (_length + size > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + size));
        }
        var span = _buffer.AsSpan(_length, size);
        span.Clear();
        _length += size;
        return span;
    }
}
