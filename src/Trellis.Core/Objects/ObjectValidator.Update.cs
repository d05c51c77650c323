using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

public static partial class ObjectValidator
{
    /// <summary>
    /// Validates <paramref name="updated"/> as a replacement for <paramref name="existing"/>: the update rules
    /// (name, namespace, uid immutable; a Pod's spec entirely immutable; a Service's clusterIP once set, unless
    /// the type moves to or from ExternalName; an EndpointSlice's addressType; a Node's podCIDRs once set)
    /// followed by everything <see cref="Validate"/> checks. Both objects should be defaulted.
    /// </summary>
    public static IReadOnlyList<FieldError> ValidateUpdate(JsonObject existing, JsonObject updated)
    {
        ArgumentNullException.ThrowIfNull(existing);
        ArgumentNullException.ThrowIfNull(updated);
        var errors = new List<FieldError>();
        foreach (string field in (ReadOnlySpan<string>)["apiVersion", "kind"])
        {
            if (existing.Str(field) != updated.Str(field))
            {
                errors.Add(FieldError.Invalid(field, updated.Str(field) ?? "", "field is immutable"));
            }
        }
        var oldMeta = existing.Obj("metadata");
        var newMeta = updated.Obj("metadata");
        foreach (string field in (ReadOnlySpan<string>)["name", "namespace", "uid"])
        {
            string? before = oldMeta.Str(field) ?? "";
            string? after = newMeta.Str(field) ?? "";
            if (before != after)
            {
                errors.Add(FieldError.Invalid("metadata." + field, after, "field is immutable"));
            }
        }
        var kind = Kinds.Find(updated);
        if (errors.Count == 0 && kind is not null)
        {
            var oldSpec = existing.Get("spec");
            var newSpec = updated.Get("spec");
            if (kind == Kinds.Pod)
            {
                // Upstream lets a few fields change (images, activeDeadlineSeconds, tolerations); Trellis has no
                // use for those changes, so the whole spec is fixed and the first difference is named.
                if (JsonAccess.FirstDifference(oldSpec, newSpec, "spec") is { } diff)
                {
                    errors.Add(FieldError.Forbidden("spec", $"pod updates may not change the spec (first difference: {diff})"));
                }
            }
            else if (kind == Kinds.Service)
            {
                string oldIP = existing.Obj("spec").Str("clusterIP") ?? "";
                string newIP = updated.Obj("spec").Str("clusterIP") ?? "";
                bool externalName = existing.Obj("spec").Str("type") == "ExternalName" || updated.Obj("spec").Str("type") == "ExternalName";
                if (oldIP.Length > 0 && newIP != oldIP && !externalName)
                {
                    errors.Add(FieldError.Invalid("spec.clusterIP", newIP, "field is immutable"));
                }
            }
            else if (kind == Kinds.EndpointSlice)
            {
                string? before = existing.Str("addressType");
                string? after = updated.Str("addressType");
                if (before != after)
                {
                    errors.Add(FieldError.Invalid("addressType", after ?? "", "field is immutable"));
                }
            }
            else if (kind == Kinds.Node)
            {
                var before = existing.Obj("spec").StrList("podCIDRs");
                var after = updated.Obj("spec").StrList("podCIDRs");
                if (before.Count > 0 && !before.SequenceEqual(after))
                {
                    errors.Add(FieldError.Forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" to valid"));
                }
            }
        }
        errors.AddRange(Validate(updated));
        return errors;
    }
}
