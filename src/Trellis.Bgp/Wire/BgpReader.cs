using System.Buffers.Binary;

namespace Trellis.Bgp.Wire;

/// <summary>
/// A forward-only big-endian reader over one message or attribute. Running past the end throws
/// <see cref="BgpMessageException"/> with the error the caller chose, so a truncated field always
/// becomes the RFC's NOTIFICATION (or a treat-as-withdraw) and never an index exception.
/// </summary>
public ref struct BgpReader
{
    private readonly ReadOnlySpan<byte> _buffer;
    private readonly BgpError _onShort;
    private int _position;

    public BgpReader(ReadOnlySpan<byte> buffer, BgpError onShort)
    {
        _buffer = buffer;
        _onShort = onShort;
        _position = 0;
    }

    public readonly int Remaining => _buffer.Length - _position;

    public readonly int Position => _position;

    public readonly bool IsEmpty => _position >= _buffer.Length;

    public byte ReadByte()
    {
        Need(1);
        return _buffer[_position++];
    }

    public ushort ReadUInt16()
    {
        Need(2);
        ushort value = BinaryPrimitives.ReadUInt16BigEndian(_buffer[_position..]);
        _position += 2;
        return value;
    }

    public uint ReadUInt32()
    {
        Need(4);
        uint value = BinaryPrimitives.ReadUInt32BigEndian(_buffer[_position..]);
        _position += 4;
        return value;
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0)
        {
            throw new BgpMessageException(_onShort, "negative length");
        }
        Need(count);
        var slice = _buffer.Slice(_position, count);
        _position += count;
        return slice;
    }

    public ReadOnlySpan<byte> ReadRest() => ReadBytes(Remaining);

    private readonly void Need(int count)
    {
        if (_buffer.Length - _position < count)
        {
            throw new BgpMessageException(_onShort, $"needs {count} more bytes at offset {_position}, has {_buffer.Length - _position}");
        }
    }
}
