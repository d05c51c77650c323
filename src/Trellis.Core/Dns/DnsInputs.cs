using System.Collections.Immutable;
using Trellis.Core.Objects;

namespace Trellis.Core.Dns;

// The few fields of each object the zone is built from. The server keeps these, not the objects' JSON
// trees, between snapshots: a parsed Service or EndpointSlice costs kilobytes, these a few hundred bytes.

public sealed record DnsPort(string? Name, int? Port, string Protocol);

public sealed record DnsService(string Namespace, string Name, string Type, ImmutableArray<string> ClusterIPs, bool IsHeadless,
    string? ExternalName, ImmutableArray<DnsPort> Ports, bool PublishNotReadyAddresses)
{
    public static DnsService From(ServiceView v)
    {
        ArgumentNullException.ThrowIfNull(v);
        return new(v.Namespace ?? "", v.Name, v.Type, [.. v.ClusterIPs], v.IsHeadless, v.ExternalName,
            [.. v.Ports.Select(p => new DnsPort(p.Name, p.Port, p.Protocol))], v.PublishNotReadyAddresses);
    }
}

public sealed record DnsEndpoint(ImmutableArray<string> Addresses, string? Hostname, bool? Ready);

public sealed record DnsEndpointSlice(string Namespace, string? ServiceName, string AddressType, ImmutableArray<DnsPort> Ports, ImmutableArray<DnsEndpoint> Endpoints)
{
    public static DnsEndpointSlice From(EndpointSliceView v)
    {
        ArgumentNullException.ThrowIfNull(v);
        return new(v.Namespace ?? "", v.ServiceName, v.AddressType, [.. v.Ports.Select(p => new DnsPort(p.Name, p.Port, p.Protocol))],
            [.. v.Endpoints.Select(e => new DnsEndpoint([.. e.Addresses], e.Hostname, e.Ready))]);
    }
}

public sealed record DnsPod(string Namespace, ImmutableArray<string> IPs, bool IsTerminating)
{
    public static DnsPod From(PodView v)
    {
        ArgumentNullException.ThrowIfNull(v);
        return new(v.Namespace ?? "", [.. v.PodIPs], v.IsTerminating);
    }
}
