using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>v1 Service: what the proxy, DNS and the EndpointSlice controller need.</summary>
public sealed class ServiceView(JsonObject json) : ObjectView(json)
{
    public const string ServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name";
    public const string HeadlessLabel = "service.kubernetes.io/headless";

    public string Type => Spec.Str("type") ?? "ClusterIP";

    public string? ClusterIP => Spec.Str("clusterIP");

    /// <summary>spec.clusterIPs, or clusterIP alone when clusterIPs is absent.</summary>
    public IReadOnlyList<string> ClusterIPs
    {
        get
        {
            var ips = Spec.StrList("clusterIPs");
            return ips.Count == 0 && ClusterIP is { Length: > 0 } ip ? [ip] : ips;
        }
    }

    /// <summary>clusterIP "None".</summary>
    public bool IsHeadless => ClusterIP == "None";

    public string? ExternalName => Spec.Str("externalName");

    public IReadOnlyList<ServicePortView> Ports => Spec.Objects("ports").Select(p => new ServicePortView(p)).ToList();

    /// <summary>The selector map; empty when the Service has none (then nothing manages its endpoints).</summary>
    public IReadOnlyDictionary<string, string> Selector => Spec.StrMap("selector");

    public bool HasSelector => Selector.Count > 0;

    public IReadOnlyList<string> ExternalIPs => Spec.StrList("externalIPs");

    public string SessionAffinity => Spec.Str("sessionAffinity") ?? "None";

    /// <summary>spec.sessionAffinityConfig.clientIP.timeoutSeconds; 10800 (3 h) by default for ClientIP.</summary>
    public int? SessionAffinityTimeoutSeconds =>
        SessionAffinity != "ClientIP" ? null
        : Spec.Obj("sessionAffinityConfig").Obj("clientIP").Int("timeoutSeconds") is { } t ? (int)t : 10800;

    public string ExternalTrafficPolicy => Spec.Str("externalTrafficPolicy") ?? "Cluster";

    public string InternalTrafficPolicy => Spec.Str("internalTrafficPolicy") ?? "Cluster";

    public IReadOnlyList<string> LoadBalancerSourceRanges => Spec.StrList("loadBalancerSourceRanges");

    public bool PublishNotReadyAddresses => Spec.Bool("publishNotReadyAddresses") ?? false;

    public int? HealthCheckNodePort => Spec.Int("healthCheckNodePort") is { } p ? (int)p : null;

    public IReadOnlyList<LoadBalancerIngress> LoadBalancerIngress =>
        Status.Obj("loadBalancer").Objects("ingress").Select(i => new LoadBalancerIngress(i.Str("ip"), i.Str("hostname"), i.Str("ipMode"))).ToList();

    /// <summary>The service-proxy-name label: a Service carrying it is left to the proxy it names.</summary>
    public string? ServiceProxyName => Metadata.Label(ServiceProxyNameLabel);

    /// <summary>NodePort and LoadBalancer Services, and ClusterIP Services with externalIPs (service.ExternallyAccessible).</summary>
    public bool IsExternallyAccessible => Type is "NodePort" or "LoadBalancer" || (Type == "ClusterIP" && ExternalIPs.Count > 0);
}

public sealed class ServicePortView(JsonObject json)
{
    public JsonObject Json { get; } = json;

    public string? Name => Json.Str("name");

    public int Port => (int)(Json.Int("port") ?? 0);

    /// <summary>The target port; <see cref="Port"/> when omitted.</summary>
    public IntOrString TargetPort => IntOrString.FromJson(Json.Get("targetPort")) is { } t && !(t.IsInt && t.IntValue == 0) && !(!t.IsInt && t.StringValue!.Length == 0)
        ? t
        : IntOrString.FromInt(Port);

    public string Protocol => Json.Str("protocol") ?? "TCP";

    public int? NodePort => Json.Int("nodePort") is { } p and > 0 ? (int)p : null;

    public string? AppProtocol => Json.Str("appProtocol");
}

public sealed record LoadBalancerIngress(string? IP, string? Hostname, string? IPMode);
