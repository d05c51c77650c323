using System.Net;
using System.Net.Sockets;
using Trellis.Model;

namespace Trellis.Core.Objects;

/// <summary>
/// IP and CIDR syntax as the API server checks it for new objects (StrictIPCIDRValidation): no leading zeros
/// ("010.1.1.1" reads as octal elsewhere), no zones, no shortened IPv4 ("10.1"). Host bits in a CIDR are allowed,
/// as the legacy parser allowed them.
/// </summary>
internal static class IpSyntax
{
    public const string IpExample = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
    public const string CidrExample = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

    public static bool TryParseIp(string? text, out IPAddress address)
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
        var parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }
        foreach (var p in parts)
        {
            if (p.Length is 0 or > 3 || p.AsSpan().ContainsAnyExceptInRange('0', '9') || (p.Length > 1 && p[0] == '0') || int.Parse(p, System.Globalization.CultureInfo.InvariantCulture) > 255)
            {
                return false;
            }
        }
        address = IPAddress.Parse(text);
        return true;
    }

    public static bool TryParseCidr(string? text, out IPCidr cidr)
    {
        cidr = default;
        if (text is null)
        {
            return false;
        }
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || !TryParseIp(text[..slash], out var ip))
        {
            return false;
        }
        var len = text.AsSpan(slash + 1);
        if (len.Length is 0 or > 3 || len.ContainsAnyExceptInRange('0', '9') || (len.Length > 1 && len[0] == '0'))
        {
            return false;
        }
        int prefix = int.Parse(len, System.Globalization.CultureInfo.InvariantCulture);
        if (prefix > (ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
        {
            return false;
        }
        cidr = new IPCidr(ip, prefix);
        return true;
    }

    /// <summary>apivalidation.ValidateNonSpecialIP / ValidateEndpointIP: the addresses that cannot be a service or endpoint address.</summary>
    public static string? SpecialIpProblem(IPAddress ip)
    {
        if (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
        {
            return "may not be unspecified (0.0.0.0)";
        }
        if (IPAddress.IsLoopback(ip))
        {
            return "may not be in the loopback range (127.0.0.0/8, ::1/128)";
        }
        var bytes = ip.GetAddressBytes();
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            if (bytes[0] == 169 && bytes[1] == 254)
            {
                return "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
            }
            if (bytes[0] == 224 && bytes[1] == 0 && bytes[2] == 0)
            {
                return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)";
            }
            return null;
        }
        if (ip.IsIPv6LinkLocal)
        {
            return "may not be in the link-local range (169.254.0.0/16, fe80::/10)";
        }
        if (bytes[0] == 0xff && (bytes[1] & 0x0f) == 0x02)
        {
            return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)";
        }
        return null;
    }
}
