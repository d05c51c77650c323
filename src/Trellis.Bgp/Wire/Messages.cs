using System.Net;

namespace Trellis.Bgp.Wire;

public enum BgpMessageType : byte
{
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

/// <summary>The 19-byte header every message starts with (RFC 4271 §4.1).</summary>
public static class BgpHeader
{
    public const int Length = 19;
    public const int MaxMessageLength = 4096;

    /// <summary>Validates a header; returns the type and the whole message length (header included).</summary>
    public static (BgpMessageType Type, int Length) Parse(ReadOnlySpan<byte> header)
    {
        var reader = new BgpReader(header, new BgpError(BgpError.MessageHeader, BgpError.BadMessageLength));
        var marker = reader.ReadBytes(16);
        if (marker.IndexOfAnyExcept((byte)0xff) >= 0)
        {
            throw new BgpMessageException(new BgpError(BgpError.MessageHeader, BgpError.ConnectionNotSynchronized), "marker is not all ones");
        }
        ushort length = reader.ReadUInt16();
        byte type = reader.ReadByte();
        var badLength = new BgpError(BgpError.MessageHeader, BgpError.BadMessageLength, [(byte)(length >> 8), (byte)length]);
        if (length < Length || length > MaxMessageLength)
        {
            throw new BgpMessageException(badLength, $"length {length}");
        }
        int minimum = type switch
        {
            (byte)BgpMessageType.Open => 29,
            (byte)BgpMessageType.Update => 23,
            (byte)BgpMessageType.Notification => 21,
            (byte)BgpMessageType.Keepalive => 19,
            (byte)BgpMessageType.RouteRefresh => 23,
            _ => throw new BgpMessageException(new BgpError(BgpError.MessageHeader, BgpError.BadMessageType, [type]), $"type {type}"),
        };
        if (length < minimum || (type == (byte)BgpMessageType.Keepalive && length != 19) || (type == (byte)BgpMessageType.RouteRefresh && length != 23))
        {
            throw new BgpMessageException(badLength, $"length {length} for type {type}");
        }
        return ((BgpMessageType)type, length);
    }

    public static int Begin(ref BgpWriter writer, BgpMessageType type)
    {
        int start = writer.Position;
        for (int i = 0; i < 16; i++)
        {
            writer.WriteByte(0xff);
        }
        writer.ReserveUInt16();
        writer.WriteByte((byte)type);
        return start;
    }

    public static int End(ref BgpWriter writer, int start)
    {
        int length = writer.Position - start;
        if (length > MaxMessageLength)
        {
            throw new BgpEncodeException($"message of {length} bytes exceeds {MaxMessageLength}");
        }
        writer.PatchUInt16(start + 16, (ushort)length);
        return length;
    }
}

/// <summary>OPEN (RFC 4271 §4.2) with capabilities (RFC 5492) and the 4-octet AS (RFC 6793).</summary>
public sealed class OpenMessage
{
    public const ushort AsTrans = 23456;

    public byte Version { get; init; } = 4;

    /// <summary>The sender's AS: the 4-octet capability if present, else the 2-byte field.</summary>
    public uint Asn { get; init; }

    public ushort HoldTime { get; init; }

    public uint RouterId { get; init; }

    public BgpCapabilities Capabilities { get; init; } = new();

    public IPAddress RouterIdAddress => new(IPAddress.HostToNetworkOrder((int)RouterId) & 0xffffffffL);

