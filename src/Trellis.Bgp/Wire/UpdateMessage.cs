using System.Net;

namespace Trellis.Bgp.Wire;

/// <summary>What the session negotiated that changes how an UPDATE is read.</summary>
public readonly record struct BgpDecodeContext(bool FourOctetAs, bool Internal);

/// <summary>
/// UPDATE (RFC 4271 §4.3, 4760). Decoding follows RFC 7606: errors that leave the message's framing
/// intact are "treat-as-withdraw" (<see cref="TreatAsWithdraw"/>) or "attribute discard"
/// (<see cref="Problems"/>); only framing and NLRI errors throw <see cref="BgpMessageException"/>,
/// which ends the session with that NOTIFICATION.
/// </summary>
public sealed class UpdateMessage
{
    public List<IPNetwork> Withdrawn { get; init; } = [];

    public PathAttributes? Attributes { get; set; }

    public List<IPNetwork> Nlri { get; init; } = [];

    /// <summary>An attribute was malformed: every prefix this UPDATE announces must be handled as withdrawn.</summary>
    public bool TreatAsWithdraw { get; private set; }

    /// <summary>Errors handled without a reset (treat-as-withdraw, discarded attributes), for logs.</summary>
    public List<string> Problems { get; } = [];

    /// <summary>Every prefix this UPDATE makes reachable, classic and multiprotocol.</summary>
    public IEnumerable<IPNetwork> Announced => Attributes?.MpReach is { } reach ? Nlri.Concat(reach.Nlri) : Nlri;

    /// <summary>Every prefix this UPDATE withdraws, classic and multiprotocol.</summary>
    public IEnumerable<IPNetwork> AllWithdrawn => Attributes?.MpUnreach is { } unreach ? Withdrawn.Concat(unreach.Withdrawn) : Withdrawn;

    /// <summary>End-of-RIB marker (RFC 4724 §2): an empty UPDATE (IPv4) or one with only an empty MP_UNREACH.</summary>
    public bool IsEndOfRib(out AfiSafi family)
    {
        family = AfiSafi.Ipv4Unicast;
        if (Withdrawn.Count != 0 || Nlri.Count != 0)
        {
            return false;
        }
        if (Attributes is null)
        {
            return true;
        }
        var a = Attributes;
        if (a.MpUnreach is { Withdrawn.Count: 0 } unreach && a.MpReach is null && a.Origin is null && a.AsPath is null && a.NextHop is null)
        {
            family = unreach.Family;
            return true;
        }
        return false;
    }

    public static UpdateMessage EndOfRib(AfiSafi family) =>
        family == AfiSafi.Ipv4Unicast ? new UpdateMessage() : new UpdateMessage { Attributes = new PathAttributes { MpUnreach = new MpUnreach { Family = family } } };

    public static UpdateMessage Decode(ReadOnlySpan<byte> body, BgpDecodeContext context)
    {
        var malformedList = new BgpError(BgpError.UpdateMessage, BgpError.MalformedAttributeList);
        var reader = new BgpReader(body, malformedList);
        int withdrawnLength = reader.ReadUInt16();
        if (withdrawnLength > reader.Remaining - 2)
        {
            throw new BgpMessageException(malformedList, $"withdrawn routes length {withdrawnLength} overruns the message");
        }
        var withdrawn = reader.ReadBytes(withdrawnLength);
        int attributesLength = reader.ReadUInt16();
        if (attributesLength > reader.Remaining)
        {
            throw new BgpMessageException(malformedList, $"total path attribute length {attributesLength} overruns the message");
        }
        var attributes = reader.ReadBytes(attributesLength);
        var nlri = reader.ReadRest();

        var update = new UpdateMessage();
        var invalidNetwork = new BgpError(BgpError.UpdateMessage, BgpError.InvalidNetworkField);
        Prefixes.ReadAll(withdrawn, ipv6: false, update.Withdrawn, invalidNetwork);
        Prefixes.ReadAll(nlri, ipv6: false, update.Nlri, invalidNetwork);
        if (attributesLength > 0)
        {
            update.Attributes = update.DecodeAttributes(attributes, context);
        }
        if (!update.TreatAsWithdraw && update.Attributes is { } a && (update.Nlri.Count > 0 || a.MpReach is { Nlri.Count: > 0 }))
        {
            update.CheckMandatory(a, context);
        }
        return update;
    }

