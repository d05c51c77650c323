using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Trellis.Core.Objects;

/// <summary>
/// Reads manifests as kubectl does: a stream of YAML documents separated by <c>---</c>, or (when the text
/// starts with '{') a stream of JSON objects; <c>kind: List</c> (and any <c>*List</c> with <c>items</c>) is
/// unpacked; empty documents are skipped. Every object must have <c>apiVersion</c> and <c>kind</c>.
/// </summary>
public static class Manifests
{
    // Limits against hostile input: alias expansion ("billion laughs") and nesting deep enough to exhaust the stack.
    internal const int MaxNodes = 1_000_000;
    internal const int MaxDepth = 100;

    public static IReadOnlyList<JsonObject> Parse(string text, string source) =>
        ParseDocuments(text, source).Select(d => d.Json).ToList();

    public static IReadOnlyList<ManifestDocument> ParseDocuments(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(source);
        if (text.Length > 0 && text[0] == '\uFEFF')
        {
            text = text[1..];
        }
        var raw = LooksLikeJson(text) ? JsonStream.Read(text, source) : new YamlStream(text, source).Read();
        var result = new List<ManifestDocument>();
        foreach (var (doc, line, node) in raw)
        {
            if (node is null)
            {
                continue;
            }
            if (node is not JsonObject obj)
            {
                throw new ManifestException(source, doc, line, 1, $"a manifest must be an object, not {Describe(node)}");
            }
            RequireTypeMeta(obj, source, doc, line, null);
            string kind = obj.Str("kind")!;
            if (kind.EndsWith("List", StringComparison.Ordinal) && obj.Get("items") is { } items)
            {
                if (items is not JsonArray arr)
                {
                    throw new ManifestException(source, doc, line, 1, $"items: must be a list, not {Describe(items)}");
                }
                for (int i = 0; i < arr.Count; i++)
                {
                    if (arr[i] is not JsonObject item)
                    {
                        throw new ManifestException(source, doc, line, 1, $"items[{i}]: must be an object, not {Describe(arr[i])}");
                    }
                    RequireTypeMeta(item, source, doc, line, i);
                    result.Add(new ManifestDocument(source, doc, line, i, (JsonObject)item.DeepClone()));
                }
                continue;
            }
            result.Add(new ManifestDocument(source, doc, line, null, obj));
        }
        return result;
    }

    private static void RequireTypeMeta(JsonObject obj, string source, int doc, int line, int? item)
    {
        string prefix = item is { } i ? $"items[{i}]." : "";
        foreach (string field in (ReadOnlySpan<string>)["apiVersion", "kind"])
        {
            var v = obj.Get(field);
            if (v is null || (JsonAccess.AsString(v) is { } s && s.Length == 0))
            {
                throw new ManifestException(source, doc, line, 1, $"{prefix}{field}: Required value: every object needs apiVersion and kind");
            }
            if (JsonAccess.AsString(v) is null)
            {
                throw new ManifestException(source, doc, line, 1, $"{prefix}{field}: must be a string, not {Describe(v)}");
            }
        }
    }

