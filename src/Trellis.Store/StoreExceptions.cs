namespace Trellis.Store;

/// <summary>
/// Base of the store's few typed errors. Every one names the operation (<c>create</c>,
/// <c>update</c>, <c>watch</c>, …) and, where there is one, the key or prefix at fault, so a log
/// line or CLI error is actionable without a stack trace.
/// </summary>
public class StoreException : Exception
{
    public StoreException()
        : this("store operation failed")
    {
    }

    public StoreException(string message)
        : this(message, innerException: null)
    {
    }

    public StoreException(string message, Exception? innerException)
        : base(message, innerException)
    {
        Operation = "";
    }

    public StoreException(string operation, string? key, string detail, Exception? innerException = null)
        : base(Describe(operation, key, detail), innerException)
    {
        Operation = operation;
        Key = key;
    }

    /// <summary>The operation that failed: <c>get</c>, <c>list</c>, <c>create</c>, <c>update</c>, <c>delete</c>, <c>watch</c>, <c>lease-grant</c>, …</summary>
    public string Operation { get; }

    /// <summary>The key (or, for list and watch, the prefix) involved; null for store-wide operations.</summary>
    public string? Key { get; }

    private static string Describe(string operation, string? key, string detail) =>
        key is null ? $"{operation}: {detail}" : $"{operation} {key}: {detail}";
}

/// <summary>
/// A compare-and-swap lost: the key exists (create) or its ModRevision moved on (update, delete).
/// <see cref="Current"/> is the state that won, so the caller can merge and retry without another read.
/// </summary>
public sealed class StoreConflictException : StoreException
{
    public StoreConflictException()
    {
    }

    public StoreConflictException(string message)
        : base(message)
    {
    }

    public StoreConflictException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public StoreConflictException(string operation, StoreItem current, string detail)
        : base(operation, (current ?? throw new ArgumentNullException(nameof(current))).Key, detail)
    {
        Current = current;
    }

    /// <summary>The key's current item (never null when thrown by a store).</summary>
    public StoreItem? Current { get; }
}

/// <summary>The key (or lease) does not exist: never created, deleted, expired or revoked.</summary>
public sealed class StoreNotFoundException : StoreException
{
    public StoreNotFoundException()
    {
    }

    public StoreNotFoundException(string message)
        : base(message)
    {
    }

    public StoreNotFoundException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public StoreNotFoundException(string operation, string? key, string detail, long leaseId = 0)
        : base(operation, key, detail)
    {
        LeaseId = leaseId;
    }

    /// <summary>The lease that was not found, or 0 when it was the key.</summary>
    public long LeaseId { get; }
}

/// <summary>
/// A watch asked for history older than the store keeps. The caller re-lists (which returns a
/// revision to watch from), as a Kubernetes reflector does on "410 Gone".
/// </summary>
public sealed class StoreCompactedException : StoreException
{
    public StoreCompactedException()
    {
    }

    public StoreCompactedException(string message)
        : base(message)
    {
    }

    public StoreCompactedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public StoreCompactedException(string prefix, long requestedRevision, long compactRevision)
        : base("watch", prefix, $"revision {requestedRevision} has been compacted (history is kept after revision {compactRevision}); list again and watch from the list's revision")
    {
        RequestedRevision = requestedRevision;
        CompactRevision = compactRevision;
    }

    /// <summary>The revision the watcher asked to continue after.</summary>
    public long RequestedRevision { get; }

    /// <summary>The oldest revision a watch may start after.</summary>
    public long CompactRevision { get; }
}

/// <summary>
/// The store cannot serve the request: the database is locked past the timeout, unreadable, not
/// a Trellis store, or the disk failed. The inner exception holds the backend's own error.
/// </summary>
public sealed class StoreUnavailableException : StoreException
{
    public StoreUnavailableException()
    {
    }

    public StoreUnavailableException(string message)
        : base(message)
    {
    }

    public StoreUnavailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    public StoreUnavailableException(string operation, string? key, string detail, Exception? innerException = null)
        : base(operation, key, detail, innerException)
    {
    }
}
