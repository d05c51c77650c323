using System.Globalization;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// Typing of plain YAML scalars by the YAML 1.2 core schema, which is what a manifest author means and,
/// for everything that occurs in real manifests, what kubectl's sigs.k8s.io/yaml produces. One YAML 1.1
/// form is kept because upstream manifests depend on it: a leading-zero integer (<c>defaultMode: 0644</c>)
/// is octal. YAML 1.1's yes/no/on/off stay strings (kubectl would make them booleans, which the API
/// server then refuses in string fields).
/// </summary>
internal static class YamlScalars
{
    public enum Type
    {
        String,
        Null,
        Bool,
        Int,
        Float,
    }

    public static Type Classify(string s)
    {
        if (s.Length == 0 || s is "~" or "null" or "Null" or "NULL")
        {
            return Type.Null;
        }
        if (s is "true" or "True" or "TRUE" or "false" or "False" or "FALSE")
        {
            return Type.Bool;
        }
        char c = s[0];
        if (!(char.IsAsciiDigit(c) || c is '-' or '+' or '.'))
        {
            return Type.String;
        }
        if (IsInt(s))
        {
            return Type.Int;
        }
        return IsFloat(s) ? Type.Float : Type.String;
    }

    /// <summary>The JSON value of a plain scalar; strings come back as JSON strings.</summary>
    public static JsonNode? ToJson(string s, out string? error)
    {
        error = null;
        switch (Classify(s))
        {
            case Type.Null:
                return null;
            case Type.Bool:
                return JsonValue.Create(s[0] is 't' or 'T');
            case Type.Int:
                return ParseInt(s);
            case Type.Float:
                return ParseFloat(s, out error);
            default:
                return JsonValue.Create(s);
        }
    }

    /// <summary>Whether a string written plain would read back as something other than that string — in this
    /// schema or in YAML 1.1 (so that Go's YAML v2 decoders read our output the same).</summary>
    public static bool NeedsQuotes(string s)
    {
        if (Classify(s) != Type.String)
        {
            return true;
        }
        if (s is "y" or "Y" or "yes" or "Yes" or "YES" or "n" or "N" or "no" or "No" or "NO"
            or "on" or "On" or "ON" or "off" or "Off" or "OFF" or "<<" or "=")
        {
            return true;
        }
        // YAML 1.1 timestamps ("2025-01-02T03:04:05Z"), which Go's YAML v2 decoder would turn into time values.
        if (s.Length >= 8 && char.IsAsciiDigit(s[0]) && char.IsAsciiDigit(s[1]) && char.IsAsciiDigit(s[2]) && char.IsAsciiDigit(s[3]) && s[4] == '-' && char.IsAsciiDigit(s[5]))
        {
            return true;
        }
        // YAML 1.1 numbers with '_' separators or sexagesimal parts ("1_000", "1:30").
        if (s.Length > 0 && (char.IsAsciiDigit(s[0]) || s[0] is '-' or '+' or '.'))
        {
            string t = s.Replace("_", "", StringComparison.Ordinal).Replace(":", "", StringComparison.Ordinal);
            return t.Length > 0 && Classify(t) is Type.Int or Type.Float;
        }
        return false;
    }

