using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// One object read from a manifest, with where it came from: the 1-based document index and line, and for an
/// object unpacked from a <c>kind: List</c>, its index in <c>items</c>.
/// </summary>
public sealed record ManifestDocument(string SourceName, int Document, int Line, int? Item, JsonObject Json)
{
    /// <summary>"pods.yaml, document 2" or "all.yaml, document 1, items[3]".</summary>
    public string Location => Item is { } i ? $"{SourceName}, document {Document}, items[{i}]" : $"{SourceName}, document {Document}";
}
