using System.Globalization;
using System.Text;

namespace Trellis.Core.Cni;

/// <summary>The spec's naming rules, each returning the reason a value fails (null when it is fine).</summary>
public static class CniNames
{
    /// <summary>Linux IFNAMSIZ is 16 bytes including the terminating NUL.</summary>
    public const int MaxInterfaceNameBytes = 15;

    /// <summary>
    /// Container IDs and network names: <c>^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$</c> (SPEC.md, CNI_CONTAINERID
    /// and the network configuration's <c>name</c>).
    /// </summary>
    public static string? CheckIdentifier(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length == 0)
        {
            return "must not be empty";
        }
        if (!char.IsAsciiLetterOrDigit(value[0]))
        {
            return $"{Quote.Of(value)} must start with a letter or digit";
        }
        foreach (char c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
            {
                return $"{Quote.Of(value)} may contain only letters, digits, '_', '.' and '-'";
            }
        }
        return null;
    }

    /// <summary>
    /// The kernel's <c>dev_valid_name</c> rules as the spec restates them: 1-15 bytes, not "." or "..",
    /// no '/', ':' or whitespace. Whitespace is Unicode whitespace, as libcni's check uses unicode.IsSpace.
    /// </summary>
    public static string? CheckInterfaceName(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length == 0)
        {
            return "must not be empty";
        }
        int bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > MaxInterfaceNameBytes)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{Quote.Of(value)} is {bytes} bytes long; at most {MaxInterfaceNameBytes} allowed");
        }
        if (value is "." or "..")
        {
            return $"{Quote.Of(value)} is not a valid interface name";
        }
        foreach (var rune in value.EnumerateRunes())
        {
            if (rune.Value == '/')
            {
                return $"{Quote.Of(value)} must not contain '/'";
            }
            if (rune.Value == ':')
            {
                return $"{Quote.Of(value)} must not contain ':'";
            }
            if (Rune.IsWhiteSpace(rune) || Rune.IsControl(rune))
            {
                return $"{Quote.Of(value)} must not contain whitespace or control characters";
            }
        }
        if (value.Contains('\uFFFD', StringComparison.Ordinal))
        {
            return $"{Quote.Of(value)} is not valid UTF-8";
        }
        // The kernel's dev_valid_name tests isspace() on each *byte*, and its ctype table counts
        // 0xA0 (Latin-1 NBSP) as a space: "à" (c3 a0) is refused with EINVAL.
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(value))
        {
            if (b == 0xA0)
            {
                return $"{Quote.Of(value)} contains a byte the kernel reads as whitespace (0xA0)";
            }
        }
        return null;
    }

    /// <summary>
    /// A 48-bit MAC in colon or hyphen form ("0a:58:0a:f4:01:05"), returned lower-case with colons.
    /// It must be unicast (I/G bit clear) and not all zeros: a veth cannot take anything else.
    /// </summary>
    public static string? CheckMac(string value, out string normalized)
    {
        ArgumentNullException.ThrowIfNull(value);
        normalized = "";
        if (value.Length != 17)
        {
            return $"{Quote.Of(value)} is not a MAC address (expected six hex octets like 0a:58:0a:f4:01:05)";
        }
        char sep = value[2];
        if (sep is not (':' or '-'))
        {
            return $"{Quote.Of(value)} is not a MAC address (expected six hex octets like 0a:58:0a:f4:01:05)";
        }
        Span<byte> octets = stackalloc byte[6];
        for (int i = 0; i < 6; i++)
        {
            int at = i * 3;
            if ((i < 5 && value[at + 2] != sep)
                || !byte.TryParse(value.AsSpan(at, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out octets[i])
                || !char.IsAsciiHexDigit(value[at]) || !char.IsAsciiHexDigit(value[at + 1]))
            {
                return $"{Quote.Of(value)} is not a MAC address (expected six hex octets like 0a:58:0a:f4:01:05)";
            }
        }
        if ((octets[0] & 1) != 0)
        {
            return $"{Quote.Of(value)} is a multicast/broadcast MAC address; a unicast address is required";
        }
        if (!octets.ContainsAnyExcept((byte)0))
        {
            return $"{Quote.Of(value)} is the all-zero MAC address";
        }
        normalized = Convert.ToHexStringLower(octets[..1]);
        for (int i = 1; i < 6; i++)
        {
            normalized += ":" + Convert.ToHexStringLower(octets.Slice(i, 1));
        }
        return null;
    }
}
