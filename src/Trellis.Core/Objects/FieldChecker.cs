using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// Collects <see cref="FieldError"/>s and reads fields with their JSON type checked: a wrong type is reported
/// once (as the API server's decoder would refuse it) and then reads as absent. JSON null reads as absent, as
/// Go decodes it to the zero value.
/// </summary>
internal sealed class FieldChecker
{
    public List<FieldError> Errors { get; } = [];

    public void Add(FieldError error) => Errors.Add(error);

    public void AddRange(IEnumerable<FieldError> errors) => Errors.AddRange(errors);

    public JsonObject? Object(JsonObject? parent, string key, string path) =>
        Typed<JsonObject>(parent.Get(key), path, "an object");

    public JsonArray? Array(JsonObject? parent, string key, string path) =>
        Typed<JsonArray>(parent.Get(key), path, "a list");

    public string? String(JsonObject? parent, string key, string path)
    {
        var node = parent.Get(key);
        if (node is null)
        {
            return null;
        }
        if (JsonAccess.AsString(node) is { } s)
        {
            return s;
        }
        Errors.Add(FieldError.WrongType(path, node, "a string"));
        return null;
    }

    public long? Integer(JsonObject? parent, string key, string path)
    {
        var node = parent.Get(key);
        if (node is null)
        {
            return null;
        }
        if (JsonAccess.AsInteger(node) is { } i)
        {
            return i;
        }
        Errors.Add(FieldError.WrongType(path, node, "an integer"));
        return null;
    }

    public bool? Boolean(JsonObject? parent, string key, string path)
    {
        var node = parent.Get(key);
        if (node is null)
        {
            return null;
        }
        if (JsonAccess.AsBool(node) is { } b)
        {
            return b;
        }
        Errors.Add(FieldError.WrongType(path, node, "a boolean"));
        return null;
    }

    /// <summary>An int-or-string field (a port number or name).</summary>
    public IntOrString? IntOrString(JsonObject? parent, string key, string path)
    {
        var node = parent.Get(key);
        if (node is null)
        {
            return null;
        }
        if (Objects.IntOrString.FromJson(node) is { } v)
        {
            return v;
        }
        Errors.Add(FieldError.WrongType(path, node, "an integer or a string"));
        return null;
    }

    /// <summary>The objects of a list field with their paths; non-object items are reported and skipped.</summary>
    public List<(JsonObject Item, string Path)> Items(JsonObject? parent, string key, string path)
    {
        var result = new List<(JsonObject, string)>();
        if (Array(parent, key, path) is not { } arr)
        {
            return result;
        }
        for (int i = 0; i < arr.Count; i++)
        {
            string p = FieldPath.Index(path, i);
            if (arr[i] is JsonObject o)
            {
                result.Add((o, p));
            }
            else
            {
                Errors.Add(FieldError.WrongType(p, arr[i], "an object"));
            }
        }
        return result;
    }

    /// <summary>A list of strings; non-string items are reported and skipped. Null when absent.</summary>
    public List<(string Value, string Path)>? Strings(JsonObject? parent, string key, string path)
    {
        if (Array(parent, key, path) is not { } arr)
        {
            return null;
        }
        var result = new List<(string, string)>(arr.Count);
        for (int i = 0; i < arr.Count; i++)
        {
            string p = FieldPath.Index(path, i);
            if (JsonAccess.AsString(arr[i]) is { } s)
            {
                result.Add((s, p));
            }
            else
            {
                Errors.Add(FieldError.WrongType(p, arr[i], "a string"));
            }
        }
        return result;
    }

    /// <summary>A map of string to string (labels, annotations, selectors). Null when absent.</summary>
    public List<KeyValuePair<string, string>>? StringMap(JsonObject? parent, string key, string path)
    {
        if (Object(parent, key, path) is not { } obj)
        {
            return null;
        }
        var result = new List<KeyValuePair<string, string>>(obj.Count);
        foreach (var (k, v) in obj)
        {
            if (JsonAccess.AsString(v) is { } s)
            {
                result.Add(new(k, s));
            }
            else
            {
                Errors.Add(FieldError.WrongType(FieldPath.Key(path, k), v, "a string"));
            }
        }
        return result;
    }

    public void OneOf(string? value, string path, IReadOnlyCollection<string> supported, bool required = false)
    {
        if (value is null || value.Length == 0)
        {
            if (required)
            {
                Errors.Add(FieldError.Required(path));
            }
            return;
        }
        if (!supported.Contains(value))
        {
            Errors.Add(FieldError.NotSupported(path, value, supported));
        }
    }

    public void Messages(string path, string value, IEnumerable<string> messages)
    {
        foreach (var m in messages)
        {
            Errors.Add(FieldError.Invalid(path, value, m));
        }
    }

    public void Messages(string path, long value, IEnumerable<string> messages)
    {
        foreach (var m in messages)
        {
            Errors.Add(FieldError.Invalid(path, value, m));
        }
    }

    private T? Typed<T>(JsonNode? node, string path, string expected)
        where T : JsonNode
    {
        if (node is null)
        {
            return null;
        }
        if (node is T t)
        {
            return t;
        }
        Errors.Add(FieldError.WrongType(path, node, expected));
        return null;
    }
}
