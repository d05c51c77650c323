namespace Trellis.Cni;

/// <summary>
/// The host end of a pod's veth is named from a hash of (network, container id, ifname), as
/// Calico's "cali…" names are, so DEL and GC find it with no state of their own and a retried
/// ADD after a crash finds the leftover it must replace. The alias carries the attachment in
/// clear text so GC can tell whose a link is: the kernel keeps that state, not a file that a
/// SIGKILL could leave half-written.
/// </summary>
internal static class HostVethName
{
    public const string Prefix = "trl";
    public const string AliasPrefix = "trellis-cni ";

    public static string For(string network, string containerId, string ifName)
    {
        // FNV-1a, not SHA-256: System.Security.Cryptography loads OpenSSL (libssl + libcrypto,
        // ~2 ms) and this name needs spread, not secrecy. 48 bits make a collision among even
        // 10,000 pods on one node a one-in-50,000 event; ADD refuses rather than steals (EEXIST).
        ulong h = 14695981039346656037UL;
        foreach (string part in (ReadOnlySpan<string>)[network, containerId, ifName])
        {
            foreach (char c in part)
            {
                h = (h ^ c) * 1099511628211UL;
            }
            h = (h ^ '\n') * 1099511628211UL;
        }
        // 3 + 12 hex characters = 15, the kernel's IFNAMSIZ - 1.
        return Prefix + (h & 0xFFFF_FFFF_FFFFUL).ToString("x12", System.Globalization.CultureInfo.InvariantCulture);
    }

    public static string Alias(string network, string containerId, string ifName) =>
        $"{AliasPrefix}{network} {containerId} {ifName}";

    /// <summary>Parses an alias written by <see cref="Alias"/>; null for links that are not ours or another network's.</summary>
    public static (string ContainerId, string IfName)? ParseAlias(string? alias, string network)
    {
        if (alias is null || !alias.StartsWith(AliasPrefix, StringComparison.Ordinal))
        {
            return null;
        }
        var parts = alias[AliasPrefix.Length..].Split(' ');
        return parts.Length == 3 && parts[0] == network ? (parts[1], parts[2]) : null;
    }
}
