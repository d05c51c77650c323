using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Trellis.Core.Cni;

namespace Trellis.Core.Tests.Cni;

/// <summary>Builds test configs by editing a base document at a path like "ipam.ranges[0][1].subnet".</summary>
internal static class Json
{
    public const string Base =
        """{"cniVersion":"1.1.0","name":"trellis","type":"trellis-cni","bridge":"trellis0","isGateway":true,"mtu":1450,"hairpinMode":true,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24","gateway":"10.244.1.1"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/var/lib/cni/networks"}}""";

    /// <summary>Sets (or, with null, removes) the value at <paramref name="path"/>; <paramref name="raw"/> is JSON text.</summary>
    public static string Set(this string json, string path, string? raw)
    {
        var root = JsonNode.Parse(json)!;
        var segments = Split(path);
        JsonNode parent = root;
        for (int i = 0; i < segments.Count - 1; i++)
        {
            var next = segments[i] is int ix ? parent[ix] : parent[(string)segments[i]];
            if (next is null)
            {
                next = segments[i + 1] is int ? new JsonArray() : new JsonObject();
                if (segments[i] is string key)
                {
                    parent[key] = next;
                }
            }
            parent = next;
        }
        var last = segments[^1];
        var value = raw is null ? null : JsonNode.Parse(raw);
        if (last is int li)
        {
            var arr = parent.AsArray();
            if (raw is null)
            {
                arr.RemoveAt(li);
            }
            else if (li == arr.Count)
            {
                arr.Add(value);
            }
            else
            {
                arr[li] = value;
            }
        }
        else if (raw is null)
        {
            parent.AsObject().Remove((string)last);
        }
        else
        {
            parent[(string)last] = value;
        }
        return root.ToJsonString();
    }

    public static NetConf Parse(string json, CniCommand command = CniCommand.Add) =>
        NetConf.Parse(Encoding.UTF8.GetBytes(json), command);

    public static string Write(Action<Utf8JsonWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, CniJson.WriterOptions))
        {
            write(w);
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    public static string WriteResult(CniResult result, string version) => Write(w => result.WriteJson(w, version));

    public static CniResult ParseResult(string json, string version)
    {
        using var doc = JsonDocument.Parse(json);
        return CniResult.Parse(doc.RootElement, version);
    }

    private static List<object> Split(string path)
    {
        var result = new List<object>();
        int i = 0;
        while (i < path.Length)
        {
            if (path[i] == '.')
            {
                i++;
            }
            else if (path[i] == '[')
            {
                int close = path.IndexOf(']', i);
                result.Add(int.Parse(path.AsSpan(i + 1, close - i - 1), System.Globalization.CultureInfo.InvariantCulture));
                i = close + 1;
            }
            else
            {
                // Keys may contain '.' only in the "cni.dev/…" form; treat "cni.dev/x" as one key.
                int end = path.StartsWith("cni.dev/", StringComparison.Ordinal) && i == 0
                    ? path.IndexOfAny(['[', '.'], "cni.dev/".Length)
                    : path.IndexOfAny(['.', '['], i);
                if (end < 0)
                {
                    end = path.Length;
                }
                result.Add(path[i..end]);
                i = end;
            }
        }
        return result;
    }
}
