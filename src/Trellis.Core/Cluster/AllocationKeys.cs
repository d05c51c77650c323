using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Core.Cluster;

public enum AllocationKind
{
    ClusterIP,
    NodePort,
    LoadBalancerIP,
}

/// <summary>One allocated value: an address or a port, and the field of the Service that holds it.</summary>
public readonly record struct Allocation(AllocationKind Kind, string Value)
{
    public string Key => AllocationKeys.KeyOf(this);

    public override string ToString() => $"{Kind} {Value}";
}

/// <summary>Who holds an allocation: the Service's namespace/name and uid, and when it was taken.</summary>
public sealed record AllocationOwner(string Namespace, string Name, string Uid, DateTimeOffset AllocatedAt)
{
    public string Service => $"{Namespace}/{Name}";

    public bool SameService(AllocationOwner other) =>
        other is not null && Namespace == other.Namespace && Name == other.Name && Uid == other.Uid;
}

/// <summary>
/// One store key per allocated address or port, as the API server's IPAddress objects (and its
/// port bitmap) do: created create-if-absent, so two concurrent applies can never both get a value.
/// <c>/trellis/alloc/clusterips/10.96.0.10</c>, <c>/trellis/alloc/nodeports/30080</c>,
/// <c>/trellis/alloc/lbips/172.30.0.240</c>; the value names the owner:
/// <c>{"service":"demo/web","uid":"…","allocatedAt":"2025-01-01T00:00:00Z"}</c>.
/// </summary>
public static class AllocationKeys
{
    public const string Prefix = "/trellis/alloc/";
    public const string ClusterIPPrefix = Prefix + "clusterips/";
    public const string NodePortPrefix = Prefix + "nodeports/";
    public const string LoadBalancerIPPrefix = Prefix + "lbips/";

    public static string PrefixOf(AllocationKind kind) => kind switch
    {
        AllocationKind.ClusterIP => ClusterIPPrefix,
        AllocationKind.NodePort => NodePortPrefix,
        _ => LoadBalancerIPPrefix,
    };

    public static string KeyOf(Allocation a) => PrefixOf(a.Kind) + a.Value;

    /// <summary>The allocation a key names, or null for a key that is not one.</summary>
    public static Allocation? Parse(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        foreach (var kind in (ReadOnlySpan<AllocationKind>)[AllocationKind.ClusterIP, AllocationKind.NodePort, AllocationKind.LoadBalancerIP])
        {
            string prefix = PrefixOf(kind);
            if (key.StartsWith(prefix, StringComparison.Ordinal) && key.Length > prefix.Length)
            {
                return new Allocation(kind, key[prefix.Length..]);
            }
        }
        return null;
    }

    public static byte[] EncodeOwner(AllocationOwner owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var o = new JsonObject
        {
            ["service"] = owner.Service,
            ["uid"] = owner.Uid,
            ["allocatedAt"] = Timestamps.Format(owner.AllocatedAt),
        };
        return Encoding.UTF8.GetBytes(o.ToJsonString());
    }

    /// <summary>The owner in a stored value, or null when the value is not one (store contents are untrusted).</summary>
    public static AllocationOwner? DecodeOwner(ReadOnlySpan<byte> value)
    {
        try
        {
            if (JsonNode.Parse(value) is not JsonObject o)
            {
                return null;
            }
            string? service = o.Str("service");
            string? uid = o.Str("uid");
            int slash = service?.IndexOf('/', StringComparison.Ordinal) ?? -1;
            if (service is null || uid is null || slash <= 0 || slash == service.Length - 1)
            {
                return null;
            }
            var at = Timestamps.Parse(o.Str("allocatedAt")) ?? DateTimeOffset.UnixEpoch;
            return new AllocationOwner(service[..slash], service[(slash + 1)..], uid, at);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);
}
