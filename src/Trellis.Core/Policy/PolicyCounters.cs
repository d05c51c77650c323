using System.Globalization;

namespace Trellis.Core.Policies;

/// <summary>One counter chain's value, with what it counts.</summary>
public sealed record PolicyCounterValue(PolicyCounterChain Chain, long Packets, long Bytes);

/// <summary>Reads the counter chains' values out of <c>nft list table inet trellis-policy</c> (with counters).</summary>
public static class PolicyCounters
{
    /// <summary>Chain name → (packets, bytes) of the first <c>counter packets N bytes M</c> in each chain.</summary>
    public static Dictionary<string, (long Packets, long Bytes)> ParseListing(string listing)
    {
        ArgumentNullException.ThrowIfNull(listing);
        var result = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        string? chain = null;
        foreach (var raw in listing.Split('\n'))
        {
            string line = raw.Trim();
            if (line.StartsWith("chain ", StringComparison.Ordinal) && line.EndsWith('{'))
            {
                chain = line[6..^1].Trim().Trim('"');
                continue;
            }
            if (line == "}")
            {
                chain = null;
                continue;
            }
            int at = line.IndexOf("counter packets ", StringComparison.Ordinal);
            if (chain is null || at < 0 || result.ContainsKey(chain))
            {
                continue;
            }
            var parts = line[(at + "counter packets ".Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 3 && parts[1] == "bytes"
                && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long packets)
                && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out long bytes))
            {
                result[chain] = (packets, bytes);
            }
        }
        return result;
    }

    /// <summary>The values of the ruleset's counter chains (0 for a chain the listing lacks).</summary>
    public static IReadOnlyList<PolicyCounterValue> Read(PolicyRuleset ruleset, string listing)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        var values = ParseListing(listing);
        return ruleset.Counters.Select(c => values.TryGetValue(c.Chain, out var v)
            ? new PolicyCounterValue(c, v.Packets, v.Bytes)
            : new PolicyCounterValue(c, 0, 0)).ToList();
    }
}
