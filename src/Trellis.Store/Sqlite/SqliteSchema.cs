namespace Trellis.Store;

/// <summary>
/// The SQLite schema and every statement the store runs, in one place so the storage format can
/// be read (and reviewed) at a glance. The design is k3s's kine: an append-only log whose row id
/// is the store revision.
/// </summary>
/// <remarks>
/// <para><b>log</b>: one row per write. A key's current state is its highest-id row; a row with
/// <c>deleted = 1</c> is a tombstone. <c>prev_revision</c> is the id of the row a write
/// superseded (0 for a first create), <c>create_revision</c> the id of the row that created the
/// key's current incarnation. A tombstone keeps the deleted item's value, create revision and lease,
/// so a Delete event carries the last state. <c>old_value</c> keeps an update's previous value
/// (etcd's prevKV), for debugging and a future watch option.</para>
/// <para>Revisions are assigned explicitly inside the writer's <c>BEGIN IMMEDIATE</c>
/// transaction (the current revision + 1), so one writer at a time, across processes, appends
/// gap-free ids that commit in order: a reader can never see revision N+1 without N.
/// AUTOINCREMENT keeps <c>sqlite_sequence</c> at the highest id ever used, which is the current
/// revision even after compaction has deleted the newest tombstones.</para>
/// <para>The unique (name, prev_revision) index is the compare-and-swap backstop kine also has:
/// two writes that both superseded the same row cannot both exist, whatever a bug elsewhere does.</para>
/// <para><b>lease</b>: granted leases and when they expire (Unix milliseconds of the injected
/// clock). A key belongs to the lease named in its current row. <b>meta</b>: the compact revision.</para>
/// </remarks>
internal static class SqliteSchema
{
    /// <summary>PRAGMA user_version of the schema below; a newer file is refused, not misread.</summary>
    public const int Version = 1;

    public static readonly string Create = $"""
        CREATE TABLE IF NOT EXISTS log (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            name            TEXT    NOT NULL,
            created         INTEGER NOT NULL,
            deleted         INTEGER NOT NULL,
            create_revision INTEGER NOT NULL,
            prev_revision   INTEGER NOT NULL,
            lease           INTEGER NOT NULL,
            value           BLOB    NOT NULL,
            old_value       BLOB
        );
        CREATE INDEX IF NOT EXISTS log_name_id ON log (name, id);
        CREATE UNIQUE INDEX IF NOT EXISTS log_name_prev_revision ON log (name, prev_revision);
        CREATE INDEX IF NOT EXISTS log_lease ON log (lease) WHERE lease <> 0;
        CREATE TABLE IF NOT EXISTS lease (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            ttl_ms     INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS lease_expires_at ON lease (expires_at);
        CREATE TABLE IF NOT EXISTS meta (
            name  TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO meta (name, value) VALUES ('compact_revision', 0);
        PRAGMA user_version = {Version};
        """;

    private const string RowColumns = "id, name, created, deleted, create_revision, prev_revision, lease, value";

    public const string UserVersion = "PRAGMA user_version";

    public const string CurrentRevision = "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'log'), 0)";

    public const string CompactRevision = "SELECT value FROM meta WHERE name = 'compact_revision'";

    public const string Latest = $"SELECT {RowColumns} FROM log WHERE name = @name ORDER BY id DESC LIMIT 1";

    public const string Append = """
        INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, lease, value, old_value)
        VALUES (@id, @name, @created, @deleted, @create_revision, @prev_revision, @lease, @value, @old_value)
        """;

    /// <summary>The newest row of each key in [lo, hi), live ones only, in key order.</summary>
    public const string List = $"""
        SELECT {RowColumns} FROM log
        WHERE id IN (SELECT MAX(id) FROM log WHERE name >= @lo AND name < @hi GROUP BY name) AND deleted = 0
        ORDER BY name
        """;

    /// <summary>
    /// A watcher's next rows. The unary '+' keeps SQLite from using the name index for the range:
    /// without statistics it would rate the two-sided name range as more selective than
    /// <c>id &gt; @after</c> and scan the prefix's whole history on every poll, instead of only
    /// the new tail of the log.
    /// </summary>
    public const string WatchRows = $"""
        SELECT {RowColumns} FROM log
        WHERE id > @after AND +name >= @lo AND +name < @hi
        ORDER BY id LIMIT @limit
        """;

    public const string LeaseExists = "SELECT EXISTS (SELECT 1 FROM lease WHERE id = @id)";

    public const string AnyLeaseExpired = "SELECT EXISTS (SELECT 1 FROM lease WHERE expires_at <= @now)";

    public const string ExpiredLeases = "SELECT id FROM lease WHERE expires_at <= @now ORDER BY expires_at, id";

    /// <summary>The live keys whose current row names the lease (older rows may name it too).</summary>
    public const string LeaseKeys = $"""
        SELECT {RowColumns} FROM log AS l
        WHERE l.lease = @lease AND l.deleted = 0
          AND l.id = (SELECT MAX(m.id) FROM log AS m WHERE m.name = l.name)
        ORDER BY l.name
        """;

    public const string GrantLease = "INSERT INTO lease (ttl_ms, expires_at) VALUES (@ttl_ms, @expires_at) RETURNING id";

    public const string KeepAlive = "UPDATE lease SET expires_at = @now + ttl_ms WHERE id = @id";

    public const string DeleteLease = "DELETE FROM lease WHERE id = @id";

    public const string SetCompactRevision = "UPDATE meta SET value = @revision WHERE name = 'compact_revision' AND value < @revision";

    /// <summary>
    /// Compaction, step 1: every row superseded by a row in (from, to] goes. Each row names the one
    /// it superseded, so this touches only the compacted range, never the whole log.
    /// </summary>
    public const string CompactSuperseded = "DELETE FROM log WHERE id IN (SELECT prev_revision FROM log WHERE id > @from AND id <= @to AND prev_revision <> 0)";

    /// <summary>Step 2: tombstones in (from, to] go too; their keys are simply absent at the compact revision.</summary>
    public const string CompactTombstones = "DELETE FROM log WHERE deleted = 1 AND id > @from AND id <= @to";
}

/// <summary>One decoded log row.</summary>
internal sealed record LogRow(long Id, string Name, bool Created, bool Deleted, long CreateRevision, long PrevRevision, long Lease, byte[] Value)
{
    /// <summary>
    /// The item as callers see it: for a live row its own revision is the ModRevision; a tombstone
    /// reports the state it deleted, whose ModRevision is the row it superseded.
    /// </summary>
    public StoreItem ToItem() => new(Name, Value, CreateRevision, Deleted ? PrevRevision : Id, Lease);

    public WatchEvent ToEvent() => new(Deleted ? WatchEventType.Delete : WatchEventType.Put, ToItem(), Id);
}
