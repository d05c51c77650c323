using System.Net;
using System.Net.Sockets;
using Trellis.Model;

namespace Trellis.Core.Cni;

/// <summary>
/// Strict textual IP parsing. <see cref="IPAddress.TryParse(string?, out IPAddress?)"/> takes forms Go's
/// net.ParseIP refuses and that mean something else to a reader: "010.1.1.1" is octal (8.1.1.1),
/// "0x0a.1.1.1" hex, "10.1" is 10.0.0.1, "[::1]" and "fe80::1%eth0" carry brackets and zones.
/// </summary>
internal static class IpText
{
    public static bool TryParseAddress(string? text, out IPAddress address)
    {
        address = IPAddress.None;
        if (string.IsNullOrEmpty(text) || text.Length > 45)
        {
            return false;
        }
        if (text.Contains(':', StringComparison.Ordinal))
        {
            foreach (char c in text)
            {
                if (!(char.IsAsciiHexDigit(c) || c is ':' or '.'))
                {
                    return false;
                }
            }
            if (!IPAddress.TryParse(text, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }
            address = v6;
            return true;
        }
        if (!IsDottedQuad(text))
        {
            return false;
        }
        if (!IPAddress.TryParse(text, out var v4))
        {
            return false;
        }
        address = v4;
        return true;
    }

    /// <summary>"addr/len" with a strict address; host bits may be set.</summary>
    public static bool TryParseCidr(string? text, out IPCidr cidr)
    {
        cidr = default;
        if (text is null)
        {
            return false;
        }
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !TryParseAddress(text[..slash], out _))
        {
            return false;
        }
        return IPCidr.TryParse(text, out cidr);
    }

    /// <summary>Either "addr" or "addr/len" (host-local's ip.IP accepts both for requested IPs).</summary>
    public static bool TryParseAddressOrCidr(string? text, out IPAddress address)
    {
        if (TryParseAddress(text, out address))
        {
            return true;
        }
        if (TryParseCidr(text, out var cidr))
        {
            address = cidr.Address;
            return true;
        }
        return false;
    }

    public static string FamilyName(AddressFamily family) => family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";

    private static bool IsDottedQuad(string text)
    {
        int parts = 0;
        int start = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            if (i == text.Length || text[i] == '.')
            {
                int len = i - start;
                if (len is 0 or > 3)
                {
                    return false;
                }
                if (len > 1 && text[start] == '0')
                {
                    return false;
                }
                int value = 0;
                for (int j = start; j < i; j++)
                {
                    if (!char.IsAsciiDigit(text[j]))
                    {
                        return false;
                    }
                    value = (value * 10) + (text[j] - '0');
                }
                if (value > 255)
                {
                    return false;
                }
                parts++;
                start = i + 1;
            }
        }
        return parts == 4;
    }
}
