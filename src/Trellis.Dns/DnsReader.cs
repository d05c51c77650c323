using System.Buffers.Binary;
using System.Text;

namespace Trellis.Dns;

/// <summary>
/// Reads a DNS message from a span: big-endian integers and (compressed) domain names. Every read is
/// bounds-checked and throws <see cref="DnsFormatException"/> on malformed input; nothing here allocates
/// except the name strings.
/// </summary>
public ref struct DnsReader
{
    /// <summary>A name is at most 255 octets on the wire (RFC 1035 §2.3.4), so no more than 127 labels and pointers.</summary>
    public const int MaxNameLength = 255;

    private readonly ReadOnlySpan<byte> _message;
    private int _position;

    public DnsReader(ReadOnlySpan<byte> message, int position = 0)
    {
        _message = message;
        _position = position;
    }

    public int Position
    {
        readonly get => _position;
        set => _position = value;
    }

    public readonly int Remaining => _message.Length - _position;

    public byte ReadByte(string what)
    {
        Need(1, what);
        return _message[_position++];
    }

    public ushort ReadUInt16(string what)
    {
        Need(2, what);
        ushort v = BinaryPrimitives.ReadUInt16BigEndian(_message[_position..]);
        _position += 2;
        return v;
    }

    public uint ReadUInt32(string what)
    {
        Need(4, what);
        uint v = BinaryPrimitives.ReadUInt32BigEndian(_message[_position..]);
        _position += 4;
        return v;
    }

    public ReadOnlySpan<byte> ReadBytes(int count, string what)
    {
        Need(count, what);
        var s = _message.Slice(_position, count);
        _position += count;
        return s;
    }

    /// <summary>
    /// Reads a possibly compressed name in presentation form ("www.example.com.", the root is ".").
    /// Pointer targets must strictly decrease, which rules out every loop, including ones through a
    /// name's own labels; bytes that are not printable, '.', '\\', '"', ';', '(' and ')' are escaped as \DDD
    /// so the text maps back to the same labels.
    /// </summary>
    public string ReadName(string what = "name", bool lowerCase = false) => ReadName(what, lowerCase, intern: null);

    /// <summary>
    /// As <see cref="ReadName(string, bool)"/>, but a name <paramref name="intern"/> already holds (it returns its
    /// string) costs no allocation: the server's hot path reads every question name this way.
    /// </summary>
    public string ReadName(string what, bool lowerCase, Func<ReadOnlySpan<char>, string?>? intern)
    {
        Span<char> text = stackalloc char[MaxNameLength * 4 + 1];
        int textLength = 0;
        int pos = _position;
        int limit = _position; // every pointer must point below the lowest position read so far
        bool jumped = false;
        int wireLength = 1;
        while (true)
        {
            if (pos >= _message.Length)
            {
                throw new DnsFormatException($"{what}: truncated name at offset {pos}");
            }
            byte len = _message[pos];
            if ((len & 0xC0) == 0xC0)
            {
                if (pos + 1 >= _message.Length)
                {
                    throw new DnsFormatException($"{what}: truncated compression pointer at offset {pos}");
                }
                int target = ((len & 0x3F) << 8) | _message[pos + 1];
                if (target >= limit)
                {
                    throw new DnsFormatException($"{what}: compression pointer at offset {pos} to {target} does not point backwards (loop)");
                }
                if (!jumped)
                {
                    _position = pos + 2;
                    jumped = true;
                }
                limit = target;
                pos = target;
                continue;
            }
            if ((len & 0xC0) != 0)
            {
                throw new DnsFormatException($"{what}: unsupported label type 0x{len & 0xC0:x2} at offset {pos}");
            }
            if (len == 0)
            {
                if (!jumped)
                {
                    _position = pos + 1;
                }
                break;
            }
            wireLength += len + 1;
            if (wireLength > MaxNameLength)
            {
                throw new DnsFormatException($"{what}: name longer than {MaxNameLength} octets");
            }
            if (pos + 1 + len > _message.Length)
            {
                throw new DnsFormatException($"{what}: label of {len} octets at offset {pos} runs past the end of the message");
            }
            foreach (byte b in _message.Slice(pos + 1, len))
            {
                textLength = AppendEscaped(text, textLength, lowerCase && b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b + 32) : b);
            }
            text[textLength++] = '.';
            pos += 1 + len;
        }
        if (textLength == 0)
        {
            return ".";
        }
        return intern?.Invoke(text[..textLength]) ?? new string(text[..textLength]);
    }

    /// <summary>Skips a name without decoding it (pointers end it; they are checked when the name is read).</summary>
    public void SkipName(string what = "name")
    {
        int hops = 0;
        while (true)
        {
            byte len = ReadByte(what);
            if ((len & 0xC0) == 0xC0)
            {
                ReadByte(what);
                return;
            }
            if ((len & 0xC0) != 0)
            {
                throw new DnsFormatException($"{what}: unsupported label type 0x{len & 0xC0:x2}");
            }
            if (len == 0)
            {
                return;
            }
            ReadBytes(len, what);
            if (++hops > 127)
            {
                throw new DnsFormatException($"{what}: name longer than {MaxNameLength} octets");
            }
        }
    }

    private static int AppendEscaped(Span<char> text, int at, byte b)
    {
        if (b is <= 0x20 or >= 0x7f or (byte)'.' or (byte)'\\' or (byte)'"' or (byte)';' or (byte)'(' or (byte)')')
        {
            text[at++] = '\\';
            text[at++] = (char)('0' + (b / 100));
            text[at++] = (char)('0' + (b / 10 % 10));
            text[at++] = (char)('0' + (b % 10));
            return at;
        }
        text[at++] = (char)b;
        return at;
    }

    private readonly void Need(int count, string what)
    {
        if (count < 0 || _position + count > _message.Length)
        {
            throw new DnsFormatException($"{what}: needs {count} octets at offset {_position}, the message has {_message.Length}");
        }
    }

    /// <summary>Converts presentation form back to wire labels (for names read by <see cref="ReadName"/> or typed by people).</summary>
    public static byte[] EncodeName(string name)
    {
        var buf = new byte[MaxNameLength];
        int n = EncodeName(name, buf);
        return buf[..n];
    }

    /// <summary>Writes the uncompressed wire form of <paramref name="name"/>; returns its length. Throws <see cref="DnsFormatException"/> on a bad name.</summary>
    public static int EncodeName(string name, Span<byte> dest)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name is "." or "")
        {
            dest[0] = 0;
            return 1;
        }
        int pos = 0;
        int labelStart = pos++;
        int labelLength = 0;
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (c == '.')
            {
                if (labelLength == 0)
                {
                    throw new DnsFormatException($"name '{name}': empty label");
                }
                dest[labelStart] = (byte)labelLength;
                if (i == name.Length - 1)
                {
                    labelLength = -1;
                    break;
                }
                labelStart = pos++;
                labelLength = 0;
                continue;
            }
            byte b;
            if (c == '\\' && i + 1 < name.Length)
            {
                if (i + 3 < name.Length && char.IsAsciiDigit(name[i + 1]) && char.IsAsciiDigit(name[i + 2]) && char.IsAsciiDigit(name[i + 3]))
                {
                    int v = ((name[i + 1] - '0') * 100) + ((name[i + 2] - '0') * 10) + (name[i + 3] - '0');
                    if (v > 255)
                    {
                        throw new DnsFormatException($"name '{name}': bad escape");
                    }
                    b = (byte)v;
                    i += 3;
                }
                else
                {
                    b = (byte)name[++i];
                }
            }
            else if (c > 0x7f)
            {
                throw new DnsFormatException($"name '{name}': non-ASCII character");
            }
            else
            {
                b = (byte)c;
            }
            if (++labelLength > 63)
            {
                throw new DnsFormatException($"name '{name}': label longer than 63 octets");
            }
            if (pos >= MaxNameLength - 1)
            {
                throw new DnsFormatException($"name '{name}': longer than {MaxNameLength} octets");
            }
            dest[pos++] = b;
        }
        if (labelLength >= 0)
        {
            dest[labelStart] = (byte)labelLength; // no trailing dot: still a fully qualified name
        }
        dest[pos++] = 0;
        return pos;
    }

    internal static string Lower(string name) => name.ToLowerInvariant();

    internal static string Describe(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes);

    internal static string Utf8(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);
}
