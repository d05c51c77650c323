using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Trellis.Netlink;

/// <summary>Link-layer address text in the form <c>ip link</c> prints ("02:42:ac:11:00:02").</summary>
public static class Mac
{
    /// <summary>Parses colon- (or dash-) separated hex octets; 1 to 32 octets.</summary>
    public static byte[] Parse(string text) =>
        TryParse(text, out var mac) ? mac : throw new FormatException($"'{text}' is not a MAC address");

    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out byte[]? mac)
    {
        mac = null;
        if (string.IsNullOrEmpty(text) || (text.Length + 1) % 3 != 0)
        {
            return false;
        }
        int count = (text.Length + 1) / 3;
        if (count > 32)
        {
            return false;
        }
        var bytes = new byte[count];
        char separator = text.Length > 2 ? text[2] : ':';
        if (separator is not (':' or '-'))
        {
            return false;
        }
        for (int i = 0; i < count; i++)
        {
            int at = i * 3;
            if (i > 0 && text[at - 1] != separator)
            {
                return false;
            }
            if (!byte.TryParse(text.AsSpan(at, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out bytes[i]))
            {
                return false;
            }
        }
        mac = bytes;
        return true;
    }

    /// <summary>Lower-case, colon-separated.</summary>
    public static string Format(byte[] mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        return Format(mac.AsSpan());
    }

    public static string Format(ReadOnlySpan<byte> mac)
    {
        if (mac.IsEmpty)
        {
            return string.Empty;
        }
        return string.Create(mac.Length * 3 - 1, mac, static (span, bytes) =>
        {
            const string Hex = "0123456789abcdef";
            for (int i = 0; i < bytes.Length; i++)
            {
                int at = i * 3;
                if (i > 0)
                {
                    span[at - 1] = ':';
                }
                span[at] = Hex[bytes[i] >> 4];
                span[at + 1] = Hex[bytes[i] & 0xf];
            }
        });
    }
}
