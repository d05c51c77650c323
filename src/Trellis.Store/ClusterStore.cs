namespace Trellis.Store;

/// <summary>Opens a cluster store from the URL every Trellis process is given (<c>--store</c>, <c>TRELLIS_STORE</c>).</summary>
public static class ClusterStore
{
    private const string SqliteScheme = "sqlite://";

    /// <summary>
    /// <c>sqlite:///abs/path/store.db</c> opens (creating the file and its directory if needed)
    /// an embedded store. <c>etcd://HOST:PORT[,HOST:PORT…]</c> (endpoints tried in order, the port
    /// defaulting to 2379) and <c>etcd+unix:///path/to/socket</c> open a client of an etcd v3
    /// cluster; that sends nothing until the first call.
    /// </summary>
    /// <exception cref="ArgumentException">The URL is malformed or names an unsupported backend; the message names the URL.</exception>
    /// <exception cref="StoreUnavailableException">The store exists but cannot be opened.</exception>
    public static IClusterStore Open(string url, ClusterStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(url);
        if (url.StartsWith(SqliteScheme, StringComparison.OrdinalIgnoreCase))
        {
            return new SqliteClusterStore(ParseSqlitePath(url), options);
        }
        if (url.StartsWith(EtcdEndpoint.TcpScheme, StringComparison.OrdinalIgnoreCase) || url.StartsWith(EtcdEndpoint.UnixScheme, StringComparison.OrdinalIgnoreCase))
        {
            return new EtcdClusterStore(url, options);
        }
        throw new ArgumentException($"store URL '{url}': unknown scheme; expected sqlite:///abs/path/store.db, etcd://HOST:PORT[,HOST:PORT…] or etcd+unix:///path/to/socket", nameof(url));
    }

    /// <summary>
    /// The file path of a sqlite URL. The path is taken literally (no percent-decoding, no query):
    /// store paths are plain filesystem paths, and guessing at escapes would open the wrong file.
    /// </summary>
    internal static string ParseSqlitePath(string url)
    {
        string path = url[SqliteScheme.Length..];
        if (path.Length == 0 || path[0] != '/')
        {
            // "sqlite://store.db" or "sqlite://host/…": a URL authority where a path was meant.
            throw new ArgumentException($"store URL '{url}': the path must be absolute, as in sqlite:///abs/path/store.db (three slashes)", nameof(url));
        }
        if (path.Contains('?', StringComparison.Ordinal) || path.Contains('#', StringComparison.Ordinal))
        {
            throw new ArgumentException($"store URL '{url}': query and fragment parts are not supported", nameof(url));
        }
        if (path.EndsWith('/') || path.Split('/').Any(segment => segment is "." or ".."))
        {
            throw new ArgumentException($"store URL '{url}': the path must name a file, without '.' or '..' segments", nameof(url));
        }
        return path;
    }
}
