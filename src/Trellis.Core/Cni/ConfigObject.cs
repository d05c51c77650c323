using System.Globalization;
using System.Net;
using System.Text.Json;
using Trellis.Model;

namespace Trellis.Core.Cni;

/// <summary>
/// Reads one JSON object of a network configuration, naming every field by its full path
/// (<c>ipam.ranges[0][1].rangeStart</c>) in errors. JSON <c>null</c> counts as absent, as it does
/// for Go's encoding/json. Keys match exactly, or else case-insensitively when the match is unique:
/// encoding/json folds case, so <c>"MTU": 1450</c> works with the reference plugins and must not be
/// silently dropped here.
/// </summary>
internal sealed class ConfigObject
{
    private readonly List<KeyValuePair<string, JsonElement>> _props;

    private ConfigObject(string path, List<KeyValuePair<string, JsonElement>> props)
    {
        Path = path;
        _props = props;
    }

    public string Path { get; }

    public IEnumerable<string> Keys => _props.Select(p => p.Key);

    public static ConfigObject From(JsonElement element, string path)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw CniException.Invalid(path, $"expected an object, got {Describe(element)}");
        }
        var props = new List<KeyValuePair<string, JsonElement>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in element.EnumerateObject())
        {
            string name = NameOf(p, path);
            if (!seen.Add(name))
            {
                // Go keeps the last value, .NET the last too; a config that says two things about
                // one key is a mistake either way, and refusing it avoids any parser differential.
                throw CniException.Invalid(Join(path, name), "duplicate key");
            }
            props.Add(new(name, p.Value));
        }
        return new ConfigObject(path, props);
    }

    public static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    public static string Index(string path, int i) => string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]");

    public string Field(string key) => Join(Path, key);

    public bool Has(string key) => TryGet(key, out _);

    /// <summary>Finds a key; null-valued keys count as absent.</summary>
    public bool TryGet(string key, out JsonElement value)
    {
        value = default;
        int found = -1;
        for (int i = 0; i < _props.Count; i++)
        {
            if (string.Equals(_props[i].Key, key, StringComparison.Ordinal))
            {
                found = i;
                break;
            }
        }
        if (found < 0)
        {
            for (int i = 0; i < _props.Count; i++)
            {
                if (string.Equals(_props[i].Key, key, StringComparison.OrdinalIgnoreCase))
                {
                    if (found >= 0)
                    {
                        throw CniException.Invalid(Field(key), $"ambiguous: both \"{_props[found].Key}\" and \"{_props[i].Key}\" are given");
                    }
                    found = i;
                }
            }
        }
        if (found < 0 || _props[found].Value.ValueKind == JsonValueKind.Null)
        {
            return false;
        }
        value = _props[found].Value;
        return true;
    }

    public string? OptString(string key) => TryGet(key, out var e) ? ReadString(e, Field(key)) : null;

    public string ReqString(string key) => OptString(key) ?? throw CniException.Invalid(Field(key), "required field is missing");

    public bool OptBool(string key, bool defaultValue)
    {
        if (!TryGet(key, out var e))
        {
            return defaultValue;
        }
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw CniException.Invalid(Field(key), $"expected true or false, got {Describe(e)}"),
        };
    }

    public int? OptInt(string key, int min, int max) => TryGet(key, out var e) ? ReadInt(e, Field(key), min, max) : null;

    public ConfigObject? OptObject(string key) => TryGet(key, out var e) ? From(e, Field(key)) : null;

    public IReadOnlyList<JsonElement>? OptArray(string key) => TryGet(key, out var e) ? ReadArray(e, Field(key)) : null;

    public IReadOnlyList<string>? OptStringArray(string key)
    {
        var items = OptArray(key);
        if (items is null)
        {
            return null;
        }
        var result = new string[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            result[i] = ReadString(items[i], Index(Field(key), i));
        }
        return result;
    }

    public IPAddress? OptAddress(string key)
    {
        string? text = OptString(key);
        if (text is null)
        {
            return null;
        }
        return IpText.TryParseAddress(text, out var a)
            ? a
            : throw CniException.Invalid(Field(key), $"{Quote.Of(text)} is not an IP address");
    }

    public IPCidr? OptCidr(string key)
    {
        string? text = OptString(key);
        if (text is null)
        {
            return null;
        }
        return IpText.TryParseCidr(text, out var c)
            ? c
            : throw CniException.Invalid(Field(key), $"{Quote.Of(text)} is not an address in CIDR notation");
    }

    public static string ReadString(JsonElement e, string field)
    {
        if (e.ValueKind != JsonValueKind.String)
        {
            throw CniException.Invalid(field, $"expected a string, got {Describe(e)}");
        }
        try
        {
            return e.GetString()!;
        }
        catch (InvalidOperationException)
        {
            // JsonDocument does not validate UTF-8 inside strings until they are read.
            throw new CniException(CniErrorCode.DecodeFailure, $"{field}: string is not valid UTF-8");
        }
    }

    public static int ReadInt(JsonElement e, string field, int min, int max)
    {
        if (e.ValueKind != JsonValueKind.Number)
        {
            throw CniException.Invalid(field, $"expected an integer, got {Describe(e)}");
        }
        if (!e.TryGetInt64(out long v) || v < min || v > max)
        {
            throw CniException.Invalid(field, string.Create(CultureInfo.InvariantCulture, $"{e.GetRawText()} is not an integer in {min}..{max}"));
        }
        return (int)v;
    }

    public static IReadOnlyList<JsonElement> ReadArray(JsonElement e, string field)
    {
        if (e.ValueKind != JsonValueKind.Array)
        {
            throw CniException.Invalid(field, $"expected an array, got {Describe(e)}");
        }
        var list = new List<JsonElement>(e.GetArrayLength());
        foreach (var item in e.EnumerateArray())
        {
            list.Add(item);
        }
        return list;
    }

    public static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    private static string NameOf(JsonProperty p, string path)
    {
        try
        {
            return p.Name;
        }
        catch (InvalidOperationException)
        {
            throw new CniException(CniErrorCode.DecodeFailure, $"{(path.Length == 0 ? "network configuration" : path)}: a key is not valid UTF-8");
        }
    }
}
