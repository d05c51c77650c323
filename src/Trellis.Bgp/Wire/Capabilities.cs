namespace Trellis.Bgp.Wire;

/// <summary>Graceful restart capability (RFC 4724 §3): restart flags, restart time, and per-family forwarding state.</summary>
public sealed record GracefulRestartCapability(bool Restarting, bool Notification, ushort RestartTime, IReadOnlyList<GracefulRestartFamily> Families)
{
    public bool Covers(AfiSafi family) => Families.Any(f => f.Family == family);
}

public readonly record struct GracefulRestartFamily(AfiSafi Family, bool ForwardingPreserved);

/// <summary>Capabilities carried in OPEN (RFC 5492); unknown ones are kept so they can be logged.</summary>
public sealed class BgpCapabilities
{
    public const byte CodeMultiprotocol = 1;
    public const byte CodeRouteRefresh = 2;
    public const byte CodeGracefulRestart = 64;
    public const byte CodeFourOctetAs = 65;
    public const byte CodeEnhancedRouteRefresh = 70;
    public const byte CodeRouteRefreshCisco = 128;

    public List<AfiSafi> Multiprotocol { get; } = [];

    public bool RouteRefresh { get; set; }

    public uint? FourOctetAs { get; set; }

    public GracefulRestartCapability? GracefulRestart { get; set; }

    public List<(byte Code, byte[] Value)> Unknown { get; } = [];

    /// <summary>Families both sides may use; a speaker with no MP capability speaks IPv4 unicast only (RFC 4760 §8).</summary>
    public static IReadOnlyList<AfiSafi> Negotiated(BgpCapabilities local, BgpCapabilities remote)
    {
        var mine = local.Multiprotocol.Count == 0 ? [AfiSafi.Ipv4Unicast] : local.Multiprotocol;
        var theirs = remote.Multiprotocol.Count == 0 ? [AfiSafi.Ipv4Unicast] : remote.Multiprotocol;
        return [.. mine.Intersect(theirs)];
    }

    internal void Read(ReadOnlySpan<byte> parameter)
    {
        var error = new BgpError(BgpError.OpenMessage, 0);
        var reader = new BgpReader(parameter, error);
        while (!reader.IsEmpty)
        {
            byte code = reader.ReadByte();
            var value = reader.ReadBytes(reader.ReadByte());
            var v = new BgpReader(value, error);
            switch (code)
            {
                case CodeMultiprotocol when value.Length == 4:
                    ushort afi = v.ReadUInt16();
                    v.ReadByte();
                    var family = new AfiSafi(afi, v.ReadByte());
                    if (!Multiprotocol.Contains(family))
                    {
                        Multiprotocol.Add(family);
                    }
                    break;
                case CodeRouteRefresh or CodeRouteRefreshCisco:
                    RouteRefresh = true;
                    break;
                case CodeFourOctetAs when value.Length == 4:
                    FourOctetAs = v.ReadUInt32();
                    break;
                case CodeGracefulRestart when value.Length >= 2 && (value.Length - 2) % 4 == 0:
                    ushort flagsAndTime = v.ReadUInt16();
                    var families = new List<GracefulRestartFamily>();
                    while (!v.IsEmpty)
                    {
                        ushort fafi = v.ReadUInt16();
                        byte fsafi = v.ReadByte();
                        byte fflags = v.ReadByte();
                        families.Add(new GracefulRestartFamily(new AfiSafi(fafi, fsafi), (fflags & 0x80) != 0));
                    }
                    GracefulRestart = new GracefulRestartCapability((flagsAndTime & 0x8000) != 0, (flagsAndTime & 0x4000) != 0, (ushort)(flagsAndTime & 0x0fff), families);
                    break;
                default:
                    // Unknown capabilities, and known ones of the wrong size, are ignored (RFC 5492 §3).
                    Unknown.Add((code, value.ToArray()));
                    break;
            }
        }
    }

    internal void Write(ref BgpWriter writer)
    {
        foreach (var family in Multiprotocol)
        {
            writer.WriteByte(CodeMultiprotocol);
            writer.WriteByte(4);
            writer.WriteUInt16(family.Afi);
            writer.WriteByte(0);
            writer.WriteByte(family.Safi);
        }
        if (RouteRefresh)
        {
            writer.WriteByte(CodeRouteRefresh);
            writer.WriteByte(0);
        }
        if (GracefulRestart is { } gr)
        {
            writer.WriteByte(CodeGracefulRestart);
            writer.WriteByte((byte)(2 + (4 * gr.Families.Count)));
            writer.WriteUInt16((ushort)((gr.Restarting ? 0x8000 : 0) | (gr.Notification ? 0x4000 : 0) | (gr.RestartTime & 0x0fff)));
            foreach (var f in gr.Families)
            {
                writer.WriteUInt16(f.Family.Afi);
                writer.WriteByte(f.Family.Safi);
                writer.WriteByte(f.ForwardingPreserved ? (byte)0x80 : (byte)0);
            }
        }
        if (FourOctetAs is { } asn)
        {
            writer.WriteByte(CodeFourOctetAs);
            writer.WriteByte(4);
            writer.WriteUInt32(asn);
        }
        foreach (var (code, value) in Unknown)
        {
            writer.WriteByte(code);
            writer.WriteByte((byte)value.Length);
            writer.WriteBytes(value);
        }
    }
}
