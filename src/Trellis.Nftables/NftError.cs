namespace Trellis.Nftables;

/// <summary>
/// One error nft reported: <c>/dev/stdin:4:45-51: Error: No such file or directory</c> → line 4, columns 45–51,
/// the message, and the text of that transaction line.
/// </summary>
/// <param name="Line">1-based line of the transaction; null when nft gave no location (e.g. a <c>list</c> command).</param>
/// <param name="LineText">The transaction line at fault (from the text we sent; nft's own echo when we have none).</param>
public sealed record NftError(int? Line, int? FirstColumn, int? LastColumn, string Message, string? LineText)
{
    /// <summary>ENOENT: the table, chain, set or element named does not exist (knftables' IsNotFound).</summary>
    public bool IsNotFound => Message.Contains("No such file or directory", StringComparison.Ordinal);

    /// <summary>EEXIST: <c>create</c> of an existing object, or <c>add</c> of one whose definition differs (knftables' IsAlreadyExists).</summary>
    public bool IsAlreadyExists => Message.Contains("File exists", StringComparison.Ordinal);

    /// <summary>
    /// EOPNOTSUPP: among others, what the kernel answers to <c>add chain</c> of an existing base chain with another
    /// hook or priority, or to turning a regular chain into a base chain (nf_tables_updchain).
    /// </summary>
    public bool IsNotSupported => Message.Contains("Operation not supported", StringComparison.Ordinal);

    public override string ToString() =>
        Line is int line
            ? $"line {line}: {Message}{(LineText is null ? "" : ": " + LineText.Trim())}"
            : Message;
}
