using System.Net;
using System.Net.Sockets;

namespace Trellis.Bgp.Wire;

public enum BgpOrigin : byte
{
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// <summary>One AS_PATH segment: 1 AS_SET, 2 AS_SEQUENCE, 3/4 confederation sequence/set.</summary>
public sealed record AsPathSegment(byte Type, uint[] Asns)
{
    public const byte Set = 1;
    public const byte Sequence = 2;

    public override string ToString() => Type == Sequence ? string.Join(' ', Asns) : "{" + string.Join(',', Asns) + "}";
}

/// <summary>MP_REACH_NLRI (RFC 4760 §3): routes of another family and their next hop.</summary>
public sealed class MpReach
{
    public AfiSafi Family { get; init; }

    public IPAddress NextHop { get; init; } = IPAddress.IPv6Any;

    public IPAddress? LinkLocalNextHop { get; init; }

    public List<IPNetwork> Nlri { get; init; } = [];
}

/// <summary>MP_UNREACH_NLRI (RFC 4760 §4). Empty <see cref="Withdrawn"/> with nothing else in the UPDATE is End-of-RIB.</summary>
public sealed class MpUnreach
{
    public AfiSafi Family { get; init; }

    public List<IPNetwork> Withdrawn { get; init; } = [];
}

/// <summary>An attribute this codec does not interpret, passed along as it came.</summary>
public sealed record PathAttributeBlob(byte Flags, byte Type, byte[] Value);

/// <summary>
/// Path attributes of one UPDATE (RFC 4271 §5, 4760, 4456, 6793). One instance is shared by every
/// prefix of the UPDATE it came in, which is what keeps a 100k-route Adj-RIB-In small.
/// </summary>
public sealed class PathAttributes
{
    public const byte FlagOptional = 0x80;
    public const byte FlagTransitive = 0x40;
    public const byte FlagPartial = 0x20;
    public const byte FlagExtendedLength = 0x10;

    public const byte TypeOrigin = 1;
    public const byte TypeAsPath = 2;
    public const byte TypeNextHop = 3;
    public const byte TypeMed = 4;
    public const byte TypeLocalPref = 5;
    public const byte TypeAtomicAggregate = 6;
    public const byte TypeAggregator = 7;
    public const byte TypeCommunities = 8;
    public const byte TypeOriginatorId = 9;
    public const byte TypeClusterList = 10;
    public const byte TypeMpReach = 14;
    public const byte TypeMpUnreach = 15;
    public const byte TypeAs4Path = 17;
    public const byte TypeAs4Aggregator = 18;

    public BgpOrigin? Origin { get; set; }

    public List<AsPathSegment>? AsPath { get; set; }

    public IPAddress? NextHop { get; set; }

    public uint? Med { get; set; }

    public uint? LocalPref { get; set; }

    public bool AtomicAggregate { get; set; }

    public (uint Asn, IPAddress Address)? Aggregator { get; set; }

    public uint[]? Communities { get; set; }

    public uint? OriginatorId { get; set; }

    public uint[]? ClusterList { get; set; }

    public MpReach? MpReach { get; set; }

    public MpUnreach? MpUnreach { get; set; }

    public List<PathAttributeBlob> Unknown { get; } = [];

    /// <summary>AS numbers along the path, sequence order (sets flattened); for logging and loop checks.</summary>
    public IEnumerable<uint> PathAsns => AsPath?.SelectMany(s => s.Asns) ?? [];

    /// <summary>A copy without the NLRI-carrying attributes: what routes learned from one UPDATE share.</summary>
    public PathAttributes WithoutNlri()
    {
        var copy = (PathAttributes)MemberwiseClone();
        copy.MpUnreach = null;
        copy.MpReach = MpReach is null ? null : new MpReach { Family = MpReach.Family, NextHop = MpReach.NextHop, LinkLocalNextHop = MpReach.LinkLocalNextHop };
        return copy;
    }

    internal static byte ExpectedFlags(byte type) => type switch
    {
        TypeOrigin or TypeAsPath or TypeNextHop or TypeLocalPref or TypeAtomicAggregate => FlagTransitive,
        TypeMed or TypeOriginatorId or TypeClusterList or TypeMpReach or TypeMpUnreach => FlagOptional,
        TypeAggregator or TypeCommunities or TypeAs4Path or TypeAs4Aggregator => FlagOptional | FlagTransitive,
        _ => 0,
    };

