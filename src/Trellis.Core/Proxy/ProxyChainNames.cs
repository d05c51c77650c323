using System.Security.Cryptography;
using System.Text;

namespace Trellis.Core.Proxy;

/// <summary>
/// Per-service chain and set names as kube-proxy's nftables backend forms them:
/// <c>PREFIX-HASH8-ns/name/proto/port[__ip/port]</c>, where HASH8 is the first 8 characters of the base32
/// (RFC 4648) SHA-256 of the rest. The hash keeps names distinguishable at a glance (endpoint chains that
/// differ in one digit) and stable across runs and restarts; '/' separates the parts because it is allowed
/// in nft names but not in Kubernetes names, so no two service ports share a name.
/// </summary>
internal static class ProxyChainNames
{
    // knftables.NameLengthMax (256) minus the longest prefix kube-proxy reserves (16).
    private const int BaseLengthMax = 240;

    private const string Base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    public static string ServicePortBase(string ns, string name, string protocol, string portName) =>
        HashAndTruncate($"{ns}/{name}/{protocol}/{portName}");

    public static string EndpointBase(string ns, string name, string protocol, string portName, ProxyEndpoint ep) =>
        HashAndTruncate($"{ns}/{name}/{protocol}/{portName}__{ep.Ip}/{ep.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}");

    internal static string HashAndTruncate(string name)
    {
        string result = Hash8(name) + "-" + name;
        return result.Length > BaseLengthMax ? result[..(BaseLengthMax - 3)] + "..." : result;
    }

    /// <summary>The first 8 base32 characters of SHA-256(name): exactly the first 40 bits of the digest.</summary>
    internal static string Hash8(string name)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(name), hash);
        ulong bits = 0;
        for (int i = 0; i < 5; i++)
        {
            bits = (bits << 8) | hash[i];
        }
        Span<char> chars = stackalloc char[8];
        for (int i = 7; i >= 0; i--)
        {
            chars[i] = Base32Alphabet[(int)(bits & 31)];
            bits >>= 5;
        }
        return new string(chars);
    }
}
