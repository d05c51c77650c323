using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;

namespace Trellis.Core.Dns;

/// <summary>The RR types the cluster zone holds (RFC numbers, so the server casts them to the wire).</summary>
#pragma warning disable CA1720 // PTR is the RFC's name for the type, not a C# type name
public static class ZoneRecordType
{
    public const ushort A = 1;
    public const ushort NS = 2;
    public const ushort CNAME = 5;
    public const ushort SOA = 6;
    public const ushort PTR = 12;
    public const ushort TXT = 16;
    public const ushort AAAA = 28;
    public const ushort SRV = 33;
    public const ushort ANY = 255;
}
#pragma warning restore CA1720

/// <summary>Response codes the zone returns (RFC 1035 §4.1.1).</summary>
public enum ZoneRcode
{
    NoError = 0,
    ServFail = 2,
    NXDomain = 3,
    Refused = 5,
}

/// <summary>One record. Names are lower-case, fully qualified, with the trailing dot.</summary>
public abstract record ZoneRecord(string Name, ushort Type, uint Ttl)
{
    public abstract string DataText { get; }

    /// <summary>Zone-file form, for test tables and dumps: "web.default.svc.cluster.local. 30 IN A 10.96.0.5".</summary>
    public override string ToString() => $"{Name} {Ttl} IN {TypeName(Type)} {DataText}";

    public static string TypeName(ushort type) => type switch
    {
        ZoneRecordType.A => "A",
        ZoneRecordType.NS => "NS",
        ZoneRecordType.CNAME => "CNAME",
        ZoneRecordType.SOA => "SOA",
        ZoneRecordType.PTR => "PTR",
        ZoneRecordType.TXT => "TXT",
        ZoneRecordType.AAAA => "AAAA",
        ZoneRecordType.SRV => "SRV",
        ZoneRecordType.ANY => "ANY",
        _ => $"TYPE{type}",
    };
}

public sealed record AddressRecord(string Name, uint Ttl, IPAddress Address)
    : ZoneRecord(Name, Address.AddressFamily == AddressFamily.InterNetworkV6 ? ZoneRecordType.AAAA : ZoneRecordType.A, Ttl)
{
    public override string DataText => Address.ToString();
}

/// <summary>CNAME, PTR or NS: the data is one name.</summary>
public sealed record TargetRecord(string Name, ushort Type, uint Ttl, string Target) : ZoneRecord(Name, Type, Ttl)
{
    public override string DataText => Target;
}

public sealed record SrvRecord(string Name, uint Ttl, ushort Priority, ushort Weight, ushort Port, string Target) : ZoneRecord(Name, ZoneRecordType.SRV, Ttl)
{
    public override string DataText => $"{Priority} {Weight} {Port} {Target}";
}

public sealed record TxtRecord(string Name, uint Ttl, string Text) : ZoneRecord(Name, ZoneRecordType.TXT, Ttl)
{
    public override string DataText => $"\"{Text}\"";
}

public sealed record SoaRecord(string Name, uint Ttl, string MName, string RName, uint Serial, uint Refresh, uint Retry, uint Expire, uint Minimum)
    : ZoneRecord(Name, ZoneRecordType.SOA, Ttl)
{
    public override string DataText => $"{MName} {RName} {Serial} {Refresh} {Retry} {Expire} {Minimum}";
}

public enum ZoneAnswerKind
{
    /// <summary>Answered from the zone, authoritatively (positive or negative).</summary>
    Authoritative,

    /// <summary>Not a cluster name (or a reverse name of an address the cluster does not own): forward it, or refuse without upstreams.</summary>
    Forward,
}

/// <summary>
/// The zone's answer to one question. When <see cref="ChaseName"/> is set the answer ends in a CNAME to a
/// name outside the cluster (an ExternalName Service); the server resolves that name upstream and appends it.
/// </summary>
public sealed record ZoneAnswer(
    ZoneAnswerKind Kind,
    ZoneRcode Rcode,
    ImmutableArray<ZoneRecord> Answer,
    ImmutableArray<ZoneRecord> Authority,
    ImmutableArray<ZoneRecord> Additional,
    string? ChaseName = null)
{
    public static readonly ZoneAnswer Forward = new(ZoneAnswerKind.Forward, ZoneRcode.NoError, [], [], []);
}

/// <summary>Which pod A records exist, as CoreDNS's <c>pods</c> option (kubeadm deploys <c>insecure</c>).</summary>
public enum PodRecordsMode
{
    /// <summary>No pod records: <c>a-b-c-d.ns.pod.cluster.local</c> is NXDOMAIN.</summary>
    Disabled,

    /// <summary>Any well-formed dashed address in an existing namespace resolves to itself.</summary>
    Insecure,

    /// <summary>Only addresses of pods that exist in that namespace.</summary>
    Verified,
}

public sealed record DnsZoneOptions
{
    public string Domain { get; init; } = "cluster.local";

    public PodRecordsMode Pods { get; init; } = PodRecordsMode.Insecure;

    public uint Ttl { get; init; } = 30;
}
