using System.Globalization;
using System.Text.Json;

namespace Trellis.Store;

/// <summary>
/// The distributed cluster store: an etcd v3 cluster, spoken to through its gRPC gateway (JSON
/// over HTTP/1.1, see <see cref="EtcdTransport"/>). Revisions, compare-and-swap, watches and
/// leases are etcd's own; this class maps <see cref="IClusterStore"/> onto them one to one.
/// </summary>
/// <remarks>
/// <para>Writes are single etcd transactions: create compares <c>create_revision == 0</c>,
/// update and conditional delete compare <c>mod_revision</c>, and the failure branch reads the
/// key, so a lost compare-and-swap returns the winner without another round trip.</para>
/// <para>Differences from the embedded backends that callers can see: a new etcd is at revision
/// 1, not 0 (its first write is revision 2); lease TTLs are whole seconds (rounded up) on the
/// etcd leader's clock, and an expired lease's keys go when the leader next checks (it does so
/// every 500 ms), not at the instant of expiry; revoking or expiring a lease deletes all its keys
/// in one revision, so their Delete events share it.</para>
/// <para>Values up to <see cref="KeyRules.MaxValueBytes"/> need etcd started with
/// <c>--max-request-bytes</c> of at least 2 MiB: etcd's default limit (1.5 MiB) is for the whole request.</para>
/// </remarks>
public sealed partial class EtcdClusterStore : IClusterStore
{
    /// <summary>Keys per page of a list: bounds each response while one list stays one snapshot.</summary>
    internal const int ListPageSize = 500;

    private readonly EtcdTransport _transport;
    private readonly TimeProvider _time;
    private readonly CompactionPolicy _compaction;
    private readonly CancellationTokenSource _disposing = new();
    private readonly Task _compactionLoop;
    private int _disposed;

    /// <summary>
    /// A client of the etcd cluster at <paramref name="url"/> (<c>etcd://HOST:PORT[,HOST:PORT…]</c>
    /// or <c>etcd+unix:///path</c>). Nothing is sent until the first call, so opening never fails
    /// for a cluster that is down; calls then fail with <see cref="StoreUnavailableException"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The URL is malformed; the message names it.</exception>
    public EtcdClusterStore(string url, ClusterStoreOptions? options = null)
    {
        var endpoints = EtcdEndpoint.ParseUrl(url);
        options = (options ?? new ClusterStoreOptions()).Validated();
        _time = options.TimeProvider;
        _compaction = new CompactionPolicy(options.CompactionMinRetainedRevisions, options.CompactionMinRetainedAge);
        _transport = new EtcdTransport(endpoints, options);
        Endpoints = endpoints.Select(e => e.Display).ToArray();
        // Started directly rather than through Task.Run: the first timer is registered before the
        // constructor returns (see PeriodicLoop).
        _compactionLoop = PeriodicLoop.RunAsync(options.CompactionInterval, _time, CompactByPolicyAsync, _disposing.Token);
    }

    /// <summary>The endpoints in the order they are tried (<c>HOST:PORT</c> or <c>unix:/path</c>).</summary>
    public IReadOnlyList<string> Endpoints { get; }

    public Task<StoreItem?> GetAsync(string key, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        var body = EtcdJson.Object(w => w.WriteBase64String("key", EtcdJson.Key(key)));
        return CallAsync("get", key, "/v3/kv/range", body, EtcdRetry.Idempotent, EtcdJson.FirstKv, onError: null, ct);
    }

