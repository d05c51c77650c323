using System.Text.Json;
using System.Text.Json.Nodes;

namespace Trellis.CniClient;

/// <summary>
/// A network configuration list (".conflist") as a runtime reads it: the list-level fields that
/// the runtime honours (<c>cniVersion</c>, <c>cniVersions</c>, <c>disableCheck</c>, <c>disableGC</c>)
/// and the plugin configurations, kept as JSON so unknown keys reach the plugins untouched.
/// </summary>
public sealed class CniConfigList
{
    /// <summary>The spec versions this client speaks, oldest first.</summary>
    public static readonly IReadOnlyList<string> ClientVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    private CniConfigList(string name, string cniVersion, bool disableCheck, bool disableGC, IReadOnlyList<JsonObject> plugins)
    {
        Name = name;
        CniVersion = cniVersion;
        DisableCheck = disableCheck;
        DisableGC = disableGC;
        Plugins = plugins;
    }

    public string Name { get; }

    /// <summary>The version in effect: the highest of <c>cniVersions</c> this client supports, else <c>cniVersion</c>.</summary>
    public string CniVersion { get; }

    public bool DisableCheck { get; }

    public bool DisableGC { get; }

    public IReadOnlyList<JsonObject> Plugins { get; }

    public static CniConfigList Load(string path) => Parse(File.ReadAllText(path), path);

    public static CniConfigList Parse(string json, string source = "conflist")
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new CniClientException($"{source}: invalid JSON: {e.Message}");
        }
        if (root is not JsonObject obj)
        {
            throw new CniClientException($"{source}: expected a JSON object");
        }
        string name = obj["name"] is JsonValue n && n.TryGetValue(out string? s) && s.Length > 0
            ? s : throw new CniClientException($"{source}: name: missing or not a string");
        string? version = obj["cniVersion"] is JsonValue v && v.TryGetValue(out string? vs) ? vs : null;
        // libcni (1.2+) picks the highest entry of cniVersions it supports, falling back to cniVersion.
        if (obj["cniVersions"] is JsonArray versions)
        {
            string? best = null;
            foreach (var item in versions)
            {
                if (item is JsonValue iv && iv.TryGetValue(out string? candidate) && ClientVersions.Contains(candidate)
                    && (best is null || CompareVersions(candidate, best) > 0))
                {
                    best = candidate;
                }
            }
            version = best ?? version;
        }
        if (version is null)
        {
            throw new CniClientException($"{source}: cniVersion: missing (and no supported entry in cniVersions)");
        }
        if (obj["plugins"] is not JsonArray plugins || plugins.Count == 0)
        {
            throw new CniClientException($"{source}: plugins: missing or empty");
        }
        var list = new List<JsonObject>();
        for (int i = 0; i < plugins.Count; i++)
        {
            if (plugins[i] is not JsonObject p || p["type"] is not JsonValue t || !t.TryGetValue(out string? _))
            {
                throw new CniClientException($"{source}: plugins[{i}].type: missing or not a string");
            }
            list.Add(p);
        }
        return new CniConfigList(name, version, GetBool(obj, "disableCheck"), GetBool(obj, "disableGC"), list);
    }

    private static bool GetBool(JsonObject obj, string key) =>
        obj[key] is JsonValue v && ((v.TryGetValue(out bool b) && b) || (v.TryGetValue(out string? s) && bool.TryParse(s, out bool sb) && sb));

    public static int CompareVersions(string a, string b)
    {
        var pa = a.Split('.');
        var pb = b.Split('.');
        for (int i = 0; i < Math.Max(pa.Length, pb.Length); i++)
        {
            int x = i < pa.Length && int.TryParse(pa[i], out int xa) ? xa : 0;
            int y = i < pb.Length && int.TryParse(pb[i], out int yb) ? yb : 0;
            if (x != y)
            {
                return x.CompareTo(y);
            }
        }
        return 0;
    }
}

public sealed class CniClientException : Exception
{
    public CniClientException(string message) : base(message) { }

    public CniClientException(string message, Exception inner) : base(message, inner) { }

    public CniClientException() { }

    /// <summary>The plugin's error code when it answered with the spec's error object.</summary>
    public int? Code { get; init; }

    public string? Plugin { get; init; }
}
