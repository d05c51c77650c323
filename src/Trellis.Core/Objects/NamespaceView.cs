using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>v1 Namespace.</summary>
public sealed class NamespaceView(JsonObject json) : ObjectView(json)
{
    public const string NameLabel = "kubernetes.io/metadata.name";

    public string Phase => Status.Str("phase") ?? "Active";

    public IReadOnlyDictionary<string, string> Labels => Metadata.Labels;
}
