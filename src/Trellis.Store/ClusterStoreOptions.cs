namespace Trellis.Store;

/// <summary>Tuning shared by every backend. The defaults suit a lab or a small cluster.</summary>
public sealed class ClusterStoreOptions
{
    /// <summary>
    /// The clock for lease expiry, the lease sweep and compaction. Tests inject a fake one and
    /// advance it instead of sleeping. Watch polling paces real I/O and always uses real time.
    /// </summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>How often each open store deletes the keys of expired leases (reads and writes also check).</summary>
    public TimeSpan LeaseSweepInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How often each open store considers compacting history.</summary>
    public TimeSpan CompactionInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Compaction always keeps at least this many of the newest revisions watchable (≥ 1).</summary>
    public long CompactionMinRetainedRevisions { get; init; } = 10_000;

    /// <summary>
    /// ... and every revision younger than this, so a watcher that was away (restart, network
    /// blip) for less than this can resume instead of re-listing.
    /// </summary>
    public TimeSpan CompactionMinRetainedAge { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>SQLite: how often a store with active watchers checks the file for other processes' writes.</summary>
    public TimeSpan WatchPollInterval { get; init; } = TimeSpan.FromMilliseconds(25);

    internal ClusterStoreOptions Validated()
    {
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
        RequirePositive(LeaseSweepInterval, nameof(LeaseSweepInterval));
        RequirePositive(CompactionInterval, nameof(CompactionInterval));
        RequirePositive(WatchPollInterval, nameof(WatchPollInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(CompactionMinRetainedRevisions, 1, nameof(CompactionMinRetainedRevisions));
        ArgumentOutOfRangeException.ThrowIfLessThan(CompactionMinRetainedAge, TimeSpan.Zero, nameof(CompactionMinRetainedAge));
        return this;
    }

    private static void RequirePositive(TimeSpan value, string name) =>
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero, name);
}
