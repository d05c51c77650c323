using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace Trellis.Store;

/// <summary>
/// The embedded cluster store: one SQLite file (WAL mode) that several processes on one machine
/// may open, write and watch at once — the approach of k3s's kine. See <see cref="SqliteSchema"/>
/// for the storage format and <see cref="SqliteWriteTransaction"/> for how writes stay atomic.
/// </summary>
/// <remarks>
/// <para>Watch: each open store runs one poller that notices other processes' commits through
/// <c>PRAGMA data_version</c> (a counter SQLite bumps when another connection commits; reading it
/// touches no table) and wakes this process's watchers, which then read the log after their last
/// revision. Local writes wake them at once. Nothing polls while nobody watches.</para>
/// <para>Leases expire by the injected clock. Every open store sweeps expired leases about once
/// a second, every write sweeps first and every read checks first, so expiry needs no leader and
/// survives the crash of whichever process granted the lease.</para>
/// <para>Microsoft.Data.Sqlite's async methods are synchronous underneath, so this class does its
/// (short, local) I/O synchronously and only awaits the write lock; it never blocks a thread
/// waiting for another thread of this process.</para>
/// </remarks>
public sealed class SqliteClusterStore : IClusterStore
{
    /// <summary>Revisions compacted per write transaction, so compaction never holds the write lock for long.</summary>
    private const long CompactBatch = 2_000;

    /// <summary>How long an idle watcher trusts the poller before reading the log itself (see <see cref="WatchStream"/>).</summary>
    private static readonly TimeSpan s_idleRecheck = TimeSpan.FromSeconds(1);

    private readonly SqliteSessionPool _readers;
    private readonly SqliteSession _writer;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly RevisionSignal _signal = new();
    private readonly TimeProvider _time;
    private readonly TimeSpan _pollInterval;
    private readonly CompactionPolicy _compaction;
    private readonly CancellationTokenSource _disposing = new();
    private readonly Task[] _loops;
    private int _activeWatchers;
    private int _disposed;

    /// <summary>Opens (creating if needed) the store at <paramref name="path"/>, an absolute file path.</summary>
    /// <exception cref="ArgumentException">The path is empty or relative.</exception>
    /// <exception cref="StoreUnavailableException">The file cannot be opened as a Trellis store.</exception>
    public SqliteClusterStore(string path, ClusterStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!Path.IsPathFullyQualified(path) || path.EndsWith('/'))
        {
            throw new ArgumentException($"sqlite store path '{path}' must be an absolute file path, e.g. /var/lib/trellis/store.db", nameof(path));
        }
        options = (options ?? new ClusterStoreOptions()).Validated();
        FilePath = path;
        _time = options.TimeProvider;
        _pollInterval = options.WatchPollInterval;
        _compaction = new CompactionPolicy(options.CompactionMinRetainedRevisions, options.CompactionMinRetainedAge);