    public static bool IsInt(string s)
    {
        if (s.StartsWith("0x", StringComparison.Ordinal))
        {
            return s.Length > 2 && s.AsSpan(2).ContainsAnyExcept(HexDigits) == false;
        }
        if (s.StartsWith("0o", StringComparison.Ordinal))
        {
            return s.Length > 2 && s.AsSpan(2).ContainsAnyExceptInRange('0', '7') == false;
        }
        var digits = s.AsSpan(s[0] is '-' or '+' ? 1 : 0);
        return digits.Length > 0 && !digits.ContainsAnyExceptInRange('0', '9');
    }

    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?  |  [-+]?\.(inf|Inf|INF)  |  \.nan|\.NaN|\.NAN
    public static bool IsFloat(string s)
    {
        var t = s.AsSpan();
        if (t is ".nan" or ".NaN" or ".NAN")
        {
            return true;
        }
        if (t.Length > 0 && t[0] is '-' or '+')
        {
            t = t[1..];
        }
        if (t is ".inf" or ".Inf" or ".INF")
        {
            return true;
        }
        int i = 0;
        int intDigits = 0;
        while (i < t.Length && char.IsAsciiDigit(t[i]))
        {
            i++;
            intDigits++;
        }
        int fracDigits = 0;
        if (i < t.Length && t[i] == '.')
        {
            i++;
            while (i < t.Length && char.IsAsciiDigit(t[i]))
            {
                i++;
                fracDigits++;
            }
            if (intDigits == 0 && fracDigits == 0)
            {
                return false;
            }
        }
        else if (intDigits == 0)
        {
            return false;
        }
        if (i < t.Length && t[i] is 'e' or 'E')
        {
            i++;
            if (i < t.Length && t[i] is '-' or '+')
            {
                i++;
            }
            int expDigits = 0;
            while (i < t.Length && char.IsAsciiDigit(t[i]))
            {
                i++;
                expDigits++;
            }
            if (expDigits == 0)
            {
                return false;
            }
        }
        return i == t.Length;
    }

    private static JsonValue ParseInt(string s)
    {
        bool negative = s[0] == '-';
        var body = s.AsSpan(s[0] is '-' or '+' ? 1 : 0);
        UInt128 magnitude;
        if (s.StartsWith("0x", StringComparison.Ordinal))
        {
            if (!UInt128.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out magnitude))
            {
                return JsonValue.Create(s);
            }
        }
        else if (s.StartsWith("0o", StringComparison.Ordinal) || (body.Length > 1 && body[0] == '0'))
        {
            // 0o17 (YAML 1.2) and 017 (YAML 1.1, as in "defaultMode: 0644") are octal.
            var oct = s.StartsWith("0o", StringComparison.Ordinal) ? s.AsSpan(2) : body;
            if (oct.ContainsAnyExceptInRange('0', '7'))
            {
                return JsonValue.Create(double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture) is var d && d == Math.Floor(d) && Math.Abs(d) < 1e15 ? (long)d : d);
            }
            magnitude = 0;
            foreach (char c in oct)
            {
                if (magnitude > (UInt128.MaxValue >> 3))
                {
                    return JsonValue.Create(double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture));
                }
                magnitude = (magnitude << 3) | (uint)(c - '0');
            }
        }
        else if (!UInt128.TryParse(body, NumberStyles.None, CultureInfo.InvariantCulture, out magnitude))
        {
            return JsonValue.Create(double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture));
        }
        if (!negative && magnitude <= long.MaxValue)
        {
            return JsonValue.Create((long)magnitude);
        }
        if (negative && magnitude <= (UInt128)long.MaxValue + 1)
        {
            return JsonValue.Create(magnitude == (UInt128)long.MaxValue + 1 ? long.MinValue : -(long)magnitude);
        }
        if (!negative && magnitude <= ulong.MaxValue)
        {
            return JsonValue.Create((ulong)magnitude);
        }
        // Beyond 64 bits Go's YAML decoder falls back to float64, and so do we.
        double big = (double)magnitude;
        return JsonValue.Create(negative ? -big : big);
    }

    private static JsonValue? ParseFloat(string s, out string? error)
    {
        error = null;
        if (s.EndsWith("inf", StringComparison.OrdinalIgnoreCase) || s.EndsWith("nan", StringComparison.OrdinalIgnoreCase))
        {
            error = $"{s} cannot be represented in JSON";
            return null;
        }
        double d = double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (double.IsInfinity(d))
        {
            error = $"{s} is out of range for a JSON number";
            return null;
        }
        // Go's encoder writes float64 80 as "80": an integral float is an integer to every consumer.
        return d == Math.Floor(d) && Math.Abs(d) < 1e15 ? JsonValue.Create((long)d) : JsonValue.Create(d);
    }

    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdefABCDEF");
}