    private void CheckMandatory(PathAttributes a, BgpDecodeContext context)
    {
        // Missing well-known attributes are treat-as-withdraw under RFC 7606 §3(d), not a reset.
        if (a.Origin is null)
        {
            Withdraw("missing ORIGIN");
        }
        else if (a.AsPath is null)
        {
            Withdraw("missing AS_PATH");
        }
        else if (Nlri.Count > 0 && a.NextHop is null)
        {
            Withdraw("missing NEXT_HOP");
        }
        else if (context.Internal && a.LocalPref is null)
        {
            Withdraw("missing LOCAL_PREF on an internal session");
        }
    }

    private void Withdraw(string why)
    {
        TreatAsWithdraw = true;
        Problems.Add("treat-as-withdraw: " + why);
    }

    private PathAttributes DecodeAttributes(ReadOnlySpan<byte> data, BgpDecodeContext context)
    {
        var attributes = new PathAttributes();
        Span<bool> seen = stackalloc bool[256];
        List<AsPathSegment>? as4Path = null;
        while (!data.IsEmpty)
        {
            if (data.Length < 3 || ((data[0] & PathAttributes.FlagExtendedLength) != 0 && data.Length < 4))
            {
                // RFC 7606 §4: fewer octets than an attribute header: treat-as-withdraw.
                Withdraw("truncated attribute header");
                break;
            }
            byte flags = data[0];
            byte type = data[1];
            bool extended = (flags & PathAttributes.FlagExtendedLength) != 0;
            int length = extended ? (data[2] << 8) | data[3] : data[2];
            int headerLength = extended ? 4 : 3;
            if (length > data.Length - headerLength)
            {
                if (type is PathAttributes.TypeMpReach or PathAttributes.TypeMpUnreach)
                {
                    // Its NLRI cannot be located, so it cannot be withdrawn either (RFC 7606 §5.3).
                    throw new BgpMessageException(new BgpError(BgpError.UpdateMessage, BgpError.OptionalAttributeError), $"attribute {type} length {length} overruns the attributes");
                }
                Withdraw($"attribute {type} length {length} overruns the attributes");
                break;
            }
            var value = data.Slice(headerLength, length);
            data = data[(headerLength + length)..];
            if (seen[type])
            {
                if (type is PathAttributes.TypeMpReach or PathAttributes.TypeMpUnreach)
                {
                    throw new BgpMessageException(new BgpError(BgpError.UpdateMessage, BgpError.MalformedAttributeList), $"attribute {type} appears twice");
                }
                Problems.Add($"discarded duplicate attribute {type}");
                continue;
            }
            seen[type] = true;
            byte expected = PathAttributes.ExpectedFlags(type);
            bool flagsOk = expected == 0 || (flags & (PathAttributes.FlagOptional | PathAttributes.FlagTransitive)) == expected;
            switch (type)
            {
                case PathAttributes.TypeOrigin:
                    if (!flagsOk || length != 1 || value[0] > 2)
                    {
                        Withdraw("malformed ORIGIN");
                    }
                    else
                    {
                        attributes.Origin = (BgpOrigin)value[0];
                    }
                    break;
                case PathAttributes.TypeAsPath:
                    if (flagsOk && ReadSegments(value, context.FourOctetAs) is { } path)
                    {
                        attributes.AsPath = path;
                    }
                    else
                    {
                        Withdraw("malformed AS_PATH");
                    }
                    break;
                case PathAttributes.TypeNextHop:
                    if (!flagsOk || length != 4 || !PathAttributes.IsUsableNextHop(new IPAddress(value)))
                    {
                        Withdraw("malformed NEXT_HOP");
                    }
                    else
                    {
                        attributes.NextHop = new IPAddress(value);
                    }
                    break;
                case PathAttributes.TypeMed:
                    if (!flagsOk || length != 4)
                    {
                        Withdraw("malformed MULTI_EXIT_DISC");
                    }
                    else
                    {
                        attributes.Med = ReadUInt32(value);
                    }
                    break;
                case PathAttributes.TypeLocalPref:
                    if (!context.Internal)
                    {
                        // RFC 7606 §7.5: from an external peer it is discarded whatever it holds.
                        Problems.Add("discarded LOCAL_PREF from an external peer");
                    }
                    else if (!flagsOk || length != 4)
                    {
                        Withdraw("malformed LOCAL_PREF");
                    }
                    else
                    {
                        attributes.LocalPref = ReadUInt32(value);
                    }
                    break;
                case PathAttributes.TypeAtomicAggregate:
                    if (!flagsOk || length != 0)
                    {
                        Problems.Add("discarded malformed ATOMIC_AGGREGATE");
                    }
                    else
                    {
                        attributes.AtomicAggregate = true;
                    }
                    break;
                case PathAttributes.TypeAggregator:
                    int asLength = context.FourOctetAs ? 4 : 2;
                    if (!flagsOk || length != asLength + 4)
                    {
                        Problems.Add("discarded malformed AGGREGATOR");
                    }
                    else
                    {
                        uint asn = asLength == 4 ? ReadUInt32(value) : (uint)((value[0] << 8) | value[1]);
                        attributes.Aggregator = (asn, new IPAddress(value[asLength..]));
                    }
                    break;
                case PathAttributes.TypeCommunities:
                    if (!flagsOk || length == 0 || length % 4 != 0)
                    {
                        Withdraw("malformed COMMUNITIES");
                    }
                    else
                    {
                        attributes.Communities = ReadUInt32s(value);
                    }
                    break;
                case PathAttributes.TypeOriginatorId:
                    if (!flagsOk || length != 4)
                    {
                        Withdraw("malformed ORIGINATOR_ID");
                    }
                    else
                    {
                        attributes.OriginatorId = ReadUInt32(value);
                    }
                    break;
                case PathAttributes.TypeClusterList:
                    if (!flagsOk || length == 0 || length % 4 != 0)
                    {
                        Withdraw("malformed CLUSTER_LIST");
                    }
                    else
                    {
                        attributes.ClusterList = ReadUInt32s(value);
                    }
                    break;
                case PathAttributes.TypeMpReach:
                    attributes.MpReach = ReadMpReach(value, flagsOk);
                    break;
                case PathAttributes.TypeMpUnreach:
                    attributes.MpUnreach = ReadMpUnreach(value, flagsOk);
                    break;
                case PathAttributes.TypeAs4Path:
                    // RFC 6793 §6: a malformed AS4_PATH is discarded; on a 4-octet session it is ignored anyway.
                    as4Path = flagsOk ? ReadSegments(value, fourOctet: true) : null;
                    if (as4Path is null)
                    {
                        Problems.Add("discarded malformed AS4_PATH");
                    }
                    break;
                case PathAttributes.TypeAs4Aggregator:
                    if (!flagsOk || length != 8)
                    {
                        Problems.Add("discarded malformed AS4_AGGREGATOR");
                    }
                    else if (!context.FourOctetAs && attributes.Aggregator is { Asn: OpenMessage.AsTrans })
                    {
                        attributes.Aggregator = (ReadUInt32(value), new IPAddress(value[4..]));
                    }
                    break;
                default:
                    if ((flags & PathAttributes.FlagOptional) == 0)
                    {
                        throw new BgpMessageException(new BgpError(BgpError.UpdateMessage, BgpError.UnrecognizedWellKnownAttribute, [flags, type, (byte)length]), $"unrecognized well-known attribute {type}");
                    }
                    attributes.Unknown.Add(new PathAttributeBlob(flags, type, value.ToArray()));
                    break;
            }
        }
        if (!context.FourOctetAs && as4Path is not null && attributes.AsPath is { } twoOctet)
        {
            attributes.AsPath = MergeAs4Path(twoOctet, as4Path);
        }
        return attributes;
    }