    public async Task<StoreList> ListAsync(string prefix, CancellationToken ct = default)
    {
        KeyRules.ValidatePrefix(prefix);
        byte[] start = EtcdJson.Key(prefix);
        byte[] end = EtcdJson.PrefixEnd(start);
        while (true)
        {
            // Page after page at the first page's revision: one snapshot, however many pages.
            // If that revision is compacted between pages, start over at a newer one.
            var items = new List<StoreItem>();
            long revision = 0;
            byte[] from = start;
            bool compacted = false;
            while (true)
            {
                long at = revision;
                var body = EtcdJson.Object(w =>
                {
                    w.WriteBase64String("key", from);
                    w.WriteBase64String("range_end", end);
                    w.WriteNumber("limit", ListPageSize);
                    if (at != 0)
                    {
                        w.WriteNumber("revision", at);
                    }
                });
                var page = await CallAsync("list", prefix, "/v3/kv/range", body, EtcdRetry.Idempotent,
                    r => (Items: EtcdJson.Kvs(r), Revision: EtcdJson.HeaderRevision(r), More: EtcdJson.Bool(r, "more")),
                    e => IsCompacted(e) ? default : throw Unavailable("list", prefix, e), ct).ConfigureAwait(false);
                if (page.Items is null)
                {
                    compacted = true;
                    break;
                }
                if (revision == 0)
                {
                    revision = page.Revision;
                }
                items.AddRange(page.Items);
                if (!page.More || page.Items.Count == 0)
                {
                    break;
                }
                from = [.. EtcdJson.Key(page.Items[^1].Key), 0]; // the smallest key after the last one
            }
            if (!compacted)
            {
                return new StoreList(items, revision);
            }
        }
    }

