using Trellis.Core.Proxy;
using Trellis.Nftables;

namespace Trellis.Agent.Proxy;

/// <summary>What one <see cref="ProxyReconciler.Sync"/> sent to nft.</summary>
/// <param name="Kind">"full", "partial" or "none".</param>
public sealed record ProxySyncResult(string Kind, int TransactionBytes, TimeSpan Elapsed);

/// <summary>
/// Keeps <c>ip trellis-proxy</c> equal to the compiled ruleset, as kube-proxy's nftables proxier does: the
/// first sync after a start (and every periodic full resync, and any sync after a failure) is a full one —
/// every desired chain and map flushed and refilled in one atomic transaction, and chains the kernel has that
/// are no longer desired deleted — and every other sync is partial, writing only the chains and elements that
/// differ from what this reconciler last applied. Never deletes or flushes the table: a restarted agent's
/// first transaction replaces the contents atomically, so packets meet either the old rules or the new ones
/// and established flows keep their conntrack NAT state. Not thread-safe: one loop drives it.
/// </summary>
public sealed class ProxyReconciler(INftClient nft)
{
    private ProxyRuleset? _applied;

    private bool _incrementalApplied;

    /// <summary>Forget what was applied: the next sync is a full one.</summary>
    public void RequestFullSync()
    {
        _applied = null;
        _incrementalApplied = false;
    }

    /// <summary>
    /// A sync from an <see cref="IncrementalProxyCompiler"/>: <paramref name="update"/>'s transaction when the table
    /// holds what the compiler compiled before (the per-change path, independent of the number of Services), a
    /// full sync of <see cref="IncrementalProxyCompiler.Ruleset"/> otherwise.
    /// </summary>
    /// <exception cref="NftException">nft refused the transaction; nothing changed and the next sync is full.</exception>
    public ProxySyncResult Sync(IncrementalProxyCompiler compiler, ProxyUpdate update)
    {
        ArgumentNullException.ThrowIfNull(compiler);
        ArgumentNullException.ThrowIfNull(update);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        string text;
        string kind;
        if (!_incrementalApplied)
        {
            string? listing = nft.ListTable(ProxyNames.Family, ProxyNames.Table, stateless: true);
            var existing = listing is null ? null : ProxyTransaction.ParseListing(listing);
            text = ProxyTransaction.Full(compiler.Ruleset, existing);
            kind = "full";
        }
        else
        {
            text = update.Transaction;
            kind = text.Length == 0 ? "none" : "partial";
        }
        if (text.Length > 0)
        {
            _incrementalApplied = false;
            nft.Apply(text);
        }
        _incrementalApplied = true;
        return new ProxySyncResult(kind, text.Length, System.Diagnostics.Stopwatch.GetElapsedTime(started));
    }

    /// <exception cref="NftException">nft refused the transaction; nothing changed and the next sync is full.</exception>
    public ProxySyncResult Sync(ProxyRuleset desired)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        string text;
        string kind;
        if (_applied is null)
        {
            string? listing = nft.ListTable(ProxyNames.Family, ProxyNames.Table, stateless: true);
            var existing = listing is null ? null : ProxyTransaction.ParseListing(listing);
            text = ProxyTransaction.Full(desired, existing);
            kind = "full";
        }
        else
        {
            text = ProxyTransaction.Partial(_applied, desired);
            kind = text.Length == 0 ? "none" : "partial";
        }
        if (text.Length > 0)
        {
            _applied = null; // if the apply throws, the next sync starts from the kernel again
            nft.Apply(text);
        }
        _applied = desired;
        return new ProxySyncResult(kind, text.Length, System.Diagnostics.Stopwatch.GetElapsedTime(started));
    }
}
