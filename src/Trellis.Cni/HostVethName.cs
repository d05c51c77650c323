using Trellis.Model;

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
        // FNV-1a, not SHA-256 (see Fnv1a): this name needs spread, not secrecy. 48 bits make a
        // collision among even 10,000 pods on one node a one-in-50,000 event; ADD refuses rather
        // than steals (EEXIST).
        ulong h = Fnv1a.Hash($"{network}\n{containerId}\n{ifName}\n");
        // 3 + 12 hex characters = 15, the kernel's IFNAMSIZ - 1.
        return Prefix + (h & 0xFFFF_FFFF_FFFFUL).ToString("x12", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>IFALIASZ - 1: the kernel refuses longer aliases with ERANGE.</summary>
    private const int MaxAliasBytes = 255;

    /// <summary>
    /// "trellis-cni NETWORK CONTAINERID IFNAME"; when that does not fit the kernel's 255 bytes (the
    /// spec sets no limit on container ids), "trellis-cni #NETHASH ATTACHMENTHASH" instead.
    /// </summary>
    public static string Alias(string network, string containerId, string ifName)
    {
        string plain = $"{AliasPrefix}{network} {containerId} {ifName}";
        return System.Text.Encoding.UTF8.GetByteCount(plain) <= MaxAliasBytes
            ? plain
            : $"{AliasPrefix}#{Hash(network)} {Hash(network + "\n" + containerId + "\n" + ifName)}";
    }

    /// <summary>Whether the alias labels a link of this network (in either form).</summary>
    public static bool IsOfNetwork(string? alias, string network) =>
        alias is not null && alias.StartsWith(AliasPrefix, StringComparison.Ordinal)
        && (alias.StartsWith($"{AliasPrefix}{network} ", StringComparison.Ordinal) || alias.StartsWith($"{AliasPrefix}#{Hash(network)} ", StringComparison.Ordinal));

    private static string Hash(string text) => Fnv1a.Hex(text);
}
