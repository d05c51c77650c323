using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Trellis.Core.Objects;

/// <summary>The <c>-o</c> formats of <c>trellis get</c>.</summary>
public enum OutputFormat
{
    Table,
    Wide,
    Json,
    Yaml,
}

/// <summary>
/// <c>-o json</c> and <c>-o yaml</c>, and a dispatcher over all formats. JSON is indented by four spaces as
/// kubectl's is; YAML keeps the object's key order and quotes strings that would read back as another type.
/// </summary>
public static class ObjectPrinter
{
    private static readonly JsonWriterOptions s_jsonOptions = new()
    {
        Indented = true,
        IndentSize = 4,
        // Like Go's encoder: readable non-ASCII, but '<', '>' and '&' still escaped.
        Encoder = JavaScriptEncoder.Create(System.Text.Unicode.UnicodeRanges.All),
    };

    /// <summary>
    /// Prints what <c>get</c> found. <paramref name="byName"/> is true when one object was asked for by name:
    /// JSON and YAML then print it bare, otherwise as a List (even of one or none).
    /// </summary>
    public static string Print(KindInfo kind, IReadOnlyList<JsonObject> objects, OutputFormat format, DateTimeOffset now, bool allNamespaces = false, bool byName = false)
    {
        ArgumentNullException.ThrowIfNull(objects);
        return format switch
        {
            OutputFormat.Table => TablePrinter.Print(kind, objects, now, wide: false, allNamespaces),
            OutputFormat.Wide => TablePrinter.Print(kind, objects, now, wide: true, allNamespaces),
            OutputFormat.Json => ToJson(byName && objects.Count == 1 ? objects[0] : List(objects)),
            OutputFormat.Yaml => ToYaml(byName && objects.Count == 1 ? objects[0] : List(objects)),
            _ => throw new ArgumentOutOfRangeException(nameof(format)),
        };
    }

    /// <summary>Parses a <c>-o</c> value ("wide", "json", "yaml"; null or "" for the table).</summary>
    public static bool TryParseFormat(string? text, out OutputFormat format)
    {
        format = OutputFormat.Table;
        switch (text)
        {
            case null or "":
                return true;
            case "wide":
                format = OutputFormat.Wide;
                return true;
            case "json":
                format = OutputFormat.Json;
                return true;
            case "yaml":
                format = OutputFormat.Yaml;
                return true;
            default:
                return false;
        }
    }

