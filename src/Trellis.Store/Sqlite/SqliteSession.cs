using Microsoft.Data.Sqlite;

namespace Trellis.Store;

/// <summary>
/// One SQLite connection and the commands prepared on it. Microsoft.Data.Sqlite compiles a
/// command's statements on first execution and keeps them while the command and its text live,
/// so caching commands per connection makes every statement a prepare-once, bind-and-step call.
/// Not thread-safe: a session is used by one operation at a time (the writer behind the write
/// lock, readers rented from <see cref="SqliteSessionPool"/>).
/// </summary>
internal sealed class SqliteSession : IDisposable
{
    /// <summary>
    /// How long SQLite itself waits for another process's write lock before reporting BUSY. Writes
    /// are short transactions, so this is only reached when a writer is stuck; then the caller gets
    /// <see cref="StoreUnavailableException"/> rather than hanging.
    /// </summary>
    private const int BusyTimeoutMs = 10_000;

    private readonly Dictionary<string, SqliteCommand> _commands = new(StringComparer.Ordinal);

    private SqliteSession(SqliteConnection connection) => Connection = connection;

    public SqliteConnection Connection { get; }

    public static SqliteSession Open(string connectionString)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            connection.Open();
            // busy_timeout: wait inside SQLite (it sleeps and retries) when another process holds the lock.
            // synchronous=NORMAL: in WAL mode a commit survives a process crash (SIGKILL) and never
            // corrupts the file; only an OS crash or power loss can lose the newest commits. FULL
            // would fsync on every write and make each write cost a disk flush.
            using var pragmas = connection.CreateCommand();
            pragmas.CommandText = $"PRAGMA busy_timeout = {BusyTimeoutMs}; PRAGMA synchronous = NORMAL;";
            pragmas.ExecuteNonQuery();
            return new SqliteSession(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>The cached command for <paramref name="sql"/>, bound to <paramref name="tx"/>, with no parameters.</summary>
    public SqliteCommand Command(string sql, SqliteTransaction? tx)
    {
        if (!_commands.TryGetValue(sql, out var command))
        {
            command = Connection.CreateCommand();
            command.CommandText = sql;
            _commands.Add(sql, command);
        }
        // Microsoft.Data.Sqlite insists that a command carries the connection's open transaction (or none).
        command.Transaction = tx;
        command.Parameters.Clear();
        return command;
    }

    public long ScalarLong(string sql, SqliteTransaction? tx) => Convert.ToInt64(Command(sql, tx).ExecuteScalar() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);

    public static long ScalarLong(SqliteCommand command) => Convert.ToInt64(command.ExecuteScalar() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);

    public static List<LogRow> ReadRows(SqliteCommand command)
    {
        var rows = new List<LogRow>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(new LogRow(
                Id: reader.GetInt64(0),
                Name: reader.GetString(1),
                Created: reader.GetInt64(2) != 0,
                Deleted: reader.GetInt64(3) != 0,
                CreateRevision: reader.GetInt64(4),
                PrevRevision: reader.GetInt64(5),
                Lease: reader.GetInt64(6),
                Value: reader.IsDBNull(7) ? [] : reader.GetFieldValue<byte[]>(7)));
        }
        return rows;
    }

    public void Dispose()
    {
        foreach (var command in _commands.Values)
        {
            command.Dispose();
        }
        _commands.Clear();
        Connection.Dispose();
    }
}

/// <summary>
/// Idle reader sessions, reused so reads and watch polls do not pay for opening a connection and
/// preparing statements each time. Readers never block the writer in WAL mode, so several may
/// be open at once; sessions beyond <see cref="MaxIdle"/> are closed when returned.
/// </summary>
internal sealed class SqliteSessionPool(string connectionString) : IDisposable
{
    private const int MaxIdle = 8;

    private readonly Lock _gate = new();
    private readonly Stack<SqliteSession> _idle = new();
    private bool _disposed;

    public string ConnectionString { get; } = connectionString;

    public SqliteSession Rent()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_idle.TryPop(out var session))
            {
                return session;
            }
        }
        return SqliteSession.Open(ConnectionString);
    }

    /// <summary>Returns a session after use; <paramref name="broken"/> ones (after an error) are closed instead.</summary>
    public void Return(SqliteSession session, bool broken = false)
    {
        lock (_gate)
        {
            if (!broken && !_disposed && _idle.Count < MaxIdle)
            {
                _idle.Push(session);
                return;
            }
        }
        session.Dispose();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            while (_idle.TryPop(out var session))
            {
                session.Dispose();
            }
        }
    }
}