    private static MpReach ReadMpReach(ReadOnlySpan<byte> value, bool flagsOk)
    {
        var error = new BgpError(BgpError.UpdateMessage, BgpError.OptionalAttributeError);
        if (!flagsOk)
        {
            throw new BgpMessageException(error, "MP_REACH_NLRI flags");
        }
        var reader = new BgpReader(value, error);
        var family = new AfiSafi(reader.ReadUInt16(), reader.ReadByte());
        int nextHopLength = reader.ReadByte();
        var nextHop = reader.ReadBytes(nextHopLength);
        reader.ReadByte();
        var reach = new MpReach { Family = family, NextHop = IPAddress.IPv6Any };
        if (family != AfiSafi.Ipv4Unicast && family != AfiSafi.Ipv6Unicast)
        {
            // A family we did not negotiate: its routes are not ours to read.
            return reach;
        }
        IPAddress hop;
        IPAddress? linkLocal = null;
        switch (nextHopLength)
        {
            case 4 or 16:
                hop = new IPAddress(nextHop);
                break;
            case 32:
                hop = new IPAddress(nextHop[..16]);
                linkLocal = new IPAddress(nextHop[16..]);
                break;
            default:
                throw new BgpMessageException(error, $"MP_REACH_NLRI next hop length {nextHopLength}");
        }
        reach = new MpReach { Family = family, NextHop = hop, LinkLocalNextHop = linkLocal };
        Prefixes.ReadAll(reader.ReadRest(), family.Afi == AfiSafi.AfiIpv6, reach.Nlri, error);
        return reach;
    }

