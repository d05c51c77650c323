using System.Globalization;

namespace Trellis.Core.Lab;

/// <summary>
/// Names of everything a lab creates. Namespaces are "trl-&lt;lab&gt;-…" (DESIGN.md §5: the only
/// things a lab may create on this machine); kernel interface names are at most 15 characters,
/// so those derive from a short hash.
/// </summary>
public static class LabNames
{
    public const int MaxLabNameLength = 20;
    public const int MaxNodeNameLength = 40;

    public static bool IsValidLabName(string name) =>
        name.Length is > 0 and <= MaxLabNameLength && name[0] is >= 'a' and <= 'z' && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-') && !name.EndsWith('-');

    public static bool IsValidNodeName(string name) =>
        name.Length is > 0 and <= MaxNodeNameLength && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1])
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-');

    public static string Prefix(string lab) => $"trl-{lab}-";

    public static string UnderlayNetns(string lab) => $"trl-{lab}-ul";

    public static string NodeNetns(string lab, string node) => $"trl-{lab}-{node}";

    /// <summary>A pod's netns: readable (namespace and name) and unique (a hash of the pod's uid).</summary>
    public static string PodNetns(string lab, string ns, string pod, string uid) =>
        $"trl-{lab}-p-{Trim(ns, 20)}-{Trim(pod, 40)}-{Hash(uid, 6)}";

    /// <summary>The underlay bridge's port for a node ("u" + 12 hex = 13 characters).</summary>
    public static string UnderlayPort(string lab, string node) => "u" + Hash(lab + "/" + node, 12);

    public static string RunDir(string lab) => $"/run/trellis/{lab}";

    public static string LogDir(string lab) => $"/var/log/trellis/{lab}";

    public static string StateFile(string lab) => $"{RunDir(lab)}/lab.json";

    private static string Trim(string s, int max) => s.Length <= max ? s : s[..max];

    internal static string Hash(string text, int hexChars) => Trellis.Model.Fnv1a.Hex(text)[..hexChars];
}
