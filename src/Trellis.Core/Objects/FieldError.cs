using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// One refusal, worded as the API server words it (k8s.io/apimachinery/pkg/util/validation/field):
/// <c>spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive</c>.
/// </summary>
public sealed record FieldError(string Path, string Message)
{
    public override string ToString() => $"{Path}: {Message}";

    public static FieldError Required(string path, string detail = "") => new(path, WithDetail("Required value", detail));

    public static FieldError Forbidden(string path, string detail) => new(path, WithDetail("Forbidden", detail));

    public static FieldError Invalid(string path, string value, string detail) => new(path, WithDetail("Invalid value: " + Quote(value), detail));

    public static FieldError Invalid(string path, long value, string detail) =>
        new(path, WithDetail("Invalid value: " + value.ToString(CultureInfo.InvariantCulture), detail));

    /// <summary>A bad value of any JSON type, shown as a string is shown (quoted) and anything else as compact JSON.</summary>
    public static FieldError Invalid(string path, JsonNode? value, string detail) =>
        JsonAccess.AsString(value) is { } s ? Invalid(path, s, detail) : new(path, WithDetail("Invalid value: " + Show(value), detail));

    public static FieldError NotSupported(string path, string value, IEnumerable<string> supported) =>
        new(path, "Unsupported value: " + Quote(value) + ": supported values: " + string.Join(", ", supported.Order(StringComparer.Ordinal).Select(Quote)));

    public static FieldError Duplicate(string path, string value) => new(path, "Duplicate value: " + Quote(value));

    public static FieldError Duplicate(string path, long value) => new(path, "Duplicate value: " + value.ToString(CultureInfo.InvariantCulture));

    public static FieldError DuplicateRaw(string path, string shown) => new(path, "Duplicate value: " + shown);

    public static FieldError TooLong(string path, int maxBytes) => new(path, $"Too long: may not be more than {maxBytes} bytes");

    public static FieldError TooMany(string path, int actual, int max) => new(path, $"Too many: {actual}: must have at most {max} items");

    /// <summary>A value of the wrong JSON type (the API server's decoder refuses these before validation).</summary>
    public static FieldError WrongType(string path, JsonNode? value, string expected) =>
        new(path, "Invalid value: " + Show(value) + ": must be " + expected);

    private static string WithDetail(string head, string detail) => detail.Length == 0 ? head : head + ": " + detail;

    private static string Show(JsonNode? value) => value is null ? "null" : value.ToJsonString();

    /// <summary>Go's %q for the strings that occur here: printable text in double quotes, escapes for the rest.</summary>
    internal static string Quote(string value)
    {
        var sb = new StringBuilder(value.Length + 2);
        sb.Append('"');
        foreach (var rune in value.EnumerateRunes())
        {
            switch (rune.Value)
            {
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                default:
                    if (Rune.IsControl(rune))
                    {
                        sb.Append(rune.Value <= 0xff ? $"\\x{rune.Value:x2}" : $"\\u{rune.Value:x4}");
                    }
                    else
                    {
                        sb.Append(rune.ToString());
                    }
                    break;
            }
        }
        sb.Append('"');
        return sb.ToString();
    }
}
