using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>v1 Pod: what the lab kubelet, the proxy, policy and DNS need.</summary>
public sealed class PodView(JsonObject json) : ObjectView(json)
{
    public string? NodeName => Spec.Str("nodeName");

    public IReadOnlyList<ContainerView> Containers => Spec.Objects("containers").Select(c => new ContainerView(c)).ToList();

    public IReadOnlyList<ContainerView> InitContainers => Spec.Objects("initContainers").Select(c => new ContainerView(c)).ToList();

    public string RestartPolicy => Spec.Str("restartPolicy") ?? "Always";

    public string DnsPolicy => Spec.Str("dnsPolicy") ?? "ClusterFirst";

    public PodDnsConfig? DnsConfig => Spec.Obj("dnsConfig") is { } c ? new PodDnsConfig(c) : null;

    public bool HostNetwork => Spec.Bool("hostNetwork") ?? false;

    public string? Hostname => Spec.Str("hostname");

    public string? Subdomain => Spec.Str("subdomain");

    public string? Phase => Status.Str("phase");

    public string? PodIP => Status.Str("podIP");

    /// <summary>status.podIPs[*].ip, or podIP alone when podIPs is absent.</summary>
    public IReadOnlyList<string> PodIPs
    {
        get
        {
            var ips = Status.Objects("podIPs").Select(p => p.Str("ip")).OfType<string>().ToList();
            if (ips.Count == 0 && PodIP is { Length: > 0 } ip)
            {
                ips.Add(ip);
            }
            return ips;
        }
    }

    public string? HostIP => Status.Str("hostIP");

    public IReadOnlyList<Condition> Conditions => Condition.ListFrom(Status);

    /// <summary>The Ready condition is True.</summary>
    public bool IsReady => Conditions.Any(c => c.Type == "Ready" && c.IsTrue);

    public bool IsTerminating => Metadata.DeletionTimestamp is not null;

    /// <summary>spec.terminationGracePeriodSeconds; null when absent (the API server's default is 30).</summary>
    public long? TerminationGracePeriodSeconds => Spec.Int("terminationGracePeriodSeconds");

    /// <summary>metadata.deletionGracePeriodSeconds, set with deletionTimestamp by a graceful delete.</summary>
    public long? DeletionGracePeriodSeconds => Json.Obj("metadata").Int("deletionGracePeriodSeconds");
}

public sealed class ContainerView(JsonObject json)
{
    public JsonObject Json { get; } = json;

    public string Name => Json.Str("name") ?? "";

    public string? Image => Json.Str("image");

    public IReadOnlyList<string> Command => Json.StrList("command");

    public IReadOnlyList<string> Args => Json.StrList("args");

    public IReadOnlyList<ContainerPortView> Ports => Json.Objects("ports").Select(p => new ContainerPortView(p)).ToList();

    public bool HasReadinessProbe => Json.Obj("readinessProbe") is not null;

    public JsonObject? ReadinessProbe => Json.Obj("readinessProbe");
}

public sealed class ContainerPortView(JsonObject json)
{
    public JsonObject Json { get; } = json;

    public string? Name => Json.Str("name");

    public int ContainerPort => (int)(Json.Int("containerPort") ?? 0);

    public string Protocol => Json.Str("protocol") ?? "TCP";

    public int? HostPort => Json.Int("hostPort") is { } p ? (int)p : null;
}

/// <summary>spec.dnsConfig: merged into the generated resolv.conf.</summary>
public sealed class PodDnsConfig(JsonObject json)
{
    public IReadOnlyList<string> Nameservers => json.StrList("nameservers");

    public IReadOnlyList<string> Searches => json.StrList("searches");

    /// <summary>Options with an optional value ("ndots", "2").</summary>
    public IReadOnlyList<KeyValuePair<string, string?>> Options =>
        json.Objects("options").Select(o => new KeyValuePair<string, string?>(o.Str("name") ?? "", o.Str("value"))).ToList();
}
