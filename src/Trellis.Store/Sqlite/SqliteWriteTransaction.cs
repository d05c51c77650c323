using Microsoft.Data.Sqlite;

namespace Trellis.Store;

/// <summary>
/// One write: a <c>BEGIN IMMEDIATE</c> transaction on the writer session. IMMEDIATE takes the
/// database's write lock up front (waiting, via busy_timeout, for other processes), so the reads
/// a write makes — the key's current row, the lease, the current revision — and the row it
/// appends happen under one lock: compare-and-swap is a check, not a race. (A deferred
/// transaction that reads first and upgrades later fails with SQLITE_BUSY_SNAPSHOT under
/// concurrency, which no busy handler can wait out.)
/// </summary>
internal sealed class SqliteWriteTransaction : IDisposable
{
    private readonly SqliteSession _session;
    private readonly SqliteTransaction _tx;

    public SqliteWriteTransaction(SqliteSession session, long nowMs)
    {
        _session = session;
        NowMs = nowMs;
        _tx = session.Connection.BeginTransaction(deferred: false);
        Revision = session.ScalarLong(SqliteSchema.CurrentRevision, _tx);
    }

    /// <summary>The injected clock's "now" for this write, in Unix milliseconds.</summary>
    public long NowMs { get; }

    /// <summary>The store revision: as read at the start, plus one per appended row.</summary>
    public long Revision { get; private set; }

    /// <summary>Whether the transaction changed anything (an append, a lease or compaction change).</summary>
    public bool Changed { get; private set; }

    public LogRow? Latest(string key)
    {
        var command = _session.Command(SqliteSchema.Latest, _tx);
        command.Parameters.AddWithValue("@name", key);
        var rows = SqliteSession.ReadRows(command);
        return rows.Count == 0 ? null : rows[0];
    }

    /// <summary>The key's live row, checked against the caller's expected ModRevision (0 = any).</summary>
    public LogRow Expect(string operation, string key, long expectedModRevision)
    {
        var current = Latest(key);
        if (current is null || current.Deleted)
        {
            throw new StoreNotFoundException(operation, key, "key not found");
        }
        if (expectedModRevision != 0 && current.Id != expectedModRevision)
        {
            throw new StoreConflictException(operation, current.ToItem(), $"expected mod revision {expectedModRevision}, but the key is at {current.Id}");
        }
        return current;
    }

    public void RequireLease(string operation, string key, long leaseId)
    {
        if (leaseId != 0 && !LeaseExists(leaseId))
        {
            throw new StoreNotFoundException(operation, key, $"lease {leaseId} not found (expired, revoked or never granted)", leaseId);
        }
    }

    /// <summary>Appends a row at the next revision and returns it.</summary>
    /// <param name="createRevision">The key's create revision; 0 for a create, which is its own.</param>
    public long Append(string key, bool created, bool deleted, long createRevision, long prevRevision, long lease, byte[] value, byte[]? oldValue)
    {
        long revision = Revision + 1;
        var command = _session.Command(SqliteSchema.Append, _tx);
        var p = command.Parameters;
        p.AddWithValue("@id", revision);
        p.AddWithValue("@name", key);
        p.AddWithValue("@created", created ? 1 : 0);
        p.AddWithValue("@deleted", deleted ? 1 : 0);
        p.AddWithValue("@create_revision", createRevision == 0 ? revision : createRevision);
        p.AddWithValue("@prev_revision", prevRevision);
        p.AddWithValue("@lease", lease);
        p.AddWithValue("@value", value);
        // Microsoft.Data.Sqlite refuses a null parameter value; SQL NULL is DBNull.
        p.AddWithValue("@old_value", (object?)oldValue ?? DBNull.Value);
        command.ExecuteNonQuery();
        Revision = revision;
        Changed = true;
        return revision;
    }

    public bool LeaseExists(long leaseId)
    {
        var command = _session.Command(SqliteSchema.LeaseExists, _tx);
        command.Parameters.AddWithValue("@id", leaseId);
        return SqliteSession.ScalarLong(command) != 0;
    }

    public long GrantLease(long ttlMs)
    {
        var command = _session.Command(SqliteSchema.GrantLease, _tx);
        command.Parameters.AddWithValue("@ttl_ms", ttlMs);
        command.Parameters.AddWithValue("@expires_at", NowMs + ttlMs);
        Changed = true;
        return SqliteSession.ScalarLong(command);
    }

    /// <summary>Restarts a live lease's TTL; false when there is no such (live) lease.</summary>
    public bool KeepAlive(long leaseId)
    {
        var command = _session.Command(SqliteSchema.KeepAlive, _tx);
        command.Parameters.AddWithValue("@now", NowMs);
        command.Parameters.AddWithValue("@id", leaseId);
        bool found = command.ExecuteNonQuery() == 1;
        Changed |= found;
        return found;
    }

    /// <summary>
    /// Ends every lease whose expiry has passed, deleting its keys as ordinary Delete events. Every
    /// write runs this first, so no write ever sees a key of an expired lease (a create of such a
    /// key succeeds, as it would once the sweep had run).
    /// </summary>
    public void SweepExpiredLeases()
    {
        var command = _session.Command(SqliteSchema.ExpiredLeases, _tx);
        command.Parameters.AddWithValue("@now", NowMs);
        var expired = new List<long>();
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                expired.Add(reader.GetInt64(0));
            }
        }
        foreach (long leaseId in expired)
        {
            EndLease(leaseId);
        }
    }

    /// <summary>Deletes the lease's keys (in key order, one revision each) and the lease.</summary>
    public void EndLease(long leaseId)
    {
        var keys = _session.Command(SqliteSchema.LeaseKeys, _tx);
        keys.Parameters.AddWithValue("@lease", leaseId);
        // Materialised before appending: the appends change the rows the query walks.
        foreach (var row in SqliteSession.ReadRows(keys))
        {
            AppendTombstone(row);
        }
        var delete = _session.Command(SqliteSchema.DeleteLease, _tx);
        delete.Parameters.AddWithValue("@id", leaseId);
        delete.ExecuteNonQuery();
        Changed = true;
    }

    public long AppendTombstone(LogRow current) =>
        Append(current.Name, created: false, deleted: true, current.CreateRevision, prevRevision: current.Id, current.Lease, current.Value, oldValue: null);

    public long CompactRevision() => _session.ScalarLong(SqliteSchema.CompactRevision, _tx);

    /// <summary>Compacts history in (compact revision, <paramref name="to"/>]; see <see cref="SqliteSchema.CompactSuperseded"/>.</summary>
    public void Compact(long from, long to)
    {
        var superseded = _session.Command(SqliteSchema.CompactSuperseded, _tx);
        superseded.Parameters.AddWithValue("@from", from);
        superseded.Parameters.AddWithValue("@to", to);
        superseded.ExecuteNonQuery();
        var tombstones = _session.Command(SqliteSchema.CompactTombstones, _tx);
        tombstones.Parameters.AddWithValue("@from", from);
        tombstones.Parameters.AddWithValue("@to", to);
        tombstones.ExecuteNonQuery();
        var mark = _session.Command(SqliteSchema.SetCompactRevision, _tx);
        mark.Parameters.AddWithValue("@revision", to);
        mark.ExecuteNonQuery();
        Changed = true;
    }

    public void Commit() => _tx.Commit();

    public void Dispose() => _tx.Dispose();
}
