using Trellis.Core.NodeFirewall;
using Trellis.Nftables;

namespace Trellis.Agent.NodeFirewall;

/// <summary>What one <see cref="NodeFirewallReconciler.Sync"/> did.</summary>
public enum NodeFirewallOutcome
{
    /// <summary>The input was invalid (see <see cref="NodeFirewallSyncResult.Errors"/>); the table was left as it was.</summary>
    Rejected,

    /// <summary>The table already was what the last apply left and the input had not changed: nothing sent.</summary>
    Unchanged,

    /// <summary>The refill transaction was applied.</summary>
    Applied,

    /// <summary>A definition in the kernel's table differed ("File exists" / "Operation not supported"), so the table was re-created.</summary>
    Recreated,
}

public sealed record NodeFirewallSyncResult(NodeFirewallOutcome Outcome, string? Transaction, IReadOnlyList<string> Errors);

/// <summary>
/// Keeps the node's <c>inet trellis-node</c> table equal to <see cref="NodeFirewallCompiler"/>'s output, one atomic
/// transaction per change. The apply is skipped only when it provably changes nothing: the compiled text is the
/// one this reconciler last applied, and the kernel's stateless listing is byte-for-byte the listing read right
/// after that apply (so drift — a rule or element added or removed by hand, the table deleted — is repaired).
/// Comparing the listing with the transaction itself would need a parser of nft's output; comparing with an
/// earlier listing of the same kernel needs none. After a restart the first sync always applies, which is safe:
/// the refill is atomic. Not thread-safe: one sync loop drives it.
/// </summary>
public sealed class NodeFirewallReconciler
{
    private readonly INftClient _nft;
    private string? _lastApplied;
    private string? _listingAfterApply;

    public NodeFirewallReconciler(INftClient nft)
    {
        ArgumentNullException.ThrowIfNull(nft);
        _nft = nft;
    }

    /// <exception cref="NftException">nft refused the transaction (the table is then as before) or could not run.</exception>
    public NodeFirewallSyncResult Sync(NodeFirewallInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var errors = NodeFirewallCompiler.Validate(input);
        if (errors.Count > 0)
        {
            return new NodeFirewallSyncResult(NodeFirewallOutcome.Rejected, null, errors);
        }
        string text = NodeFirewallCompiler.Compile(input, NftApplyMode.Refill);
        if (_lastApplied == text && _listingAfterApply is not null
            && _listingAfterApply == _nft.ListTable(NodeFirewallCompiler.Family, NodeFirewallCompiler.TableName, stateless: true))
        {
            return new NodeFirewallSyncResult(NodeFirewallOutcome.Unchanged, text, []);
        }

        // Forget the old listing first: if the apply fails, the next sync must not skip.
        _lastApplied = null;
        _listingAfterApply = null;
        var outcome = NodeFirewallOutcome.Applied;
        try
        {
            _nft.Apply(text);
        }
        catch (NftException e) when (IsDefinitionConflict(e))
        {
            // "add" of an object whose definition differs from the kernel's (after an upgrade): replace the whole
            // table in one transaction instead.
            text = NodeFirewallCompiler.Compile(input, NftApplyMode.Recreate);
            _nft.Apply(text);
            outcome = NodeFirewallOutcome.Recreated;
        }
        _listingAfterApply = _nft.ListTable(NodeFirewallCompiler.Family, NodeFirewallCompiler.TableName, stateless: true);
        // Remember the refill text: it is what the next sync compiles and compares against.
        _lastApplied = NodeFirewallCompiler.Compile(input, NftApplyMode.Refill);
        return new NodeFirewallSyncResult(outcome, text, []);
    }

    /// <summary>
    /// Measured on this kernel: a set's type or flags, or a chain's type, differing gives EEXIST ("File exists");
    /// a base chain's hook or priority differing gives EOPNOTSUPP ("Operation not supported"). A policy change
    /// is applied in place. The kernel reports every failing command of a batch, so all must be of these kinds.
    /// </summary>
    private static bool IsDefinitionConflict(NftException e) =>
        e.Errors.Count > 0 && e.Errors.All(x => x.IsAlreadyExists || x.IsNotSupported);
}