    /// <summary><c>{"apiVersion":"v1","kind":"List","items":[…]}</c> (DESIGN.md §6), with copies of the items.</summary>
    public static JsonObject List(IEnumerable<JsonObject> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var arr = new JsonArray();
        foreach (var item in items)
        {
            arr.Add(item.DeepClone());
        }
        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "List",
            ["items"] = arr,
        };
    }

    public static string ToJson(JsonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, s_jsonOptions))
        {
            node.WriteTo(writer);
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>One YAML document (no <c>---</c>), block style, as <c>kubectl get -o yaml</c> prints it.</summary>
    public static string ToYaml(JsonNode? node)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        // No line folding (width), so long strings survive a round trip through any reader.
        var emitter = new Emitter(text, new EmitterSettings(2, int.MaxValue, false, 1024, newLine: "\n"));
        emitter.Emit(new StreamStart());
        emitter.Emit(new DocumentStart(null, null, true));
        Emit(emitter, node);
        emitter.Emit(new DocumentEnd(true));
        emitter.Emit(new StreamEnd());
        return text.ToString();
    }

    private static void Emit(Emitter emitter, JsonNode? node)
    {
        switch (node)
        {
            case null:
                emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, "null", ScalarStyle.Plain, true, false));
                break;
            case JsonObject obj:
                emitter.Emit(new MappingStart(AnchorName.Empty, TagName.Empty, true, obj.Count == 0 ? MappingStyle.Flow : MappingStyle.Block));
                foreach (var (key, value) in obj)
                {
                    EmitString(emitter, key, isKey: true);
                    Emit(emitter, value);
                }
                emitter.Emit(new MappingEnd());
                break;
            case JsonArray arr:
                emitter.Emit(new SequenceStart(AnchorName.Empty, TagName.Empty, true, arr.Count == 0 ? SequenceStyle.Flow : SequenceStyle.Block));
                foreach (var item in arr)
                {
                    Emit(emitter, item);
                }
                emitter.Emit(new SequenceEnd());
                break;
            case JsonValue value:
                switch (value.GetValueKind())
                {
                    case JsonValueKind.String:
                        EmitString(emitter, value.GetValue<string>());
                        break;
                    case JsonValueKind.True:
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, "true", ScalarStyle.Plain, true, false));
                        break;
                    case JsonValueKind.False:
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, "false", ScalarStyle.Plain, true, false));
                        break;
                    case JsonValueKind.Number:
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, value.ToJsonString(), ScalarStyle.Plain, true, false));
                        break;
                    default:
                        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, "null", ScalarStyle.Plain, true, false));
                        break;
                }
                break;
        }
    }

    private static void EmitString(Emitter emitter, string s, bool isKey = false)
    {
        bool multiline = s.Contains('\n', StringComparison.Ordinal);
        bool printable = !s.Any(IsOdd);
        ScalarStyle style =
            // Text that would read back as a number, boolean or null: double-quoted, as Go's encoder does.
            YamlScalars.NeedsQuotes(s) ? ScalarStyle.DoubleQuoted
            : !multiline && PlainSafe(s) ? ScalarStyle.Plain
            : !multiline && printable ? ScalarStyle.SingleQuoted
            // Multi-line text as a literal block, as Go's encoder writes it, where that reads back exactly.
            : multiline && !isKey && LiteralSafe(s) ? ScalarStyle.Literal
            : ScalarStyle.DoubleQuoted;
        emitter.Emit(new Scalar(AnchorName.Empty, TagName.Empty, s, style, true, true));
    }

    // Deliberately narrower than YAML's plain-scalar grammar, whose edges YamlDotNet's emitter and scanner read
    // differently (found by round-trip fuzzing): letters, digits, spaces and a few safe punctuation marks, no
    // indicator first, no ": " and no blank or ':' last. Image names, paths, CIDRs and flags stay plain.
    private static bool PlainSafe(string s)
    {
        if (s.Length == 0 || s.StartsWith("---", StringComparison.Ordinal) || s.StartsWith("...", StringComparison.Ordinal))
        {
            return false;
        }
        char first = s[0];
        bool firstOk = char.IsLetterOrDigit(first) || first is '/' or '.' or '_' or '(' or '+' or '$' or '^' or '=' or '<' or ';' or '~'
            || (first == '-' && s.Length > 1 && (char.IsLetterOrDigit(s[1]) || s[1] == '-'));
        if (!firstOk || s[^1] is ':' or ' ')
        {
            return false;
        }
        foreach (char c in s)
        {
            if (!(char.IsLetterOrDigit(c) || c is ' ' or '-' or '.' or '_' or '/' or ':' or '@' or '+' or '=' or '~' or '(' or ')' or '$' or '^' or ';' or '<' or ',' or '%'))
            {
                return false;
            }
        }
        return !s.Contains(": ", StringComparison.Ordinal);
    }

    // Characters a YAML reader may treat as breaks or strip: only double quotes (with escapes) carry them.
    private static bool IsOdd(char c) => char.IsControl(c) || c is '\u2028' or '\u2029' or '\uFEFF';

    // A literal block reads back exactly when no line ends in a blank, the text does not start with a line
    // break, and it does not end in more than one (chomping would drop them).
    private static bool LiteralSafe(string s) =>
        !s.Contains(" \n", StringComparison.Ordinal) && !s.Contains('\r', StringComparison.Ordinal)
        && s[0] != '\n' && !s.EndsWith("\n\n", StringComparison.Ordinal) && s.Trim().Length > 0;
}
