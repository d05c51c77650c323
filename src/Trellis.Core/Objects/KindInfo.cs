using System.Collections.Immutable;

namespace Trellis.Core.Objects;

/// <summary>One supported kind: how manifests name it, how the CLI names it, and where the store keeps it.</summary>
public sealed record KindInfo(
    string ApiVersion,
    string Kind,
    string Plural,
    string Singular,
    bool Namespaced,
    ImmutableArray<string> ShortNames)
{
    /// <summary>"" for the core group, else the part of <see cref="ApiVersion"/> before the '/'.</summary>
    public string Group => ApiVersion.Contains('/', StringComparison.Ordinal) ? ApiVersion[..ApiVersion.IndexOf('/', StringComparison.Ordinal)] : "";

    /// <summary><c>/registry/pods/default/web</c> or <c>/registry/nodes/node-1</c>.</summary>
    public string StoreKey(string? ns, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Namespaced)
        {
            ArgumentException.ThrowIfNullOrEmpty(ns);
            return $"/registry/{Plural}/{ns}/{name}";
        }
        return $"/registry/{Plural}/{name}";
    }

    /// <summary>The prefix to list: every object of the kind (<paramref name="ns"/> null) or one namespace's.</summary>
    public string StorePrefix(string? ns = null) =>
        Namespaced && !string.IsNullOrEmpty(ns) ? $"/registry/{Plural}/{ns}/" : $"/registry/{Plural}/";

    public override string ToString() => $"{Kind}.{ApiVersion}";
}
