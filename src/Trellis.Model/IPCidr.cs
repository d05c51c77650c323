using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Trellis.Model;

/// <summary>
/// An address together with a prefix length, as written in CIDR notation ("10.244.1.5/24").
/// Unlike <see cref="IPNetwork"/>, host bits may be set: this is what an interface address,
/// a CNI result "address" or a gateway-bearing subnet looks like.
/// </summary>
public readonly record struct IPCidr(IPAddress Address, int PrefixLength)
{
    public AddressFamily Family => Address.AddressFamily;

    public bool IsIPv4 => Address.AddressFamily == AddressFamily.InterNetwork;

    public int MaxPrefixLength => IsIPv4 ? 32 : 128;

    /// <summary>The network with host bits cleared ("10.244.1.0/24").</summary>
    public IPNetwork Network => new(IPAddressMath.Mask(Address, PrefixLength), PrefixLength);

    public bool Contains(IPAddress address) => Network.Contains(address);

    public override string ToString() => $"{Address}/{PrefixLength}";

    public static IPCidr Parse(string text) =>
        TryParse(text, out var cidr) ? cidr : throw new FormatException($"'{text}' is not an address in CIDR notation");

    public static bool TryParse([NotNullWhen(true)] string? text, out IPCidr cidr)
    {
        cidr = default;
        if (text is null)
        {
            return false;
        }
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == text.Length - 1)
        {
            return false;
        }
        var addrText = text.AsSpan(0, slash);
        var lenText = text.AsSpan(slash + 1);
        // IPAddress.TryParse accepts odd forms ("10", "10.1", scope ids): demand dotted quads / plain v6.
        if (addrText.Contains('%') || !IPAddress.TryParse(addrText, out var addr))
        {
            return false;
        }
        if (addr.AddressFamily == AddressFamily.InterNetwork && addrText.Count('.') != 3)
        {
            return false;
        }
        foreach (char c in lenText)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        if (lenText.Length is 0 or > 3 || !int.TryParse(lenText, out int len))
        {
            return false;
        }
        int max = addr.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (len > max)
        {
            return false;
        }
        cidr = new IPCidr(addr, len);
        return true;
    }
}
