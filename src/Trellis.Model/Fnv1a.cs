namespace Trellis.Model;

/// <summary>
/// 64-bit FNV-1a over UTF-16 code units: a stable, allocation-free hash for deriving short names
/// (veth names, aliases, file names). Not cryptographic, on purpose: System.Security.Cryptography
/// loads OpenSSL, which costs a short-lived process like trellis-cni about 2 ms.
/// </summary>
public static class Fnv1a
{
    public static ulong Hash(ReadOnlySpan<char> text)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in text)
        {
            h = (h ^ c) * 1099511628211UL;
        }
        return h;
    }

    /// <summary>The hash as 16 lower-case hex digits.</summary>
    public static string Hex(ReadOnlySpan<char> text) => Hash(text).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
}
