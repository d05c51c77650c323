using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// Tolerant reads from untrusted JSON trees: a missing key and a value of the wrong type both read as
/// "absent", so views never throw. Validation is what reports the wrong types.
/// </summary>
internal static class JsonAccess
{
    public static JsonNode? Get(this JsonObject? obj, string key) =>
        obj is not null && obj.TryGetPropertyValue(key, out var v) ? v : null;

    public static JsonObject? Obj(this JsonObject? obj, string key) => obj.Get(key) as JsonObject;

    public static JsonArray? Arr(this JsonObject? obj, string key) => obj.Get(key) as JsonArray;

    public static string? Str(this JsonObject? obj, string key) => AsString(obj.Get(key));

    public static long? Int(this JsonObject? obj, string key) => AsInteger(obj.Get(key));

    public static bool? Bool(this JsonObject? obj, string key) => AsBool(obj.Get(key));

    public static string? AsString(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    public static bool? AsBool(JsonNode? node) =>
        node is JsonValue v ? v.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => null,
        } : null;

    /// <summary>An integral JSON number (80, 80.0, 8e1) as a long; anything else is null.</summary>
    public static long? AsInteger(JsonNode? node)
    {
        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.Number)
        {
            return null;
        }
        if (v.TryGetValue<long>(out long l))
        {
            return l;
        }
        if (v.TryGetValue<int>(out int i))
        {
            return i;
        }
        double d = v.TryGetValue<double>(out double dd)
            ? dd
            : double.Parse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture);
        return Math.Floor(d) == d && Math.Abs(d) < 9.2e18 ? (long)d : null;
    }

    public static bool IsNumber(JsonNode? node) => node is JsonValue v && v.GetValueKind() == JsonValueKind.Number;

    public static IReadOnlyList<string> StrList(this JsonObject? obj, string key)
    {
        if (obj.Arr(key) is not { } arr)
        {
            return [];
        }
        var list = new List<string>(arr.Count);
        foreach (var item in arr)
        {
            if (AsString(item) is { } s)
            {
                list.Add(s);
            }
        }
        return list;
    }

    public static IReadOnlyDictionary<string, string> StrMap(this JsonObject? obj, string key)
    {
        if (obj.Obj(key) is not { } map || map.Count == 0)
        {
            return Empty;
        }
        var dict = new Dictionary<string, string>(map.Count, StringComparer.Ordinal);
        foreach (var (k, v) in map)
        {
            if (AsString(v) is { } s)
            {
                dict[k] = s;
            }
        }
        return dict;
    }

    public static IEnumerable<JsonObject> Objects(this JsonObject? obj, string key)
    {
        if (obj.Arr(key) is not { } arr)
        {
            yield break;
        }
        foreach (var item in arr)
        {
            if (item is JsonObject o)
            {
                yield return o;
            }
        }
    }

    public static readonly IReadOnlyDictionary<string, string> Empty = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Value equality that treats 80 and 80.0 alike and ignores key order, as a decoded Go struct would.</summary>
    public static bool SameValue(JsonNode? a, JsonNode? b) => FirstDifference(a, b, "") is null;

    /// <summary>The API-style path ("spec.containers[0].image") of the first difference, or null if equal.</summary>
    public static string? FirstDifference(JsonNode? a, JsonNode? b, string path)
    {
        switch (a, b)
        {
            case (null, null):
                return null;
            case (JsonObject oa, JsonObject ob):
                foreach (var (k, va) in oa)
                {
                    ob.TryGetPropertyValue(k, out var vb);
                    if (FirstDifference(va, vb, FieldPath.Child(path, k)) is { } d)
                    {
                        return d;
                    }
                }
                foreach (var (k, vb) in ob)
                {
                    if (!oa.ContainsKey(k) && vb is not null)
                    {
                        return FieldPath.Child(path, k);
                    }
                }
                return null;
            case (JsonArray aa, JsonArray ab):
                for (int i = 0; i < Math.Max(aa.Count, ab.Count); i++)
                {
                    if (i >= aa.Count || i >= ab.Count)
                    {
                        return FieldPath.Index(path, i);
                    }
                    if (FirstDifference(aa[i], ab[i], FieldPath.Index(path, i)) is { } d)
                    {
                        return d;
                    }
                }
                return null;
            case (JsonValue va, JsonValue vb):
                var ka = va.GetValueKind();
                if (ka != vb.GetValueKind())
                {
                    return path;
                }
                if (ka == JsonValueKind.Number)
                {
                    return NumberText(va) == NumberText(vb) ? null : path;
                }
                return ka == JsonValueKind.String
                    ? (string.Equals(va.GetValue<string>(), vb.GetValue<string>(), StringComparison.Ordinal) ? null : path)
                    : null;
            default:
                // A key present with null and a key absent mean the same to a Go decoder.
                return a is null && b is null ? null : path;
        }
    }

    private static double NumberText(JsonValue v) =>
        AsInteger(v) is { } l ? l : double.Parse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture);
}
