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
    /// <summary>The same strict syntax the object validators use (one implementation: <see cref="Objects.IpSyntax"/>).</summary>
    public static bool TryParseAddress(string? text, out IPAddress address) => Objects.IpSyntax.TryParseIp(text, out address);

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
}