    public Task<long> CreateAsync(string key, ReadOnlyMemory<byte> value, long leaseId = 0, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        KeyRules.ValidateValue(value);
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: true);
        byte[] k = EtcdJson.Key(key);
        var body = EtcdJson.Object(w =>
        {
            WriteCompare(w, k, "CREATE", "create_revision", 0);
            WritePut(w, "success", k, value.Span, leaseId);
            WriteRange(w, "failure", k);
        });
        return CallAsync("create", key, "/v3/kv/txn", body, EtcdRetry.Mutation, r =>
        {
            if (EtcdJson.Bool(r, "succeeded"))
            {
                return EtcdJson.HeaderRevision(r);
            }
            var current = FailureRange(r) ?? throw new JsonException("the create's compare failed but the key is absent");
            throw new StoreConflictException("create", current, $"key already exists (mod revision {current.ModRevision.ToString(CultureInfo.InvariantCulture)})");
        }, e => throw LeaseOrUnavailable("create", key, leaseId, e), ct);
    }

    public Task<long> UpdateAsync(string key, ReadOnlyMemory<byte> value, long expectedModRevision, long leaseId = 0, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        KeyRules.ValidateValue(value);
        KeyRules.ValidateExpectedRevision(expectedModRevision, zeroMeansAny: false);
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: true);
        byte[] k = EtcdJson.Key(key);
        var body = EtcdJson.Object(w =>
        {
            WriteCompare(w, k, "MOD", "mod_revision", expectedModRevision);
            WritePut(w, "success", k, value.Span, leaseId);
            WriteRange(w, "failure", k);
        });
        return CallAsync("update", key, "/v3/kv/txn", body, EtcdRetry.Mutation,
            r => EtcdJson.Bool(r, "succeeded") ? EtcdJson.HeaderRevision(r) : throw CasFailed("update", key, expectedModRevision, FailureRange(r)),
            e => throw LeaseOrUnavailable("update", key, leaseId, e), ct);
    }

    public Task<long> DeleteAsync(string key, long expectedModRevision = 0, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        KeyRules.ValidateExpectedRevision(expectedModRevision, zeroMeansAny: true);
        byte[] k = EtcdJson.Key(key);
        if (expectedModRevision == 0)
        {
            // Deleting nothing writes nothing in etcd (no revision), so "not found" is exact.
            var plain = EtcdJson.Object(w => w.WriteBase64String("key", k));
            return CallAsync("delete", key, "/v3/kv/deleterange", plain, EtcdRetry.Mutation,
                r => EtcdJson.Int64(r, "deleted") > 0 ? EtcdJson.HeaderRevision(r) : throw new StoreNotFoundException("delete", key, "key not found"),
                onError: null, ct);
        }
        var body = EtcdJson.Object(w =>
        {
            WriteCompare(w, k, "MOD", "mod_revision", expectedModRevision);
            w.WriteStartArray("success");
            w.WriteStartObject();
            w.WriteStartObject("request_delete_range");
            w.WriteBase64String("key", k);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
            WriteRange(w, "failure", k);
        });
        return CallAsync("delete", key, "/v3/kv/txn", body, EtcdRetry.Mutation,
            r => EtcdJson.Bool(r, "succeeded") ? EtcdJson.HeaderRevision(r) : throw CasFailed("delete", key, expectedModRevision, FailureRange(r)),
            onError: null, ct);
    }

    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken ct = default)
    {
        KeyRules.ValidateTtl(ttl);
        // etcd counts TTLs in whole seconds (and raises tiny ones to its minimum, ~1.5 election timeouts).
        long seconds = Math.Max(1, (long)Math.Ceiling(ttl.TotalSeconds));
        var body = EtcdJson.Object(w => w.WriteNumber("TTL", seconds));
        // (A grant's own "error" field, were etcd ever to fill it, reads as an error answer.)
        return CallAsync("lease-grant", null, "/v3/lease/grant", body, EtcdRetry.Idempotent,
            r => EtcdJson.Int64(r, "ID") is > 0 and long id ? id : throw new JsonException("the grant carries no lease ID"),
            onError: null, ct);
    }

    public Task KeepAliveAsync(long leaseId, CancellationToken ct = default)
    {
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: false);
        // A streaming endpoint in gRPC; one request body gives one answer and the end of the stream.
        // etcd answers TTL 0 (omitted) for a lease it does not know, and for one that has expired
        // but is not yet revoked it first waits for the revocation, so expiry here is exact.
        var body = EtcdJson.Object(w => w.WriteNumber("ID", leaseId));
        return CallAsync("lease-keepalive", null, "/v3/lease/keepalive", body, EtcdRetry.Idempotent,
            r => EtcdJson.Int64(r, "TTL") > 0 ? true : throw LeaseNotFound("lease-keepalive", null, leaseId),
            e => throw LeaseOrUnavailable("lease-keepalive", null, leaseId, e), ct);
    }

    public Task RevokeLeaseAsync(long leaseId, CancellationToken ct = default)
    {
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: false);
        var body = EtcdJson.Object(w => w.WriteNumber("ID", leaseId));
        return CallAsync("lease-revoke", null, "/v3/lease/revoke", body, EtcdRetry.Mutation, _ => true,
            e => throw LeaseOrUnavailable("lease-revoke", null, leaseId, e), ct);
    }

    public Task<long> CurrentRevisionAsync(CancellationToken ct = default)
    {
        // A count-only range of one (absent) key: a linearizable read that returns just the header.
        var body = EtcdJson.Object(w =>
        {
            w.WriteBase64String("key", "\0"u8);
            w.WriteBoolean("count_only", true);
        });
        return CallAsync("revision", null, "/v3/kv/range", body, EtcdRetry.Idempotent, EtcdJson.HeaderRevision, onError: null, ct);
    }

    /// <summary>
    /// etcd's compaction (waiting until it is physical): watching from before
    /// <paramref name="revision"/> then fails with <see cref="StoreCompactedException"/>.
    /// Compacting to a revision already compacted is a no-op. The background compactor calls
    /// this with the revision its retention policy allows (as the Kubernetes API server compacts
    /// the etcd it uses); start etcd without <c>--auto-compaction-*</c> or with a longer retention.
    /// </summary>
    public Task CompactAsync(long revision, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(revision);
        var body = EtcdJson.Object(w =>
        {
            w.WriteNumber("revision", revision);
            w.WriteBoolean("physical", true);
        });
        return CallAsync("compact", null, "/v3/kv/compaction", body, EtcdRetry.Idempotent, _ => true, e =>
        {
            if (IsCompacted(e))
            {
                return true;
            }
            if (e.Code == EtcdError.OutOfRange && e.Message.Contains("future revision", StringComparison.Ordinal))
            {
                throw new ArgumentOutOfRangeException(nameof(revision), revision, $"cannot compact to a future revision ({e.Message})");
            }
            throw Unavailable("compact", null, e);
        }, ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _disposing.CancelAsync().ConfigureAwait(false);
        await _compactionLoop.ConfigureAwait(false);
        _transport.Dispose();
        _disposing.Dispose();
    }

    public override string ToString() => "etcd://" + string.Join(",", Endpoints);

    private static bool IsCompacted(EtcdError error) =>
        error.Code == EtcdError.OutOfRange && error.Message.Contains("compacted", StringComparison.Ordinal);

    private static StoreUnavailableException Unavailable(string operation, string? key, EtcdError error) => new(operation, key, error.ToString());

    private static StoreNotFoundException LeaseNotFound(string operation, string? key, long leaseId) =>
        new(operation, key, $"lease {leaseId.ToString(CultureInfo.InvariantCulture)} not found (expired, revoked or never granted)", leaseId);

    /// <summary>etcd's NotFound on these calls always means the lease ("requested lease not found").</summary>
    private static StoreException LeaseOrUnavailable(string operation, string? key, long leaseId, EtcdError error) =>
        error.Code == EtcdError.NotFound && leaseId != 0 ? LeaseNotFound(operation, key, leaseId) : Unavailable(operation, key, error);

    private static StoreException CasFailed(string operation, string key, long expected, StoreItem? current) =>
        current is null
            ? new StoreNotFoundException(operation, key, "key not found")
            : new StoreConflictException(operation, current, $"expected mod revision {expected.ToString(CultureInfo.InvariantCulture)}, but the key is at {current.ModRevision.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>The key as the failure branch of a transaction read it (null when absent).</summary>
    private static StoreItem? FailureRange(JsonElement txn) =>
        txn.TryGetProperty("responses", out var responses) && responses.GetArrayLength() > 0
            ? EtcdJson.FirstKv(responses[0].GetProperty("response_range"))
            : throw new JsonException("a failed transaction without the failure branch's read");

    private static void WriteCompare(System.Text.Json.Utf8JsonWriter w, byte[] key, string target, string field, long value)
    {
        w.WriteStartArray("compare");
        w.WriteStartObject();
        w.WriteBase64String("key", key);
        w.WriteString("target", target);
        w.WriteString("result", "EQUAL");
        w.WriteNumber(field, value);
        w.WriteEndObject();
        w.WriteEndArray();
    }

    private static void WritePut(System.Text.Json.Utf8JsonWriter w, string branch, byte[] key, ReadOnlySpan<byte> value, long leaseId)
    {
        w.WriteStartArray(branch);
        w.WriteStartObject();
        w.WriteStartObject("request_put");
        w.WriteBase64String("key", key);
        w.WriteBase64String("value", value);
        if (leaseId != 0)
        {
            w.WriteNumber("lease", leaseId);
        }
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
    }

    private static void WriteRange(System.Text.Json.Utf8JsonWriter w, string branch, byte[] key)
    {
        w.WriteStartArray(branch);
        w.WriteStartObject();
        w.WriteStartObject("request_range");
        w.WriteBase64String("key", key);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
    }

    /// <summary>
    /// One call through the transport, failing fast once disposed and turning a cancellation
    /// caused by disposal into <see cref="ObjectDisposedException"/> (the caller did not cancel).
    /// </summary>
    private async Task<T> CallAsync<T>(string operation, string? key, string path, ReadOnlyMemory<byte> body, EtcdRetry retry,
        Func<JsonElement, T> onSuccess, Func<EtcdError, T>? onError, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        ThrowIfDisposed();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposing.Token);
        try
        {
            return await _transport.CallAsync(operation, key, path, body, retry, onSuccess, onError, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && _disposing.IsCancellationRequested)
        {
            throw new ObjectDisposedException(nameof(EtcdClusterStore), "the store was disposed during the call");
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private async Task CompactByPolicyAsync(CancellationToken ct)
    {
        long current = await CurrentRevisionAsync(ct).ConfigureAwait(false);
        long target = _compaction.Next(_time.GetUtcNow(), current);
        if (target > 0)
        {
            await CompactAsync(target, ct).ConfigureAwait(false);
        }
    }
}