    public static uint RouterIdOf(IPAddress address)
    {
        Span<byte> b = stackalloc byte[4];
        if (!address.TryWriteBytes(b, out int n) || n != 4)
        {
            throw new ArgumentException("router id must be an IPv4 address", nameof(address));
        }
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    /// <summary>Decodes the body (after the header).</summary>
    public static OpenMessage Decode(ReadOnlySpan<byte> body)
    {
        var reader = new BgpReader(body, new BgpError(BgpError.MessageHeader, BgpError.BadMessageLength));
        byte version = reader.ReadByte();
        if (version != 4)
        {
            throw new BgpMessageException(new BgpError(BgpError.OpenMessage, BgpError.UnsupportedVersionNumber, [0, 4]), $"version {version}");
        }
        ushort myAs = reader.ReadUInt16();
        ushort holdTime = reader.ReadUInt16();
        if (holdTime is 1 or 2)
        {
            throw new BgpMessageException(new BgpError(BgpError.OpenMessage, BgpError.UnacceptableHoldTime), $"hold time {holdTime}");
        }
        uint routerId = reader.ReadUInt32();
        if (routerId == 0)
        {
            throw new BgpMessageException(new BgpError(BgpError.OpenMessage, BgpError.BadBgpIdentifier), "BGP identifier 0");
        }
        int optionalLength = reader.ReadByte();
        if (optionalLength != reader.Remaining)
        {
            throw new BgpMessageException(new BgpError(BgpError.MessageHeader, BgpError.BadMessageLength), $"optional parameters length {optionalLength}, {reader.Remaining} bytes left");
        }
        var capabilities = new BgpCapabilities();
        while (!reader.IsEmpty)
        {
            byte type = reader.ReadByte();
            var value = reader.ReadBytes(reader.ReadByte());
            if (type != 2)
            {
                throw new BgpMessageException(new BgpError(BgpError.OpenMessage, BgpError.UnsupportedOptionalParameter), $"optional parameter {type}");
            }
            capabilities.Read(value);
        }
        uint asn = capabilities.FourOctetAs ?? myAs;
        return new OpenMessage { Version = version, Asn = asn, HoldTime = holdTime, RouterId = routerId, Capabilities = capabilities };
    }

    public int Encode(Span<byte> destination)
    {
        var writer = new BgpWriter(destination);
        int start = BgpHeader.Begin(ref writer, BgpMessageType.Open);
        writer.WriteByte(Version);
        writer.WriteUInt16(Asn > ushort.MaxValue ? AsTrans : (ushort)Asn);
        writer.WriteUInt16(HoldTime);
        writer.WriteUInt32(RouterId);
        int optionalLength = writer.ReserveByte();
        // One capabilities parameter holding them all; every implementation accepts that form.
        writer.WriteByte(2);
        int capabilitiesLength = writer.ReserveByte();
        Capabilities.Write(ref writer);
        writer.PatchByte(capabilitiesLength, (byte)(writer.Position - capabilitiesLength - 1));
        writer.PatchByte(optionalLength, (byte)(writer.Position - optionalLength - 1));
        return BgpHeader.End(ref writer, start);
    }
}

/// <summary>NOTIFICATION (RFC 4271 §4.5).</summary>
public sealed record NotificationMessage(BgpError Error)
{
    public static NotificationMessage Decode(ReadOnlySpan<byte> body)
    {
        var reader = new BgpReader(body, new BgpError(BgpError.MessageHeader, BgpError.BadMessageLength));
        byte code = reader.ReadByte();
        byte subcode = reader.ReadByte();
        return new NotificationMessage(new BgpError(code, subcode, reader.ReadRest().ToArray()));
    }

    public int Encode(Span<byte> destination)
    {
        var writer = new BgpWriter(destination);
        int start = BgpHeader.Begin(ref writer, BgpMessageType.Notification);
        writer.WriteByte(Error.Code);
        writer.WriteByte(Error.Subcode);
        var data = Error.Data ?? [];
        // Data is informational; truncate rather than fail to tell the peer why we close.
        writer.WriteBytes(data.AsSpan(0, Math.Min(data.Length, writer.Remaining)));
        return BgpHeader.End(ref writer, start);
    }
}

/// <summary>ROUTE-REFRESH (RFC 2918).</summary>
public sealed record RouteRefreshMessage(AfiSafi Family)
{
    public static RouteRefreshMessage Decode(ReadOnlySpan<byte> body)
    {
        var reader = new BgpReader(body, new BgpError(BgpError.MessageHeader, BgpError.BadMessageLength));
        ushort afi = reader.ReadUInt16();
        reader.ReadByte();
        return new RouteRefreshMessage(new AfiSafi(afi, reader.ReadByte()));
    }

    public int Encode(Span<byte> destination)
    {
        var writer = new BgpWriter(destination);
        int start = BgpHeader.Begin(ref writer, BgpMessageType.RouteRefresh);
        writer.WriteUInt16(Family.Afi);
        writer.WriteByte(0);
        writer.WriteByte(Family.Safi);
        return BgpHeader.End(ref writer, start);
    }
}

public static class KeepaliveMessage
{
    public static int Encode(Span<byte> destination)
    {
        var writer = new BgpWriter(destination);
        int start = BgpHeader.Begin(ref writer, BgpMessageType.Keepalive);
        return BgpHeader.End(ref writer, start);
    }
}