        string connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            // Sessions are pooled here, with their prepared commands; the provider's pool would
            // also keep the file open after DisposeAsync.
            Pooling = false,
            // Seconds Microsoft.Data.Sqlite keeps retrying a BUSY statement (on top of busy_timeout).
            DefaultTimeout = 10,
        }.ToString();
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            _writer = SqliteSession.Open(connectionString);
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new StoreUnavailableException("open", null, $"cannot open sqlite store {path}: {ex.Message}", ex);
        }
        try
        {
            Initialize(_writer, path);
        }
        catch
        {
            _writer.Dispose();
            throw;
        }
        _readers = new SqliteSessionPool(connectionString);

        // Started directly rather than through Task.Run: each loop registers its first timer
        // before the constructor returns (see PeriodicLoop).
        var stop = _disposing.Token;
        _loops =
        [
            PeriodicLoop.RunAsync(options.LeaseSweepInterval, _time, ct => SweepIfExpiredAsync("lease-sweep", null, ct), stop),
            PeriodicLoop.RunAsync(options.CompactionInterval, _time, CompactByPolicyAsync, stop),
            PollAsync(stop),
        ];
    }

    /// <summary>The database file.</summary>
    public string FilePath { get; }

    public async Task<StoreItem?> GetAsync(string key, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        await SweepIfExpiredAsync("get", key, ct).ConfigureAwait(false);
        return Read("get", key, session =>
        {
            var command = session.Command(SqliteSchema.Latest, tx: null);
            command.Parameters.AddWithValue("@name", key);
            var rows = SqliteSession.ReadRows(command);
            return rows is [{ Deleted: false } row] ? row.ToItem() : null;
        }, ct);
    }

    public async Task<StoreList> ListAsync(string prefix, CancellationToken ct = default)
    {
        KeyRules.ValidatePrefix(prefix);
        string end = KeyRules.PrefixEnd(prefix);
        await SweepIfExpiredAsync("list", prefix, ct).ConfigureAwait(false);
        return Read("list", prefix, session =>
        {
            // One read transaction: the revision and the rows come from the same snapshot.
            using var tx = session.Connection.BeginTransaction(deferred: true);
            long revision = session.ScalarLong(SqliteSchema.CurrentRevision, tx);
            var command = session.Command(SqliteSchema.List, tx);
            command.Parameters.AddWithValue("@lo", prefix);
            command.Parameters.AddWithValue("@hi", end);
            var items = SqliteSession.ReadRows(command).ConvertAll(r => r.ToItem());
            tx.Commit();
            return new StoreList(items, revision);
        }, ct);
    }

    public Task<long> CreateAsync(string key, ReadOnlyMemory<byte> value, long leaseId = 0, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        KeyRules.ValidateValue(value);
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: true);
        return WriteAsync("create", key, tx =>
        {
            var latest = tx.Latest(key);
            if (latest is { Deleted: false })
            {
                throw new StoreConflictException("create", latest.ToItem(), $"key already exists (mod revision {latest.Id})");
            }
            tx.RequireLease("create", key, leaseId);
            // A re-create after a delete supersedes the tombstone, keeping (name, prev_revision) unique.
            return tx.Append(key, created: true, deleted: false, createRevision: 0, prevRevision: latest?.Id ?? 0, leaseId, value.ToArray(), oldValue: null);
        }, ct);
    }

    public Task<long> UpdateAsync(string key, ReadOnlyMemory<byte> value, long expectedModRevision, long leaseId = 0, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        KeyRules.ValidateValue(value);
        KeyRules.ValidateExpectedRevision(expectedModRevision, zeroMeansAny: false);
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: true);
        return WriteAsync("update", key, tx =>
        {
            var current = tx.Expect("update", key, expectedModRevision);
            tx.RequireLease("update", key, leaseId);
            return tx.Append(key, created: false, deleted: false, current.CreateRevision, prevRevision: current.Id, leaseId, value.ToArray(), oldValue: current.Value);
        }, ct);
    }

    public Task<long> DeleteAsync(string key, long expectedModRevision = 0, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        KeyRules.ValidateExpectedRevision(expectedModRevision, zeroMeansAny: true);
        return WriteAsync("delete", key, tx => tx.AppendTombstone(tx.Expect("delete", key, expectedModRevision)), ct);
    }

    public IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken ct = default)
    {
        KeyRules.ValidatePrefix(prefix);
        KeyRules.ValidateFromRevision(fromRevision);
        ThrowIfDisposed();
        return WatchCoreAsync(prefix, KeyRules.PrefixEnd(prefix), fromRevision, ct);
    }

    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken ct = default)
    {
        KeyRules.ValidateTtl(ttl);
        long ttlMs = (long)Math.Ceiling(ttl.TotalMilliseconds);
        return WriteAsync("lease-grant", null, tx => tx.GrantLease(ttlMs), ct);
    }

    public Task KeepAliveAsync(long leaseId, CancellationToken ct = default)
    {
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: false);
        // The write swept expired leases first, so an expired lease is simply not found here.
        return WriteAsync("lease-keepalive", null, tx => tx.KeepAlive(leaseId) ? true : throw LeaseNotFound("lease-keepalive", leaseId), ct);
    }

    public Task RevokeLeaseAsync(long leaseId, CancellationToken ct = default)
    {
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: false);
        return WriteAsync("lease-revoke", null, tx =>
        {
            if (!tx.LeaseExists(leaseId))
            {
                throw LeaseNotFound("lease-revoke", leaseId);
            }
            tx.EndLease(leaseId);
            return true;
        }, ct);
    }

    public Task<long> CurrentRevisionAsync(CancellationToken ct = default)
    {
        try
        {
            return Task.FromResult(Read("revision", null, session => session.ScalarLong(SqliteSchema.CurrentRevision, tx: null), ct));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return Task.FromCanceled<long>(ct);
        }
        catch (Exception ex) when (ex is StoreException or ObjectDisposedException)
        {
            // Fault the task, as an async method would, rather than throw from the call itself.
            return Task.FromException<long>(ex);
        }
    }

    /// <summary>
    /// Removes history up to and including <paramref name="revision"/>: superseded rows and
    /// tombstones go, each key's state at that revision stays. Watching from an earlier revision
    /// then fails with <see cref="StoreCompactedException"/>. Already-compacted revisions are a no-op.
    /// The background compactor calls this with the revision its retention policy allows.
    /// </summary>
    public async Task CompactAsync(long revision, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(revision);
        long current = await CurrentRevisionAsync(ct).ConfigureAwait(false);
        if (revision > current)
        {
            throw new ArgumentOutOfRangeException(nameof(revision), revision, $"cannot compact to a future revision (current is {current})");
        }
        bool more = true;
        while (more)
        {
            more = await WriteAsync("compact", null, tx =>
            {
                long from = tx.CompactRevision();
                if (from >= revision)
                {
                    return false;
                }
                long to = Math.Min(revision, from + CompactBatch);
                tx.Compact(from, to);
                return to < revision;
            }, ct).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _disposing.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).ConfigureAwait(false);
        // Let an in-flight write finish before its connection closes; later ones see _disposed.
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _writer.Dispose();
            _readers.Dispose();
        }
        finally
        {
            // Released, not disposed: writers queued on it must wake, see _disposed and fail cleanly.
            _writeLock.Release();
        }
        _disposing.Dispose();
    }

    private static void Initialize(SqliteSession session, string path)
    {
        try
        {
            // WAL: readers (watchers) never block the writer nor it them, across processes. The
            // mode is stored in the file, so this is a no-op for every opener after the first.
            using (var wal = session.Connection.CreateCommand())
            {
                wal.CommandText = "PRAGMA journal_mode = WAL";
                string? mode = wal.ExecuteScalar() as string;
                if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
                {
                    throw new StoreUnavailableException("open", null, $"sqlite store {path}: WAL journal mode unavailable (got '{mode}'); is it on a network filesystem?");
                }
            }
            using var tx = session.Connection.BeginTransaction(deferred: false);
            long version = session.ScalarLong(SqliteSchema.UserVersion, tx);
            if (version > SqliteSchema.Version)
            {
                throw new StoreUnavailableException("open", null, $"sqlite store {path} has schema version {version}; this Trellis understands up to {SqliteSchema.Version}");
            }
            if (version == 0)
            {
                // Only an empty database becomes a store: never adopt someone else's file.
                long objects = session.ScalarLong("SELECT COUNT(*) FROM sqlite_master", tx);
                if (objects != 0)
                {
                    throw new StoreUnavailableException("open", null, $"{path} is a SQLite database but not a Trellis store (it has other tables)");
                }
                using var create = session.Connection.CreateCommand();
                create.Transaction = tx;
                create.CommandText = SqliteSchema.Create;
                create.ExecuteNonQuery();
            }
            tx.Commit();
        }
        catch (SqliteException ex)
        {
            // e.g. SQLITE_NOTADB "file is not a database", SQLITE_CANTOPEN, SQLITE_READONLY.
            throw new StoreUnavailableException("open", null, $"cannot open sqlite store {path}: {ex.Message}", ex);
        }
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private static StoreNotFoundException LeaseNotFound(string operation, long leaseId) =>
        new(operation, key: null, $"lease {leaseId} not found (expired, revoked or never granted)", leaseId);

    private static StoreUnavailableException Unavailable(string operation, string? key, SqliteException ex) =>
        new(operation, key, $"sqlite error {ex.SqliteErrorCode.ToString(CultureInfo.InvariantCulture)}: {ex.Message}", ex);

    /// <summary>Runs a read on a pooled reader session; SQLite errors become <see cref="StoreUnavailableException"/>.</summary>
    private T Read<T>(string operation, string? key, Func<SqliteSession, T> body, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        ThrowIfDisposed();
        SqliteSession session;
        try
        {
            session = _readers.Rent();
        }
        catch (SqliteException ex)
        {
            throw Unavailable(operation, key, ex);
        }
        bool broken = false;
        try
        {
            return body(session);
        }
        catch (SqliteException ex)
        {
            broken = true;
            throw Unavailable(operation, key, ex);
        }
        finally
        {
            _readers.Return(session, broken);
        }
    }

    /// <summary>
    /// Runs one write transaction under this process's write lock (SQLite's lock then orders it
    /// against other processes). Expired leases are swept first, inside the same transaction.
    /// </summary>
    private async Task<T> WriteAsync<T>(string operation, string? key, Func<SqliteWriteTransaction, T> body, CancellationToken ct)
    {
        ThrowIfDisposed();
        await _writeLock.WaitAsync(ct).ConfigureAwait(false);
        T result;
        long revision;
        try
        {
            ThrowIfDisposed();
            using var tx = new SqliteWriteTransaction(_writer, NowMs());
            tx.SweepExpiredLeases();
            try
            {
                result = body(tx);
            }
            catch (StoreException) when (tx.Changed)
            {
                // The body refused (conflict, not found) before appending anything: keep the sweep's deletes.
                tx.Commit();
                _signal.Publish(tx.Revision);
                throw;
            }
            tx.Commit();
            revision = tx.Revision;
        }
        catch (SqliteException ex)
        {
            throw Unavailable(operation, key, ex);
        }
        finally
        {
            _writeLock.Release();
        }
        _signal.Publish(revision);
        return result;
    }

    /// <summary>
    /// The "check on read": a cheap indexed probe for an expired lease, and only if there is one,
    /// a write that sweeps it. Reads therefore never return a key whose lease has expired.
    /// </summary>
    private async Task SweepIfExpiredAsync(string operation, string? key, CancellationToken ct)
    {
        long now = NowMs();
        bool expired = Read(operation, key, session =>
        {
            var command = session.Command(SqliteSchema.AnyLeaseExpired, tx: null);
            command.Parameters.AddWithValue("@now", now);
            return SqliteSession.ScalarLong(command) != 0;
        }, ct);
        if (expired)
        {
            await WriteAsync(operation, key, _ => true, ct).ConfigureAwait(false);
        }
    }

    private async Task CompactByPolicyAsync(CancellationToken ct)
    {
        long current = Read("compact", null, session => session.ScalarLong(SqliteSchema.CurrentRevision, tx: null), ct);
        long target = _compaction.Next(_time.GetUtcNow(), current);
        if (target > 0)
        {
            await CompactAsync(target, ct).ConfigureAwait(false);
        }
    }

    private async IAsyncEnumerable<WatchEvent> WatchCoreAsync(string prefix, string end, long fromRevision, [EnumeratorCancellation] CancellationToken ct)
    {
        Interlocked.Increment(ref _activeWatchers);
        try
        {
            var events = WatchStream.RunAsync(after => ReadEventsAfter(prefix, end, after), _signal, s_idleRecheck, fromRevision, this, _disposing.Token, ct);
            await foreach (var e in events.ConfigureAwait(false))
            {
                yield return e;
            }
        }
        finally
        {
            Interlocked.Decrement(ref _activeWatchers);
        }
    }

    private WatchBatch ReadEventsAfter(string prefix, string end, long after)
    {
        var batch = Read("watch", prefix, session =>
        {
            // One snapshot: compaction mark, revision and rows agree with each other.
            using var tx = session.Connection.BeginTransaction(deferred: true);
            long compacted = session.ScalarLong(SqliteSchema.CompactRevision, tx);
            if (after < compacted)
            {
                throw new StoreCompactedException(prefix, after, compacted);
            }
            long current = session.ScalarLong(SqliteSchema.CurrentRevision, tx);
            var command = session.Command(SqliteSchema.WatchRows, tx);
            command.Parameters.AddWithValue("@after", after);
            command.Parameters.AddWithValue("@lo", prefix);
            command.Parameters.AddWithValue("@hi", end);
            command.Parameters.AddWithValue("@limit", WatchStream.BatchSize + 1);
            var rows = SqliteSession.ReadRows(command);
            tx.Commit();
            bool truncated = rows.Count > WatchStream.BatchSize;
            if (truncated)
            {
                rows.RemoveAt(rows.Count - 1);
            }
            return new WatchBatch(rows.ConvertAll(r => r.ToEvent()), current, truncated);
        }, CancellationToken.None);
        _signal.Publish(batch.ScannedThrough);
        return batch;
    }

    /// <summary>
    /// Notices commits by other processes and wakes this process's watchers. It polls only while
    /// someone watches, and reads the revision only when data_version says the file changed.
    /// </summary>
    private async Task PollAsync(CancellationToken ct)
    {
        SqliteSession? session = null;
        long lastVersion = -1;
        try
        {
            while (true)
            {
                // Real time on purpose: this paces I/O; a fake clock in tests must not stall watches.
                await Task.Delay(_pollInterval, TimeProvider.System, ct).ConfigureAwait(false);
                if (Volatile.Read(ref _activeWatchers) == 0)
                {
                    continue;
                }
                try
                {
                    session ??= SqliteSession.Open(_readers.ConnectionString);
                    long version = session.ScalarLong("PRAGMA data_version", tx: null);
                    if (version != lastVersion)
                    {
                        lastVersion = version;
                        _signal.Publish(session.ScalarLong(SqliteSchema.CurrentRevision, tx: null));
                    }
                }
                catch (SqliteException)
                {
                    // Reopen on the next tick. Watchers do not depend on this alone: they re-read
                    // the log themselves every s_idleRecheck, and that read reports the error.
                    session?.Dispose();
                    session = null;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            session?.Dispose();
        }
    }
}
