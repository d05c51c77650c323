using Microsoft.Data.Sqlite;
using Trellis.Store.Tests.Contract;
using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests;

/// <summary>The contract against SQLite on a temp file, plus what only a file-backed store has.</summary>
public sealed class SqliteClusterStoreTests : ClusterStoreContract, IDisposable
{
    private readonly TempDir _dir = new();
    private string? _mainPath;
    private int _stores;

    protected override IClusterStore CreateStore(ClusterStoreOptions options)
    {
        string path = _dir.File($"store-{_stores++}.db");
        _mainPath ??= path;
        return new SqliteClusterStore(path, options);
    }

    /// <summary>Another connection to the test's store file, as another process would open it.</summary>
    protected override IClusterStore OpenPeerClient(ClusterStoreOptions options) => new SqliteClusterStore(_mainPath!, options);

    protected override Task CompactAsync(IClusterStore store, long revision) => ((SqliteClusterStore)store).CompactAsync(revision);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Data_revisions_and_leases_survive_closing_and_reopening_the_file()
    {
        long lease = await Store.GrantLeaseAsync(TimeSpan.FromSeconds(30));
        long a = await Store.CreateAsync("/p/a", Bytes.Utf8("a"), lease);
        await Store.CreateAsync("/p/b", Bytes.Utf8("b"));
        await Store.DeleteAsync("/p/b");
        await Store.DisposeAsync();

        await using var reopened = new SqliteClusterStore(_mainPath!, Options);

        Assert.Equal(3, await reopened.CurrentRevisionAsync());
        var item = await reopened.GetAsync("/p/a");
        Assert.Equal((a, a, lease), (item!.CreateRevision, item.ModRevision, item.LeaseId));
        Assert.Null(await reopened.GetAsync("/p/b"));
        await reopened.KeepAliveAsync(lease);
        Assert.Equal(4, await reopened.CreateAsync("/p/c", Bytes.Utf8("c")));
    }

    [Fact]
    public async Task The_file_holds_the_kine_style_log_schema()
    {
        await Store.CreateAsync("/s/a", Bytes.Utf8("a"));

        using var connection = OpenRaw(_mainPath!);
        Assert.Equal(
            ["id", "name", "created", "deleted", "create_revision", "prev_revision", "lease", "value", "old_value"],
            Strings(connection, "SELECT name FROM pragma_table_info('log') ORDER BY cid"));
        Assert.Equal(["id", "ttl_ms", "expires_at"], Strings(connection, "SELECT name FROM pragma_table_info('lease') ORDER BY cid"));
        Assert.Equal(["wal"], Strings(connection, "PRAGMA journal_mode"));
        Assert.Equal(["1"], Strings(connection, "PRAGMA user_version"));
    }

    [Fact]
    public async Task Compaction_physically_removes_superseded_rows_and_tombstones()
    {
        long r = await Store.CreateAsync("/s/a", Bytes.Utf8("0"));
        for (int i = 0; i < 10; i++)
        {
            r = await Store.UpdateAsync("/s/a", Bytes.Utf8($"{i}"), r);
        }
        await Store.CreateAsync("/s/b", Bytes.Utf8("b"));
        await Store.DeleteAsync("/s/b");
        long last = await Store.CreateAsync("/s/c", Bytes.Utf8("c"));
        using var connection = OpenRaw(_mainPath!);
        Assert.Equal(["14"], Strings(connection, "SELECT COUNT(*) FROM log"));

        await ((SqliteClusterStore)Store).CompactAsync(last);

        // Left: the newest row of /s/a and /s/c; /s/b's row and tombstone are gone.
        Assert.Equal(["11", "14"], Strings(connection, "SELECT id FROM log ORDER BY id"));
        Assert.Equal(["14"], Strings(connection, "SELECT value FROM meta WHERE name = 'compact_revision'"));
    }

    [Fact]
    public async Task A_file_that_is_not_a_database_is_unavailable_naming_the_path()
    {
        string path = _dir.File("garbage.db");
        await File.WriteAllTextAsync(path, new string('x', 8192));

        var ex = Assert.Throws<StoreUnavailableException>(() => new SqliteClusterStore(path, Options));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Equal("open", ex.Operation);
        Assert.IsType<SqliteException>(ex.InnerException);
    }

    [Fact]
    public void Another_applications_sqlite_database_is_refused_not_adopted()
    {
        string path = _dir.File("foreign.db");
        using (var connection = OpenRaw(path))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE log (x TEXT)";
            command.ExecuteNonQuery();
        }

        var ex = Assert.Throws<StoreUnavailableException>(() => new SqliteClusterStore(path, Options));

        Assert.Contains("not a Trellis store", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_store_written_by_a_newer_schema_is_refused()
    {
        string path = _dir.File("newer.db");
        using (var connection = OpenRaw(path))
        {
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA user_version = 99";
            command.ExecuteNonQuery();
        }

        var ex = Assert.Throws<StoreUnavailableException>(() => new SqliteClusterStore(path, Options));

        Assert.Contains("schema version 99", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Relative_paths_are_refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => new SqliteClusterStore("relative/store.db", Options));

        Assert.Equal("path", ex.ParamName);
        Assert.Contains("relative/store.db", ex.Message, StringComparison.Ordinal);
    }

    private static SqliteConnection OpenRaw(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    private static List<string> Strings(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read())
        {
            values.Add(Convert.ToString(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture)!);
        }
        return values;
    }
}
