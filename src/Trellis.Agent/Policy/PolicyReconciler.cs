using Trellis.Core.Policies;
using Trellis.Nftables;

namespace Trellis.Agent.Policy;

/// <summary>What one <see cref="PolicyReconciler.Sync"/> sent to nft: "full", "partial" or "none".</summary>
public sealed record PolicySyncResult(string Kind, int TransactionBytes, TimeSpan Elapsed);

/// <summary>
/// Keeps <c>inet trellis-policy</c> equal to the compiled ruleset: the first sync (and any after a failure or a
/// requested resync) is full — contents replaced in one transaction, stale chains and sets deleted, existing
/// counter chains kept — and every other sync writes only what changed. Never flushes or deletes the table, so
/// enforcement does not lapse across an agent restart. Not thread-safe: one loop drives it.
/// </summary>
public sealed class PolicyReconciler(INftClient nft)
{
    private PolicyRuleset? _applied;

    public void RequestFullSync() => _applied = null;

    /// <exception cref="NftException">nft refused the transaction; nothing changed and the next sync is full.</exception>
    public PolicySyncResult Sync(PolicyRuleset desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        string text;
        string kind;
        if (_applied is null)
        {
            string? listing = nft.ListTable(PolicyNames.Family, PolicyNames.Table, stateless: true);
            text = PolicyTransaction.Full(desired, listing is null ? null : PolicyObjectNames.FromListing(listing));
            kind = "full";
        }
        else
        {
            text = PolicyTransaction.Partial(_applied, desired);
            kind = text.Length == 0 ? "none" : "partial";
        }
        if (text.Length > 0)
        {
            _applied = null; // if the apply throws, the next sync starts from the kernel again
            nft.Apply(text);
        }
        _applied = desired;
        return new PolicySyncResult(kind, text.Length, System.Diagnostics.Stopwatch.GetElapsedTime(started));
    }
}