    internal void Write(ref BgpWriter writer, bool fourOctetAs)
    {
        if (Origin is { } origin)
        {
            int at = writer.BeginAttribute(FlagTransitive, TypeOrigin);
            writer.WriteByte((byte)origin);
            writer.EndAttribute(at);
        }
        if (AsPath is { } path)
        {
            int at = writer.BeginAttribute(FlagTransitive, TypeAsPath);
            WriteSegments(ref writer, path, fourOctetAs);
            writer.EndAttribute(at);
        }
        if (NextHop is { } nextHop)
        {
            int at = writer.BeginAttribute(FlagTransitive, TypeNextHop);
            WriteAddress(ref writer, nextHop);
            writer.EndAttribute(at);
        }
        if (Med is { } med)
        {
            int at = writer.BeginAttribute(FlagOptional, TypeMed);
            writer.WriteUInt32(med);
            writer.EndAttribute(at);
        }
        if (LocalPref is { } localPref)
        {
            int at = writer.BeginAttribute(FlagTransitive, TypeLocalPref);
            writer.WriteUInt32(localPref);
            writer.EndAttribute(at);
        }
        if (AtomicAggregate)
        {
            writer.EndAttribute(writer.BeginAttribute(FlagTransitive, TypeAtomicAggregate));
        }
        if (Aggregator is { } aggregator)
        {
            int at = writer.BeginAttribute(FlagOptional | FlagTransitive, TypeAggregator);
            if (fourOctetAs)
            {
                writer.WriteUInt32(aggregator.Asn);
            }
            else
            {
                writer.WriteUInt16(aggregator.Asn > ushort.MaxValue ? OpenMessage.AsTrans : (ushort)aggregator.Asn);
            }
            WriteAddress(ref writer, aggregator.Address);
            writer.EndAttribute(at);
        }
        if (Communities is { } communities)
        {
            int at = writer.BeginAttribute(FlagOptional | FlagTransitive, TypeCommunities);
            foreach (uint c in communities)
            {
                writer.WriteUInt32(c);
            }
            writer.EndAttribute(at);
        }
        if (OriginatorId is { } originatorId)
        {
            int at = writer.BeginAttribute(FlagOptional, TypeOriginatorId);
            writer.WriteUInt32(originatorId);
            writer.EndAttribute(at);
        }
        if (ClusterList is { } clusterList)
        {
            int at = writer.BeginAttribute(FlagOptional, TypeClusterList);
            foreach (uint id in clusterList)
            {
                writer.WriteUInt32(id);
            }
            writer.EndAttribute(at);
        }
        if (MpReach is { } reach)
        {
            int at = writer.BeginAttribute(FlagOptional, TypeMpReach);
            writer.WriteUInt16(reach.Family.Afi);
            writer.WriteByte(reach.Family.Safi);
            int nextHopLength = writer.ReserveByte();
            WriteAddress(ref writer, reach.NextHop);
            if (reach.LinkLocalNextHop is { } linkLocal)
            {
                WriteAddress(ref writer, linkLocal);
            }
            writer.PatchByte(nextHopLength, (byte)(writer.Position - nextHopLength - 1));
            writer.WriteByte(0);
            foreach (var prefix in reach.Nlri)
            {
                Prefixes.Write(ref writer, prefix);
            }
            writer.EndAttribute(at);
        }
        if (MpUnreach is { } unreach)
        {
            int at = writer.BeginAttribute(FlagOptional, TypeMpUnreach);
            writer.WriteUInt16(unreach.Family.Afi);
            writer.WriteByte(unreach.Family.Safi);
            foreach (var prefix in unreach.Withdrawn)
            {
                Prefixes.Write(ref writer, prefix);
            }
            writer.EndAttribute(at);
        }
        // A 2-octet session carries the real path in AS4_PATH when any AS needs 4 octets (RFC 6793 §4.2.2).
        if (!fourOctetAs && AsPath is { } p2 && p2.Any(s => s.Asns.Any(a => a > ushort.MaxValue)))
        {
            int at = writer.BeginAttribute(FlagOptional | FlagTransitive, TypeAs4Path);
            WriteSegments(ref writer, p2, fourOctet: true);
            writer.EndAttribute(at);
        }
        foreach (var raw in Unknown)
        {
            int at = writer.BeginAttribute(raw.Flags, raw.Type);
            writer.WriteBytes(raw.Value);
            writer.EndAttribute(at);
        }
    }

    private static void WriteSegments(ref BgpWriter writer, List<AsPathSegment> path, bool fourOctet)
    {
        foreach (var segment in path)
        {
            // A segment holds at most 255 ASes; longer ones are split.
            for (int offset = 0; offset < segment.Asns.Length; offset += 255)
            {
                int count = Math.Min(255, segment.Asns.Length - offset);
                writer.WriteByte(segment.Type);
                writer.WriteByte((byte)count);
                for (int i = offset; i < offset + count; i++)
                {
                    uint asn = segment.Asns[i];
                    if (fourOctet)
                    {
                        writer.WriteUInt32(asn);
                    }
                    else
                    {
                        writer.WriteUInt16(asn > ushort.MaxValue ? OpenMessage.AsTrans : (ushort)asn);
                    }
                }
            }
        }
    }

    private static void WriteAddress(ref BgpWriter writer, IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int n);
        writer.WriteBytes(bytes[..n]);
    }

    internal static bool IsUsableNextHop(IPAddress nextHop)
    {
        if (nextHop.AddressFamily != AddressFamily.InterNetwork)
        {
            return !nextHop.Equals(IPAddress.IPv6Any) && !nextHop.IsIPv6Multicast;
        }
        Span<byte> b = stackalloc byte[4];
        nextHop.TryWriteBytes(b, out _);
        // 0.0.0.0/8, multicast and class E are never a next hop (RFC 4271 §6.3).
        return b[0] != 0 && b[0] < 224;
    }
}