    internal static string Describe(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "a list",
        _ => node.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "a value",
        },
    };

    // k8s.io/apimachinery's YAMLOrJSONDecoder sniffs the same way: JSON iff the first non-space byte is '{'.
    private static bool LooksLikeJson(string text)
    {
        foreach (char c in text)
        {
            if (!char.IsWhiteSpace(c))
            {
                return c == '{';
            }
        }
        return false;
    }

    /// <summary>Builds JSON trees from YamlDotNet's low-level events (no reflection; AOT-safe).</summary>
    private sealed class YamlStream(string text, string source)
    {
        private readonly Parser _parser = new(new StringReader(text));
        private readonly Dictionary<string, JsonNode?> _anchors = new(StringComparer.Ordinal);
        private int _document;
        private int _nodes;

        public List<(int Document, int Line, JsonNode? Node)> Read()
        {
            var docs = new List<(int, int, JsonNode?)>();
            try
            {
                Next();
                Expect<StreamStart>();
                Next();
                while (_parser.Current is DocumentStart)
                {
                    _document++;
                    _anchors.Clear();
                    Next();
                    int line = (int)_parser.Current!.Start.Line;
                    var node = ReadNode(0);
                    Expect<DocumentEnd>();
                    docs.Add((_document, line, node));
                    // Only now look for the next document, so that its errors are counted against it.
                    _document++;
                    Next();
                    _document--;
                }
                Expect<StreamEnd>();
            }
            catch (YamlException e)
            {
                int doc = Math.Max(_document, 1);
                throw new ManifestException(source, doc, (int)e.Start.Line, (int)e.Start.Column, Sentence(e.Message));
            }
            return docs;
        }

        private void Next()
        {
            bool moved;
            try
            {
                moved = _parser.MoveNext();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or OverflowException or IndexOutOfRangeException)
            {
                // YamlDotNet's scanner throws these (not YamlException) on some malformed input, e.g. a tag
                // that is not a URI or a stray '%' in a plain scalar. Found by fuzzing; reported as bad YAML.
                var at = _parser.Current?.End ?? Mark.Empty;
                throw Error(at, "invalid YAML after this point (" + e.Message.TrimEnd('.') + ")");
            }
            if (!moved)
            {
                throw new YamlException(Mark.Empty, Mark.Empty, "unexpected end of input");
            }
        }

        private void Expect<T>()
            where T : ParsingEvent
        {
            if (_parser.Current is not T)
            {
                var at = _parser.Current!.Start;
                throw new YamlException(at, at, $"expected {typeof(T).Name}, found {_parser.Current.GetType().Name}");
            }
        }

        private ManifestException Error(Mark at, string problem) =>
            new(source, Math.Max(_document, 1), (int)at.Line, (int)at.Column, problem);

        // Reads the node at Current and leaves Current on the event after it.
        private JsonNode? ReadNode(int depth)
        {
            var ev = _parser.Current!;
            if (depth > MaxDepth)
            {
                throw Error(ev.Start, $"nesting deeper than {MaxDepth} levels");
            }
            if (++_nodes > MaxNodes)
            {
                throw Error(ev.Start, $"more than {MaxNodes} values (alias expansion?)");
            }
            JsonNode? node;
            switch (ev)
            {
                case AnchorAlias alias:
                    if (!_anchors.TryGetValue(alias.Value.Value, out var target))
                    {
                        throw Error(ev.Start, $"unknown anchor '{alias.Value.Value}' referenced");
                    }
                    node = target?.DeepClone();
                    _nodes += CountNodes(node);
                    if (_nodes > MaxNodes)
                    {
                        throw Error(ev.Start, $"more than {MaxNodes} values (alias expansion?)");
                    }
                    Next();
                    return node;
                case Scalar scalar:
                    node = ReadScalar(scalar);
                    Next();
                    break;
                case SequenceStart seq:
                    CheckCollectionTag(seq, "tag:yaml.org,2002:seq");
                    var arr = new JsonArray();
                    Next();
                    while (_parser.Current is not SequenceEnd)
                    {
                        arr.Add(ReadNode(depth + 1));
                    }
                    Next();
                    node = arr;
                    break;
                case MappingStart map:
                    CheckCollectionTag(map, "tag:yaml.org,2002:map");
                    node = ReadMapping(depth);
                    break;
                default:
                    throw Error(ev.Start, $"unexpected {ev.GetType().Name}");
            }
            if (ev is NodeEvent { Anchor.IsEmpty: false } anchored)
            {
                _anchors[anchored.Anchor.Value] = node;
            }
            return node;
        }

        private JsonObject ReadMapping(int depth)
        {
            var obj = new JsonObject();
            var merged = new List<(string Key, JsonNode? Value)>();
            Next();
            while (_parser.Current is not MappingEnd)
            {
                var keyEvent = _parser.Current!;
                string key = ReadKey();
                if (key == "<<" && keyEvent is Scalar { IsPlainImplicit: true })
                {
                    // YAML 1.1 merge key, which Go's decoder (and so kubectl) honours: explicit keys win.
                    var at = _parser.Current!.Start;
                    var value = ReadNode(depth + 1);
                    var sources = value is JsonArray list ? list.ToList() : [value];
                    foreach (var src in sources)
                    {
                        if (src is not JsonObject srcObj)
                        {
                            throw Error(at, "map merge requires a map or a sequence of maps as the value");
                        }
                        foreach (var (k, v) in srcObj)
                        {
                            merged.Add((k, v?.DeepClone()));
                        }
                    }
                    continue;
                }
                if (obj.ContainsKey(key))
                {
                    throw Error(keyEvent.Start, $"duplicate key \"{key}\"");
                }
                obj[key] = ReadNode(depth + 1);
            }
            Next();
            foreach (var (k, v) in merged)
            {
                obj.TryAdd(k, v);
            }
            return obj;
        }

        // Keys are strings, spelled as sigs.k8s.io/yaml spells non-string keys (80 -> "80", true -> "true").
        private string ReadKey()
        {
            var ev = _parser.Current!;
            if (ev is not Scalar scalar)
            {
                throw Error(ev.Start, "a mapping key must be a string, not a list or an object");
            }
            var node = ReadScalar(scalar);
            Next();
            return node switch
            {
                null => "null",
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                _ => node.ToJsonString(),
            };
        }

        private JsonNode? ReadScalar(Scalar scalar)
        {
            string value = scalar.Value;
            if (scalar.Tag.IsEmpty)
            {
                if (scalar.Style != ScalarStyle.Plain)
                {
                    return JsonValue.Create(value);
                }
                var node = YamlScalars.ToJson(value, out string? error);
                return error is null ? node : throw Error(scalar.Start, error);
            }
            if (scalar.Tag.IsNonSpecific)
            {
                return JsonValue.Create(value);
            }
            string tag = scalar.Tag.Value;
            var type = YamlScalars.Classify(value);
            switch (tag)
            {
                case "tag:yaml.org,2002:str":
                case "tag:yaml.org,2002:binary":
                    return JsonValue.Create(value);
                case "tag:yaml.org,2002:null" when type == YamlScalars.Type.Null:
                case "tag:yaml.org,2002:bool" when type == YamlScalars.Type.Bool:
                case "tag:yaml.org,2002:int" when type == YamlScalars.Type.Int:
                case "tag:yaml.org,2002:float" when type is YamlScalars.Type.Float or YamlScalars.Type.Int:
                    var node = YamlScalars.ToJson(value, out string? error);
                    return error is null ? node : throw Error(scalar.Start, error);
                default:
                    throw Error(scalar.Start, tag.StartsWith("tag:yaml.org,2002:", StringComparison.Ordinal)
                        ? $"cannot read \"{value}\" as !!{tag["tag:yaml.org,2002:".Length..]}"
                        : $"unsupported tag {tag}");
            }
        }

        private void CheckCollectionTag(NodeEvent ev, string allowed)
        {
            if (!ev.Tag.IsEmpty && !ev.Tag.IsNonSpecific && ev.Tag.Value != allowed)
            {
                throw Error(ev.Start, $"unsupported tag {ev.Tag.Value}");
            }
        }

        private static int CountNodes(JsonNode? node) => node switch
        {
            JsonObject o => 1 + o.Sum(p => CountNodes(p.Value)),
            JsonArray a => 1 + a.Sum(CountNodes),
            _ => 1,
        };

        private static string Sentence(string message)
        {
            string m = message.TrimEnd('.');
            return m.Length > 0 ? char.ToLowerInvariant(m[0]) + m[1..] : m;
        }
    }

    /// <summary>A stream of JSON values, read token by token to report duplicate keys and keep numbers typed as YAML's are.</summary>
    private static class JsonStream
    {
        public static List<(int Document, int Line, JsonNode? Node)> Read(string text, string source)
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(text);
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions
            {
                AllowMultipleValues = true,
                CommentHandling = JsonCommentHandling.Disallow,
                MaxDepth = MaxDepth + 1,
            });
            var docs = new List<(int, int, JsonNode?)>();
            int doc = 0;
            try
            {
                while (true)
                {
                    doc++;
                    if (!reader.Read())
                    {
                        break;
                    }
                    int line = LineOf(utf8, reader.TokenStartIndex).Line;
                    docs.Add((doc, line, ReadValue(ref reader, utf8, source, doc)));
                }
            }
            catch (JsonException e)
            {
                throw new ManifestException(source, doc, (int)(e.LineNumber ?? 0) + 1, (int)(e.BytePositionInLine ?? 0) + 1, JsonProblem(e.Message));
            }
            return docs;
        }

        private static JsonNode? ReadValue(ref Utf8JsonReader reader, byte[] utf8, string source, int doc)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    var obj = new JsonObject();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        string key = reader.GetString()!;
                        long at = reader.TokenStartIndex;
                        reader.Read();
                        var value = ReadValue(ref reader, utf8, source, doc);
                        if (!obj.TryAdd(key, value))
                        {
                            var (l, c) = LineOf(utf8, at);
                            throw new ManifestException(source, doc, l, c, $"duplicate key \"{key}\"");
                        }
                    }
                    return obj;
                case JsonTokenType.StartArray:
                    var arr = new JsonArray();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        arr.Add(ReadValue(ref reader, utf8, source, doc));
                    }
                    return arr;
                case JsonTokenType.String:
                    return JsonValue.Create(reader.GetString()!);
                case JsonTokenType.Number:
                    string raw = Encoding.UTF8.GetString(reader.ValueSpan);
                    var number = YamlScalars.ToJson(raw, out string? error);
                    if (error is not null)
                    {
                        var (l, c) = LineOf(utf8, reader.TokenStartIndex);
                        throw new ManifestException(source, doc, l, c, error);
                    }
                    return number;
                case JsonTokenType.True:
                    return JsonValue.Create(true);
                case JsonTokenType.False:
                    return JsonValue.Create(false);
                default:
                    return null;
            }
        }

        private static (int Line, int Column) LineOf(byte[] utf8, long index)
        {
            int line = 1;
            int lineStart = 0;
            for (int i = 0; i < index && i < utf8.Length; i++)
            {
                if (utf8[i] == '\n')
                {
                    line++;
                    lineStart = i + 1;
                }
            }
            return (line, (int)index - lineStart + 1);
        }

        // "'x' is invalid after a value. Expected ... LineNumber: 0 | BytePositionInLine: 7." -> the first sentence.
        private static string JsonProblem(string message)
        {
            int cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
            string m = (cut > 0 ? message[..cut] : message).Trim().TrimEnd('.');
            return m.Length > 0 ? char.ToLowerInvariant(m[0]) + m[1..] : m;
        }
    }
}
