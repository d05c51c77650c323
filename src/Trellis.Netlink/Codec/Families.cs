using System.Net.Sockets;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Codec;

/// <summary>.NET's AddressFamily numbers are Windows' (InterNetworkV6 = 23), not Linux's (AF_INET6 = 10).</summary>
internal static class Families
{
    public static byte ToKernel(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => AddressFamilies.AF_INET,
        AddressFamily.InterNetworkV6 => AddressFamilies.AF_INET6,
        AddressFamily.Unspecified => AddressFamilies.AF_UNSPEC,
        _ => throw new ArgumentException($"unsupported address family {family}", nameof(family)),
    };

    public static byte ToKernel(AddressFamily? family) => family is { } f ? ToKernel(f) : AddressFamilies.AF_UNSPEC;

    public static int AddressLength(byte family) => family == AddressFamilies.AF_INET ? 4 : 16;
}
