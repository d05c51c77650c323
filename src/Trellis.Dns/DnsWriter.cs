using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Trellis.Dns;

/// <summary>
/// Writes a DNS message into a fixed span, compressing names (RFC 1035 §4.1.4) against names already
/// written. A write that does not fit sets <see cref="Overflowed"/> and writes nothing more, so a caller
/// writes records one by one and, on overflow, rewinds to the last whole record and sets TC.
/// The compression table is a small span of offsets; lookups walk the written bytes, so nothing allocates.
/// </summary>
public ref struct DnsWriter
{
    public const int HeaderLength = 12;

    private readonly Span<byte> _buffer;
    private readonly Span<int> _names;
    private int _nameCount;
    private int _position;

    public DnsWriter(Span<byte> buffer, Span<int> compressionTable)
    {
        _buffer = buffer;
        _names = compressionTable;
        _position = 0;
    }

    public readonly int Position => _position;

    public bool Overflowed { readonly get; private set; }

    public readonly ReadOnlySpan<byte> Written => _buffer[.._position];

    /// <summary>Goes back to <paramref name="position"/> (an earlier <see cref="Position"/>), forgetting names written after it.</summary>
    public void Rewind(int position)
    {
        _position = position;
        Overflowed = false;
        while (_nameCount > 0 && _names[_nameCount - 1] >= position)
        {
            _nameCount--;
        }
    }

    public void WriteHeader(ushort id, DnsFlags flags, int opcode, int rcode)
    {
        if (!Ensure(HeaderLength))
        {
            return;
        }
        BinaryPrimitives.WriteUInt16BigEndian(_buffer, id);
        ushort f = (ushort)((ushort)flags | ((opcode & 0xF) << 11) | (rcode & 0xF));
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[2..], f);
        _buffer[4..HeaderLength].Clear();
        _position = HeaderLength;
    }

    public readonly void SetCounts(int questions, int answers, int authority, int additional)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[4..], (ushort)questions);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[6..], (ushort)answers);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[8..], (ushort)authority);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[10..], (ushort)additional);
    }

    public readonly void SetFlag(DnsFlags flag)
    {
        ushort f = BinaryPrimitives.ReadUInt16BigEndian(_buffer[2..]);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer[2..], (ushort)(f | (ushort)flag));
    }

    public void WriteUInt16(ushort value)
    {
        if (Ensure(2))
        {
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[_position..], value);
            _position += 2;
        }
    }

    public void WriteUInt32(uint value)
    {
        if (Ensure(4))
        {
            BinaryPrimitives.WriteUInt32BigEndian(_buffer[_position..], value);
            _position += 4;
        }
    }

    public void WriteBytes(scoped ReadOnlySpan<byte> bytes)
    {
        if (Ensure(bytes.Length))
        {
            bytes.CopyTo(_buffer[_position..]);
            _position += bytes.Length;
        }
    }

    /// <summary>Writes a name given in presentation form.</summary>
    public void WriteName(string name, bool compress = true)
    {
        Span<byte> wire = stackalloc byte[DnsReader.MaxNameLength];
        int n = DnsReader.EncodeName(name, wire);
        WriteName(wire[..n], compress);
    }

    /// <summary>Writes an uncompressed wire-form name, replacing its longest already-written suffix by a pointer.</summary>
    public void WriteName(scoped ReadOnlySpan<byte> wire, bool compress = true)
    {
        // Label offsets become compression targets only once the whole name is written: a suffix of a
        // half-written name is not yet terminated, and pointing into it from the same name would loop.
        Span<int> starts = stackalloc int[128];
        int startCount = 0;
        int label = 0;
        bool pointer = false;
        while (wire[label] != 0)
        {
            if (compress && FindSuffix(wire[label..]) is int target and >= 0)
            {
                WriteUInt16((ushort)(0xC000 | target));
                pointer = true;
                break;
            }
            starts[startCount++] = _position;
            int len = wire[label];
            WriteBytes(wire.Slice(label, len + 1));
            label += len + 1;
        }
        if (!pointer && Ensure(1))
        {
            _buffer[_position++] = 0;
        }
        for (int i = 0; i < startCount && !Overflowed; i++)
        {
            if (starts[i] < 0x4000 && _nameCount < _names.Length)
            {
                _names[_nameCount++] = starts[i];
            }
        }
    }

    /// <summary>
    /// Copies a question (name, type, class) exactly as the client sent it, so the answer echoes its
    /// spelling (0x20 case randomisation, RFC draft-vixie-dnsext-dns0x20), and registers its labels for compression.
    /// Returns false (writing nothing) when the name in it is compressed.
    /// </summary>
    public bool TryWriteRawQuestion(scoped ReadOnlySpan<byte> question)
    {
        int label = 0;
        while (question[label] != 0)
        {
            if ((question[label] & 0xC0) != 0)
            {
                return false;
            }
            label += question[label] + 1;
        }
        int start = _position;
        WriteBytes(question);
        if (Overflowed)
        {
            return true;
        }
        label = 0;
        while (question[label] != 0 && start + label < 0x4000 && _nameCount < _names.Length)
        {
            _names[_nameCount++] = start + label;
            label += question[label] + 1;
        }
        return true;
    }

    public void WriteQuestion(string name, ushort type, ushort cls)
    {
        WriteName(name);
        WriteUInt16(type);
        WriteUInt16(cls);
    }

    /// <summary>Owner, type, class and TTL, then a placeholder RDLENGTH; returns its position for <see cref="EndRecord"/>.</summary>
    public int BeginRecord(string owner, ushort type, ushort cls, uint ttl)
    {
        WriteName(owner);
        WriteUInt16(type);
        WriteUInt16(cls);
        WriteUInt32(ttl);
        int at = _position;
        WriteUInt16(0);
        return at;
    }

    public readonly void EndRecord(int rdLengthPosition)
    {
        if (!Overflowed)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[rdLengthPosition..], (ushort)(_position - rdLengthPosition - 2));
        }
    }

    public void WriteAddress(string owner, uint ttl, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        bool v6 = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        int at = BeginRecord(owner, (ushort)(v6 ? DnsRecordType.AAAA : DnsRecordType.A), DnsClass.IN, ttl);
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int n);
        WriteBytes(bytes[..n]);
        EndRecord(at);
    }

    /// <summary>CNAME, PTR, NS: RDATA is one (compressible) name.</summary>
    public void WriteNameRecord(string owner, DnsRecordType type, uint ttl, string target)
    {
        int at = BeginRecord(owner, (ushort)type, DnsClass.IN, ttl);
        WriteName(target);
        EndRecord(at);
    }

    /// <summary>SRV (RFC 2782): the target is written uncompressed, as that RFC requires.</summary>
    public void WriteSrv(string owner, uint ttl, ushort priority, ushort weight, ushort port, string target)
    {
        int at = BeginRecord(owner, (ushort)DnsRecordType.SRV, DnsClass.IN, ttl);
        WriteUInt16(priority);
        WriteUInt16(weight);
        WriteUInt16(port);
        WriteName(target, compress: false);
        EndRecord(at);
    }

    public void WriteTxt(string owner, uint ttl, IEnumerable<string> strings)
    {
        ArgumentNullException.ThrowIfNull(strings);
        int at = BeginRecord(owner, (ushort)DnsRecordType.TXT, DnsClass.IN, ttl);
        foreach (var s in strings)
        {
            byte[] b = Encoding.UTF8.GetBytes(s);
            int len = Math.Min(b.Length, 255);
            if (Ensure(1))
            {
                _buffer[_position++] = (byte)len;
            }
            WriteBytes(b.AsSpan(0, len));
        }
        EndRecord(at);
    }

    public void WriteSoa(string owner, uint ttl, string mname, string rname, uint serial, uint refresh, uint retry, uint expire, uint minimum)
    {
        int at = BeginRecord(owner, (ushort)DnsRecordType.SOA, DnsClass.IN, ttl);
        WriteName(mname);
        WriteName(rname);
        WriteUInt32(serial);
        WriteUInt32(refresh);
        WriteUInt32(retry);
        WriteUInt32(expire);
        WriteUInt32(minimum);
        EndRecord(at);
    }

    /// <summary>The EDNS0 OPT pseudo-record (RFC 6891 §6.1.2): class = UDP payload size, TTL = extended rcode, version, DO.</summary>
    public void WriteOpt(ushort udpPayloadSize, int extendedRcode, byte version, bool dnssecOk)
    {
        if (!Ensure(1))
        {
            return;
        }
        _buffer[_position++] = 0; // root owner
        WriteUInt16((ushort)DnsRecordType.OPT);
        WriteUInt16(udpPayloadSize);
        uint ttl = ((uint)(extendedRcode >> 4) << 24) | ((uint)version << 16) | (dnssecOk ? 0x8000u : 0);
        WriteUInt32(ttl);
        WriteUInt16(0);
    }

    /// <summary>Any record from its RDATA bytes, as received (names inside it are left as they are, uncompressed).</summary>
    public void WriteRaw(string owner, ushort type, ushort cls, uint ttl, ReadOnlySpan<byte> rdata)
    {
        int at = BeginRecord(owner, type, cls, ttl);
        WriteBytes(rdata);
        EndRecord(at);
    }

    private bool Ensure(int count)
    {
        if (Overflowed || _position + count > _buffer.Length)
        {
            Overflowed = true;
            return false;
        }
        return true;
    }

    private readonly int FindSuffix(scoped ReadOnlySpan<byte> suffix)
    {
        for (int i = 0; i < _nameCount; i++)
        {
            if (SameName(_names[i], suffix))
            {
                return _names[i];
            }
        }
        return -1;
    }

    /// <summary>Compares the name written at <paramref name="offset"/> (following our own pointers) with a wire name, ignoring ASCII case.</summary>
    private readonly bool SameName(int offset, scoped ReadOnlySpan<byte> wire)
    {
        int w = 0;
        int o = offset;
        for (int guard = 0; guard < 256; guard++)
        {
            byte len = _buffer[o];
            if ((len & 0xC0) == 0xC0)
            {
                o = ((len & 0x3F) << 8) | _buffer[o + 1];
                continue;
            }
            if (len != wire[w])
            {
                return false;
            }
            if (len == 0)
            {
                return true;
            }
            for (int k = 1; k <= len; k++)
            {
                if (AsciiLower(_buffer[o + k]) != AsciiLower(wire[w + k]))
                {
                    return false;
                }
            }
            o += len + 1;
            w += len + 1;
        }
        return false;
    }

    private static byte AsciiLower(byte b) => b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b + 32) : b;
}
