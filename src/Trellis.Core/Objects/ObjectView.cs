using System.Globalization;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// Read-only typed access to a stored object's JSON. Views read on demand and never throw: a missing or
/// mistyped field reads as absent (null, empty, false). Validate an object before trusting its fields.
/// </summary>
public abstract class ObjectView
{
    protected ObjectView(JsonObject json)
    {
        ArgumentNullException.ThrowIfNull(json);
        Json = json;
    }

    public JsonObject Json { get; }

    public string ApiVersion => Json.Str("apiVersion") ?? "";

    public string Kind => Json.Str("kind") ?? "";

    public ObjectMeta Metadata => new(Json.Obj("metadata"));

    public string Name => Metadata.Name;

    public string? Namespace => Metadata.Namespace;

    protected JsonObject? Spec => Json.Obj("spec");

    protected JsonObject? Status => Json.Obj("status");

    /// <summary>"default/web" for namespaced objects, "node-1" for cluster-scoped ones.</summary>
    public override string ToString() => Namespace is { Length: > 0 } ns ? $"{ns}/{Name}" : Name;
}

/// <summary>Any supported kind, for code that needs only metadata.</summary>
public sealed class GenericView(JsonObject json) : ObjectView(json);

/// <summary>metav1.ObjectMeta.</summary>
public readonly struct ObjectMeta(JsonObject? json)
{
    public string Name => json.Str("name") ?? "";

    public string? Namespace => json.Str("namespace");

    public IReadOnlyDictionary<string, string> Labels => json.StrMap("labels");

    public IReadOnlyDictionary<string, string> Annotations => json.StrMap("annotations");

    public string? Uid => json.Str("uid");

    public string? ResourceVersion => json.Str("resourceVersion");

    public DateTimeOffset? CreationTimestamp => Timestamps.Parse(json.Str("creationTimestamp"));

    public DateTimeOffset? DeletionTimestamp => Timestamps.Parse(json.Str("deletionTimestamp"));

    public string? Label(string key) => Labels.TryGetValue(key, out var v) ? v : null;

    public string? Annotation(string key) => Annotations.TryGetValue(key, out var v) ? v : null;
}

/// <summary>metav1.Time: RFC 3339 in UTC with whole seconds.</summary>
public static class Timestamps
{
    public static string Format(DateTimeOffset time) =>
        time.ToUniversalTime().ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'", CultureInfo.InvariantCulture);

    public static DateTimeOffset? Parse(string? text) =>
        text is not null && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            && text.Contains('T', StringComparison.Ordinal)
            ? t
            : null;
}

/// <summary>A status condition (type, status "True"/"False"/"Unknown", reason, message).</summary>
public sealed record Condition(string Type, string Status, string? Reason, string? Message, DateTimeOffset? LastTransitionTime)
{
    public bool IsTrue => Status == "True";

    internal static IReadOnlyList<Condition> ListFrom(JsonObject? status) =>
        status.Objects("conditions")
            .Select(c => new Condition(c.Str("type") ?? "", c.Str("status") ?? "", c.Str("reason"), c.Str("message"), Timestamps.Parse(c.Str("lastTransitionTime"))))
            .ToList();
}
