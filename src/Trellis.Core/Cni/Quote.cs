using System.Globalization;
using System.Text;

namespace Trellis.Core.Cni;

/// <summary>Quotes untrusted text for an error message: bounded length, control characters escaped.</summary>
internal static class Quote
{
    private const int MaxRunes = 80;

    public static string Of(string? text) => text is null ? "null" : "\"" + Escape(text, MaxRunes, quoting: true) + "\"";

    /// <summary>Escapes control characters in text that may echo untrusted bytes (parser messages).</summary>
    public static string Clean(string text) => Escape(text, int.MaxValue, quoting: false);

    private static string Escape(string text, int maxRunes, bool quoting)
    {
        var sb = new StringBuilder(Math.Min(text.Length, maxRunes) + 8);
        int n = 0;
        // EnumerateRunes turns lone surrogates into U+FFFD, so the result is always well-formed.
        foreach (var rune in text.EnumerateRunes())
        {
            if (n++ == maxRunes)
            {
                sb.Append('…');
                break;
            }
            switch (rune.Value)
            {
                case '"' when quoting: sb.Append("\\\""); break;
                case '\\' when quoting: sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (Rune.IsControl(rune))
                    {
                        sb.Append("\\u").Append(rune.Value.ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(rune.ToString());
                    }
                    break;
            }
        }
        return sb.ToString();
    }
}