    private static MpUnreach ReadMpUnreach(ReadOnlySpan<byte> value, bool flagsOk)
    {
        var error = new BgpError(BgpError.UpdateMessage, BgpError.OptionalAttributeError);
        if (!flagsOk)
        {
            throw new BgpMessageException(error, "MP_UNREACH_NLRI flags");
        }
        var reader = new BgpReader(value, error);
        var family = new AfiSafi(reader.ReadUInt16(), reader.ReadByte());
        var unreach = new MpUnreach { Family = family };
        if (family == AfiSafi.Ipv4Unicast || family == AfiSafi.Ipv6Unicast)
        {
            Prefixes.ReadAll(reader.ReadRest(), family.Afi == AfiSafi.AfiIpv6, unreach.Withdrawn, error);
        }
        return unreach;
    }

    private static List<AsPathSegment>? ReadSegments(ReadOnlySpan<byte> value, bool fourOctet)
    {
        int size = fourOctet ? 4 : 2;
        var segments = new List<AsPathSegment>();
        while (!value.IsEmpty)
        {
            if (value.Length < 2)
            {
                return null;
            }
            byte type = value[0];
            int count = value[1];
            if (type is < 1 or > 4 || count == 0 || value.Length < 2 + (count * size))
            {
                return null;
            }
            var asns = new uint[count];
            for (int i = 0; i < count; i++)
            {
                var at = value.Slice(2 + (i * size), size);
                asns[i] = fourOctet ? ReadUInt32(at) : (uint)((at[0] << 8) | at[1]);
            }
            segments.Add(new AsPathSegment(type, asns));
            value = value[(2 + (count * size))..];
        }
        return segments;
    }

    // RFC 6793 §4.2.3: keep the leading ASes AS4_PATH does not cover, then append AS4_PATH.
    private static List<AsPathSegment> MergeAs4Path(List<AsPathSegment> asPath, List<AsPathSegment> as4Path)
    {
        int count2 = asPath.Sum(s => s.Type == AsPathSegment.Sequence ? s.Asns.Length : 1);
        int count4 = as4Path.Sum(s => s.Type == AsPathSegment.Sequence ? s.Asns.Length : 1);
        if (count4 > count2)
        {
            return asPath;
        }
        var leading = asPath.SelectMany(s => s.Asns).Take(count2 - count4).ToArray();
        var merged = new List<AsPathSegment>();
        if (leading.Length > 0)
        {
            merged.Add(new AsPathSegment(AsPathSegment.Sequence, leading));
        }
        merged.AddRange(as4Path);
        return merged;
    }

    private static uint ReadUInt32(ReadOnlySpan<byte> b) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b);

    private static uint[] ReadUInt32s(ReadOnlySpan<byte> value)
    {
        var result = new uint[value.Length / 4];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = ReadUInt32(value[(i * 4)..]);
        }
        return result;
    }

    public int Encode(Span<byte> destination, bool fourOctetAs)
    {
        var writer = new BgpWriter(destination);
        int start = BgpHeader.Begin(ref writer, BgpMessageType.Update);
        int withdrawnLength = writer.ReserveUInt16();
        foreach (var prefix in Withdrawn)
        {
            Prefixes.Write(ref writer, prefix);
        }
        writer.PatchUInt16(withdrawnLength, (ushort)(writer.Position - withdrawnLength - 2));
        int attributesLength = writer.ReserveUInt16();
        Attributes?.Write(ref writer, fourOctetAs);
        writer.PatchUInt16(attributesLength, (ushort)(writer.Position - attributesLength - 2));
        foreach (var prefix in Nlri)
        {
            Prefixes.Write(ref writer, prefix);
        }
        return BgpHeader.End(ref writer, start);
    }

    public byte[] ToBytes(bool fourOctetAs = true)
    {
        Span<byte> buffer = stackalloc byte[BgpHeader.MaxMessageLength + 1];
        int length = Encode(buffer, fourOctetAs);
        return buffer[..length].ToArray();
    }
}
