using System.Globalization;
using System.Text.RegularExpressions;

namespace Trellis.Nftables;

/// <summary>
/// Reads nft's stderr. A located error is three lines — <c>FILE:LINE:FIRST-LAST: Error: MESSAGE</c>, the source
/// line, and a caret marker — where FILE is <c>/dev/stdin</c> for <c>-f -</c>; an unlocated one (a
/// <c>list</c> command, a netlink failure nft cannot pin to a command) is <c>[netlink: ]Error: MESSAGE</c>
/// followed by the command and carets. nft reports every evaluation error of a script, not only the first.
/// Warnings are not errors and are skipped.
/// </summary>
internal static partial class NftErrorParser
{
    public static IReadOnlyList<NftError> Parse(string stderr, string? transaction)
    {
        ArgumentNullException.ThrowIfNull(stderr);
        string[] source = transaction?.Split('\n') ?? [];
        string[] lines = stderr.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var errors = new List<NftError>();
        for (int i = 0; i < lines.Length; i++)
        {
            var located = Located().Match(lines[i]);
            if (located.Success)
            {
                int line = int.Parse(located.Groups["line"].Value, CultureInfo.InvariantCulture);
                // nft's internal errors say "internal:0:0-0": no line of ours to blame.
                int? at = line > 0 ? line : null;
                string? text = at is int n && n <= source.Length ? source[n - 1].TrimEnd('\r')
                    : at is not null && i + 1 < lines.Length ? lines[i + 1]
                    : null;
                errors.Add(new NftError(at,
                    at is null ? null : int.Parse(located.Groups["first"].Value, CultureInfo.InvariantCulture),
                    at is null ? null : int.Parse(located.Groups["last"].Value, CultureInfo.InvariantCulture),
                    located.Groups["message"].Value.Trim(), text));
                continue;
            }
            var bare = Bare().Match(lines[i]);
            if (bare.Success)
            {
                // The next line, when it is not a caret marker or another message, is the command nft ran.
                string? text = i + 1 < lines.Length && lines[i + 1].Trim().Length > 0 && !IsCarets(lines[i + 1])
                    && !Bare().IsMatch(lines[i + 1]) && !Located().IsMatch(lines[i + 1])
                    ? lines[i + 1]
                    : null;
                errors.Add(new NftError(null, null, null, bare.Groups["message"].Value.Trim(), text));
            }
        }
        return errors;
    }

    private static bool IsCarets(string line)
    {
        string t = line.Trim();
        return t.Length > 0 && t.All(c => c is '^' or '~');
    }

    [GeneratedRegex(@"^(?<file>[^\s:][^:]*):(?<line>\d+):(?<first>\d+)-(?<last>\d+): Error: (?<message>.*)$", RegexOptions.CultureInvariant)]
    private static partial Regex Located();

    [GeneratedRegex(@"^(?:[a-z]+: )?Error: (?<message>.*)$", RegexOptions.CultureInvariant)]
    private static partial Regex Bare();
}
