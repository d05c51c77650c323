using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>discovery.k8s.io/v1 EndpointSlice.</summary>
public sealed class EndpointSliceView(JsonObject json) : ObjectView(json)
{
    public const string ServiceNameLabel = "kubernetes.io/service-name";
    public const string ManagedByLabel = "endpointslice.kubernetes.io/managed-by";

    public string AddressType => Json.Str("addressType") ?? "";

    public IReadOnlyList<EndpointView> Endpoints => Json.Objects("endpoints").Select(e => new EndpointView(e)).ToList();

    public IReadOnlyList<EndpointPortView> Ports => Json.Objects("ports").Select(p => new EndpointPortView(p)).ToList();

    /// <summary>The Service this slice belongs to (label <c>kubernetes.io/service-name</c>).</summary>
    public string? ServiceName => Metadata.Label(ServiceNameLabel);
}

public sealed class EndpointView(JsonObject json)
{
    public JsonObject Json { get; } = json;

    public IReadOnlyList<string> Addresses => Json.StrList("addresses");

    /// <summary>conditions.ready; absent means unknown, which consumers treat as ready.</summary>
    public bool? Ready => Json.Obj("conditions").Bool("ready");

    /// <summary>conditions.serving; absent means "same as ready".</summary>
    public bool? Serving => Json.Obj("conditions").Bool("serving");

    public bool? Terminating => Json.Obj("conditions").Bool("terminating");

    public string? NodeName => Json.Str("nodeName");

    public string? Hostname => Json.Str("hostname");

    public string? Zone => Json.Str("zone");

    public ObjectReference? TargetRef => Json.Obj("targetRef") is { } r
        ? new ObjectReference(r.Str("kind"), r.Str("namespace"), r.Str("name"), r.Str("uid"))
        : null;
}

public sealed class EndpointPortView(JsonObject json)
{
    public JsonObject Json { get; } = json;

    public string Name => Json.Str("name") ?? "";

    /// <summary>Null means "all ports" (upstream allows it for slices of Services without ports).</summary>
    public int? Port => Json.Int("port") is { } p ? (int)p : null;

    public string Protocol => Json.Str("protocol") ?? "TCP";

    public string? AppProtocol => Json.Str("appProtocol");
}

public sealed record ObjectReference(string? Kind, string? Namespace, string? Name, string? Uid);
