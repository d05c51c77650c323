using System.Globalization;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>intstr.IntOrString: a port number or a port name. JSON "80" is the string "80", as in Go.</summary>
public readonly record struct IntOrString
{
    private IntOrString(bool isInt, long intValue, string? stringValue)
    {
        IsInt = isInt;
        IntValue = intValue;
        StringValue = stringValue;
    }

    public bool IsInt { get; }

    public long IntValue { get; }

    public string? StringValue { get; }

    public static IntOrString FromInt(long value) => new(true, value, null);

    public static IntOrString FromString(string value) => new(false, 0, value);

    public static IntOrString? FromJson(JsonNode? node) =>
        JsonAccess.AsInteger(node) is { } i ? FromInt(i)
        : JsonAccess.AsString(node) is { } s ? FromString(s)
        : null;

    public JsonNode ToJson() => IsInt ? JsonValue.Create(IntValue) : JsonValue.Create(StringValue ?? "");

    public override string ToString() => IsInt ? IntValue.ToString(CultureInfo.InvariantCulture) : StringValue ?? "";
}
