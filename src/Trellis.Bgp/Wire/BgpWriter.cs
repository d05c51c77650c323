using System.Buffers.Binary;

namespace Trellis.Bgp.Wire;

/// <summary>
/// A big-endian writer over a caller's span. Length fields are written after their content with
/// <see cref="PatchUInt16"/>, so encoders never compute sizes twice.
/// </summary>
public ref struct BgpWriter
{
    private readonly Span<byte> _buffer;
    private int _position;

    public BgpWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
    }

    public readonly int Position => _position;

    public readonly int Remaining => _buffer.Length - _position;

    public readonly ReadOnlySpan<byte> Written => _buffer[.._position];

    public void WriteByte(byte value)
    {
        Need(1);
        _buffer[_position++] = value;
    }

    public void WriteUInt16(ushort value)
    {
        Need(2);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[_position..], value);
        _position += 2;
    }

    public void WriteUInt32(uint value)
    {
        Need(4);
        BinaryPrimitives.WriteUInt32BigEndian(_buffer[_position..], value);
        _position += 4;
    }

    public void WriteBytes(scoped ReadOnlySpan<byte> value)
    {
        Need(value.Length);
        value.CopyTo(_buffer[_position..]);
        _position += value.Length;
    }

    /// <summary>Reserves a 2-byte length and returns its offset for <see cref="PatchUInt16"/>.</summary>
    public int ReserveUInt16()
    {
        int at = _position;
        WriteUInt16(0);
        return at;
    }

    public int ReserveByte()
    {
        int at = _position;
        WriteByte(0);
        return at;
    }

    /// <summary>Starts a path attribute with a 1-byte length; <see cref="EndAttribute"/> widens it if needed.</summary>
    public int BeginAttribute(byte flags, byte type)
    {
        int at = _position;
        WriteByte((byte)(flags & ~PathAttributes.FlagExtendedLength));
        WriteByte(type);
        WriteByte(0);
        return at;
    }

    /// <summary>
    /// Patches the attribute's length. The extended-length form is used only past 255 bytes (some peers
    /// reject a needless extended length), so the content is moved one byte right in that case.
    /// </summary>
    public void EndAttribute(int at)
    {
        int contentStart = at + 3;
        int length = _position - contentStart;
        if (length <= byte.MaxValue)
        {
            _buffer[at + 2] = (byte)length;
            return;
        }
        Need(1);
        _buffer.Slice(contentStart, length).CopyTo(_buffer[(contentStart + 1)..]);
        _buffer[at] |= PathAttributes.FlagExtendedLength;
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[(at + 2)..], (ushort)length);
        _position++;
    }

    public readonly void PatchUInt16(int at, ushort value) => BinaryPrimitives.WriteUInt16BigEndian(_buffer[at..], value);

    public readonly void PatchByte(int at, byte value) => _buffer[at] = value;

    private readonly void Need(int count)
    {
        if (_buffer.Length - _position < count)
        {
            throw new BgpEncodeException($"message does not fit: needs {count} bytes at offset {_position} of {_buffer.Length}");
        }
    }
}
