namespace Trellis.Nftables;

/// <summary>
/// The nftables seam, knftables-style: whole transactions in, ruleset text out. <see cref="NftClient"/> runs the
/// real <c>nft</c>; <see cref="FakeNftClient"/> records what it was given, for tests without root.
/// </summary>
public interface INftClient
{
    /// <summary>
    /// <c>nft -f -</c>: applies <paramref name="transaction"/> as one atomic batch — all of it or, on any error,
    /// none of it.
    /// </summary>
    /// <exception cref="NftException">nft refused the transaction (nothing was changed) or could not be run.</exception>
    void Apply(string transaction);

    /// <summary>
    /// <c>nft [-s] list table FAMILY NAME</c>: the table as nft prints it; null when there is no such table.
    /// <paramref name="stateless"/> (<c>-s</c>) leaves out counter and quota values, so two listings of an
    /// unchanged table compare equal however much traffic passed in between.
    /// </summary>
    string? ListTable(string family, string name, bool stateless = false);
}
