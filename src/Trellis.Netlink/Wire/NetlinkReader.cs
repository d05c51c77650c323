using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace Trellis.Netlink.Wire;

/// <summary>One netlink message: the decoded nlmsghdr and the payload after it.</summary>
internal readonly ref struct NetlinkMessage
{
    public NetlinkMessage(ushort type, ushort flags, uint sequence, uint portId, ReadOnlySpan<byte> payload)
    {
        Type = type;
        Flags = flags;
        Sequence = sequence;
        PortId = portId;
        Payload = payload;
    }

    public ushort Type { get; }
    public ushort Flags { get; }
    public uint Sequence { get; }
    public uint PortId { get; }
    public ReadOnlySpan<byte> Payload { get; }
}

/// <summary>
/// Walks the messages of one datagram. Every length is checked against the bytes actually
/// present: a reply from the kernel is still input, and a bad one must become a
/// <see cref="NetlinkException"/> (EBADMSG), not an out-of-range crash.
/// </summary>
internal ref struct NetlinkMessageReader
{
    private ReadOnlySpan<byte> _remaining;

    public NetlinkMessageReader(ReadOnlySpan<byte> datagram) => _remaining = datagram;

    public bool TryRead(out NetlinkMessage message)
    {
        message = default;
        if (_remaining.IsEmpty)
        {
            return false;
        }
        if (_remaining.Length < Headers.NlMsgHdrSize)
        {
            throw NetlinkException.Malformed($"truncated nlmsghdr: {_remaining.Length} bytes left, 16 needed");
        }
        var header = MemoryMarshal.Read<NlMsgHdr>(_remaining);
        if (header.Length < Headers.NlMsgHdrSize)
        {
            throw NetlinkException.Malformed($"nlmsg_len {header.Length} is smaller than the header");
        }
        if (header.Length > (uint)_remaining.Length)
        {
            throw NetlinkException.Malformed($"nlmsg_len {header.Length} exceeds the {_remaining.Length} bytes left in the datagram");
        }
        int length = (int)header.Length;
        message = new NetlinkMessage(header.Type, header.Flags, header.Sequence, header.PortId,
            _remaining.Slice(Headers.NlMsgHdrSize, length - Headers.NlMsgHdrSize));
        int advance = Headers.Align(length);
        _remaining = advance >= _remaining.Length ? default : _remaining.Slice(advance);
        return true;
    }
}

/// <summary>One rtattr/nlattr: its type (flag bits removed) and value.</summary>
internal readonly ref struct NetlinkAttribute
{
    public NetlinkAttribute(ushort rawType, ReadOnlySpan<byte> value)
    {
        RawType = rawType;
        Value = value;
    }

    public ushort RawType { get; }
    public ushort Type => (ushort)(RawType & AttributeFlags.NLA_TYPE_MASK);
    public bool IsNestedFlagSet => (RawType & AttributeFlags.NLA_F_NESTED) != 0;
    public ReadOnlySpan<byte> Value { get; }

    public AttributeReader Nested => new(Value);

    public byte GetU8() => Need(1)[0];

    public ushort GetU16() => MemoryMarshal.Read<ushort>(Need(2));

    public ushort GetU16BigEndian() => BinaryPrimitives.ReadUInt16BigEndian(Need(2));

    public uint GetU32() => MemoryMarshal.Read<uint>(Need(4));

    public int GetI32() => MemoryMarshal.Read<int>(Need(4));

    /// <summary>A NUL-terminated string; the kernel always terminates, but an unterminated one is tolerated.</summary>
    public string GetString()
    {
        var value = Value;
        int nul = value.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? value.Slice(0, nul) : value);
    }

    public IPAddress GetAddress()
    {
        if (Value.Length is not (4 or 16))
        {
            throw NetlinkException.Malformed($"attribute {Type}: an address must be 4 or 16 bytes, got {Value.Length}");
        }
        return new IPAddress(Value);
    }

    public byte[] GetBytes() => Value.ToArray();

    private ReadOnlySpan<byte> Need(int size)
    {
        if (Value.Length < size)
        {
            throw NetlinkException.Malformed($"attribute {Type}: {size} bytes needed, {Value.Length} present");
        }
        return Value;
    }
}

/// <summary>Walks a run of attributes (the tail of a message, or a nested attribute's value).</summary>
internal ref struct AttributeReader
{
    private const int HeaderSize = 4;
    private ReadOnlySpan<byte> _remaining;

    public AttributeReader(ReadOnlySpan<byte> attributes) => _remaining = attributes;

    public bool TryRead(out NetlinkAttribute attribute)
    {
        attribute = default;
        if (_remaining.IsEmpty)
        {
            return false;
        }
        if (_remaining.Length < HeaderSize)
        {
            throw NetlinkException.Malformed($"truncated attribute header: {_remaining.Length} bytes left, 4 needed");
        }
        ushort length = MemoryMarshal.Read<ushort>(_remaining);
        ushort type = MemoryMarshal.Read<ushort>(_remaining.Slice(2));
        if (length < HeaderSize)
        {
            throw NetlinkException.Malformed($"attribute {type & AttributeFlags.NLA_TYPE_MASK}: nla_len {length} is smaller than its header");
        }
        if (length > _remaining.Length)
        {
            throw NetlinkException.Malformed($"attribute {type & AttributeFlags.NLA_TYPE_MASK}: nla_len {length} overflows the {_remaining.Length} bytes left");
        }
        attribute = new NetlinkAttribute(type, _remaining.Slice(HeaderSize, length - HeaderSize));
        int advance = Headers.Align(length);
        _remaining = advance >= _remaining.Length ? default : _remaining.Slice(advance);
        return true;
    }
}
