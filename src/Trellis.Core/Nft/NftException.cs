namespace Trellis.Core.Nft;

/// <summary>What kind of failure an <see cref="NftApplyException"/> reports, in the kernel's terms.</summary>
public enum NftErrorKind
{
    /// <summary>ENOENT: the table, chain, set, element or rule does not exist.</summary>
    NotFound,

    /// <summary>EEXIST: <c>create</c> of an existing object, or a definition that differs from the existing one.</summary>
    Exists,

    /// <summary>EBUSY: the object is still referenced (a chain jumped to, a set looked up).</summary>
    Busy,

    /// <summary>EOPNOTSUPP/EINVAL/ELOOP: the kernel would refuse the object (wrong hook, bad element, chain loop).</summary>
    Invalid,
}

/// <summary>A transaction statement that cannot be applied; <see cref="Line"/> is 1-based in the transaction text.</summary>
public abstract class NftException : Exception
{
    private protected NftException(int line, string statement, string reason)
        : base($"line {line}: {reason}: {statement}")
    {
        Line = line;
        Statement = statement;
        Reason = reason;
    }

    public int Line { get; }

    public string Statement { get; }

    public string Reason { get; }
}

/// <summary>Syntax outside the supported nft subset (see src/Trellis.Core/Proxy/README.md) or malformed text.</summary>
public sealed class NftParseException : NftException
{
    public NftParseException(int line, string statement, string reason)
        : base(line, statement, reason)
    {
    }
}

/// <summary>Well-formed text the kernel would refuse (missing object, object in use, …); the whole transaction is discarded.</summary>
public sealed class NftApplyException : NftException
{
    public NftApplyException(NftErrorKind kind, int line, string statement, string reason)
        : base(line, statement, reason)
    {
        Kind = kind;
    }

    public NftErrorKind Kind { get; }

    public bool IsNotFound => Kind == NftErrorKind.NotFound;

    public bool IsExists => Kind == NftErrorKind.Exists;
}
