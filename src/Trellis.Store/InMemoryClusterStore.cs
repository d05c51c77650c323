using System.Globalization;
using System.Text;

namespace Trellis.Store;

/// <summary>
/// The in-memory fake of <see cref="IClusterStore"/>: the same semantics as the real backends
/// (it passes the same contract tests), no I/O, and a <see cref="Dump"/> text form so consumers'
/// tests can compare what they stored as text.
/// </summary>
/// <remarks>
/// One lock guards everything: the fake favours obvious correctness over concurrency. History is
/// an event list in revision order; the current state is kept beside it so reads need no replay.
/// </remarks>
public sealed class InMemoryClusterStore : IClusterStore
{
    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, StoreItem> _items = new(KeyRules.Comparer);
    private readonly List<WatchEvent> _history = [];
    private readonly SortedDictionary<long, Lease> _leases = [];
    private readonly RevisionSignal _signal = new();
    private readonly TimeProvider _time;
    private readonly CompactionPolicy _compaction;
    private readonly CancellationTokenSource _disposing = new();
    private readonly Task _sweepLoop;
    private readonly Task _compactionLoop;
    private long _revision;
    private long _compactRevision;
    private long _lastLeaseId;

    public InMemoryClusterStore(ClusterStoreOptions? options = null)
    {
        options = (options ?? new ClusterStoreOptions()).Validated();
        _time = options.TimeProvider;
        _compaction = new CompactionPolicy(options.CompactionMinRetainedRevisions, options.CompactionMinRetainedAge);
        _sweepLoop = PeriodicLoop.RunAsync(options.LeaseSweepInterval, _time, _ => SweepExpiredLeases(), _disposing.Token);
        _compactionLoop = PeriodicLoop.RunAsync(options.CompactionInterval, _time, _ => CompactByPolicy(), _disposing.Token);
    }

    public Task<StoreItem?> GetAsync(string key, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        return Run(() => Copy(_items.GetValueOrDefault(key)), ct);
    }

    public Task<StoreList> ListAsync(string prefix, CancellationToken ct = default)
    {
        KeyRules.ValidatePrefix(prefix);
        return Run(() =>
        {
            var items = _items.Values.Where(i => i.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(i => Copy(i)).ToArray();
            return new StoreList(items, _revision);
        }, ct);
    }

    public Task<long> CreateAsync(string key, ReadOnlyMemory<byte> value, long leaseId = 0, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        KeyRules.ValidateValue(value);
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: true);
        return Run(() =>
        {
            if (_items.TryGetValue(key, out var current))
            {
                throw new StoreConflictException("create", current, $"key already exists (mod revision {current.ModRevision})");
            }
            RequireLease("create", key, leaseId);
            long revision = ++_revision;
            Put(new StoreItem(key, value.ToArray(), revision, revision, leaseId));
            return revision;
        }, ct);
    }

    public Task<long> UpdateAsync(string key, ReadOnlyMemory<byte> value, long expectedModRevision, long leaseId = 0, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        KeyRules.ValidateValue(value);
        KeyRules.ValidateExpectedRevision(expectedModRevision, zeroMeansAny: false);
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: true);
        return Run(() =>
        {
            var current = Expect("update", key, expectedModRevision);
            RequireLease("update", key, leaseId);
            long revision = ++_revision;
            Put(current with { Value = value.ToArray(), ModRevision = revision, LeaseId = leaseId });
            return revision;
        }, ct);
    }

    public Task<long> DeleteAsync(string key, long expectedModRevision = 0, CancellationToken ct = default)
    {
        KeyRules.ValidateKey(key);
        KeyRules.ValidateExpectedRevision(expectedModRevision, zeroMeansAny: true);
        return Run(() => Remove(Expect("delete", key, expectedModRevision)), ct);
    }

    public IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken ct = default)
    {
        KeyRules.ValidatePrefix(prefix);
        KeyRules.ValidateFromRevision(fromRevision);
        ObjectDisposedException.ThrowIf(_disposing.IsCancellationRequested, this);
        return WatchStream.RunAsync(after => ReadHistory(prefix, after), _signal, Timeout.InfiniteTimeSpan, fromRevision, this, _disposing.Token, ct);
    }

    public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken ct = default)
    {
        KeyRules.ValidateTtl(ttl);
        return Run(() =>
        {
            long id = ++_lastLeaseId;
            _leases.Add(id, new Lease(ttl) { ExpiresAt = _time.GetUtcNow() + ttl });
            return id;
        }, ct);
    }

    public Task KeepAliveAsync(long leaseId, CancellationToken ct = default)
    {
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: false);
        return Run(() =>
        {
            // Run swept expired leases first, so an expired lease is gone here, exactly as if the sweep had won the race.
            var lease = _leases.GetValueOrDefault(leaseId) ?? throw LeaseNotFound("lease-keepalive", leaseId);
            lease.ExpiresAt = _time.GetUtcNow() + lease.Ttl;
            return true;
        }, ct);
    }

    public Task RevokeLeaseAsync(long leaseId, CancellationToken ct = default)
    {
        KeyRules.ValidateLeaseId(leaseId, zeroMeansNone: false);
        return Run(() =>
        {
            if (!_leases.ContainsKey(leaseId))
            {
                throw LeaseNotFound("lease-revoke", leaseId);
            }
            EndLease(leaseId);
            return true;
        }, ct);
    }

    public Task<long> CurrentRevisionAsync(CancellationToken ct = default) => Run(() => _revision, ct);

    /// <summary>
    /// Drops history up to and including <paramref name="revision"/> (current state is kept):
    /// watching from an earlier revision then fails with <see cref="StoreCompactedException"/>.
    /// Compacting to a revision already compacted is a no-op.
    /// </summary>
    public Task CompactAsync(long revision, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(revision);
        return Run(() =>
        {
            if (revision > _revision)
            {
                throw new ArgumentOutOfRangeException(nameof(revision), revision, $"cannot compact to a future revision (current is {_revision})");
            }
            CompactLocked(revision);
            return true;
        }, ct);
    }

    /// <summary>
    /// The current state as text, one line per key in key order:
    /// <c>KEY create=C mod=M lease=L VALUE</c>, the value as UTF-8 text when it is printable,
    /// else <c>base64:…</c>. Stable across runs, so tests can compare it with expected text.
    /// </summary>
    public string Dump()
    {
        var sb = new StringBuilder();
        lock (_gate)
        {
            foreach (var item in _items.Values)
            {
                sb.Append(CultureInfo.InvariantCulture, $"{item.Key} create={item.CreateRevision} mod={item.ModRevision} lease={item.LeaseId} {FormatValue(item.Value)}\n");
            }
        }
        return sb.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposing.IsCancellationRequested)
        {
            return;
        }
        await _disposing.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_sweepLoop, _compactionLoop).ConfigureAwait(false);
        _disposing.Dispose();
    }

    private static string FormatValue(byte[] value)
    {
        try
        {
            string text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(value);
            if (!text.Any(char.IsControl))
            {
                return text;
            }
        }
        catch (DecoderFallbackException)
        {
        }
        return "base64:" + Convert.ToBase64String(value);
    }

    /// <summary>
    /// Runs one operation under the lock, after deleting the keys of leases that have expired
    /// (the "check on read" that makes expiry exact even between sweeps), then wakes watchers.
    /// </summary>
    private Task<T> Run<T>(Func<T> body, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return Task.FromCanceled<T>(ct);
        }
        T result;
        long revision;
        try
        {
            ObjectDisposedException.ThrowIf(_disposing.IsCancellationRequested, this);
            lock (_gate)
            {
                SweepExpiredLeasesLocked();
                result = body();
                revision = _revision;
            }
        }
        catch (Exception ex) when (ex is StoreException or ArgumentException or ObjectDisposedException)
        {
            // Fault the task, as an async method would, rather than throw from the call itself.
            return Task.FromException<T>(ex);
        }
        _signal.Publish(revision);
        return Task.FromResult(result);
    }

    /// <summary>
    /// Items handed out are copies: callers own the byte[] they get (as they do from a real
    /// backend), so a consumer that mutates a value cannot silently rewrite the fake's state.
    /// </summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(item))]
    private static StoreItem? Copy(StoreItem? item) => item is null ? null : item with { Value = item.Value.ToArray() };

    private StoreItem Expect(string operation, string key, long expectedModRevision)
    {
        if (!_items.TryGetValue(key, out var current))
        {
            throw new StoreNotFoundException(operation, key, "key not found");
        }
        if (expectedModRevision != 0 && current.ModRevision != expectedModRevision)
        {
            throw new StoreConflictException(operation, current, $"expected mod revision {expectedModRevision}, but the key is at {current.ModRevision}");
        }
        return current;
    }

    private void RequireLease(string operation, string key, long leaseId)
    {
        if (leaseId != 0 && !_leases.ContainsKey(leaseId))
        {
            throw new StoreNotFoundException(operation, key, $"lease {leaseId} not found (expired, revoked or never granted)", leaseId);
        }
    }

    private static StoreNotFoundException LeaseNotFound(string operation, long leaseId) =>
        new(operation, key: null, $"lease {leaseId} not found (expired, revoked or never granted)", leaseId);

    private void Put(StoreItem item)
    {
        _items[item.Key] = item;
        _history.Add(new WatchEvent(WatchEventType.Put, item, item.ModRevision));
    }

    private long Remove(StoreItem current)
    {
        long revision = ++_revision;
        _items.Remove(current.Key);
        _history.Add(new WatchEvent(WatchEventType.Delete, current, revision));
        return revision;
    }

    private WatchBatch ReadHistory(string prefix, long after)
    {
        lock (_gate)
        {
            if (after < _compactRevision)
            {
                throw new StoreCompactedException(prefix, after, _compactRevision);
            }
            // History is in revision order: binary-search the first event after the watcher's position.
            int lo = 0, hi = _history.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_history[mid].Revision <= after)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }
            var events = new List<WatchEvent>();
            for (int i = lo; i < _history.Count; i++)
            {
                var e = _history[i];
                if (e.Item.Key.StartsWith(prefix, StringComparison.Ordinal))
                {
                    if (events.Count == WatchStream.BatchSize)
                    {
                        return new WatchBatch(events, _revision, Truncated: true);
                    }
                    events.Add(e with { Item = Copy(e.Item) });
                }
            }
            return new WatchBatch(events, _revision, Truncated: false);
        }
    }

    private Task SweepExpiredLeases()
    {
        long revision;
        lock (_gate)
        {
            SweepExpiredLeasesLocked();
            revision = _revision;
        }
        _signal.Publish(revision);
        return Task.CompletedTask;
    }

    private void SweepExpiredLeasesLocked()
    {
        if (_leases.Count == 0)
        {
            return;
        }
        var now = _time.GetUtcNow();
        foreach (long id in _leases.Where(l => l.Value.ExpiresAt <= now).Select(l => l.Key).ToList())
        {
            EndLease(id);
        }
    }

    private void EndLease(long leaseId)
    {
        foreach (var item in _items.Values.Where(i => i.LeaseId == leaseId).ToList())
        {
            Remove(item);
        }
        _leases.Remove(leaseId);
    }

    private Task CompactByPolicy()
    {
        lock (_gate)
        {
            long target = _compaction.Next(_time.GetUtcNow(), _revision);
            CompactLocked(target);
        }
        return Task.CompletedTask;
    }

    private void CompactLocked(long revision)
    {
        if (revision <= _compactRevision)
        {
            return;
        }
        int drop = _history.FindIndex(e => e.Revision > revision);
        _history.RemoveRange(0, drop < 0 ? _history.Count : drop);
        _compactRevision = revision;
    }

    private sealed class Lease(TimeSpan ttl)
    {
        public TimeSpan Ttl { get; } = ttl;

        public DateTimeOffset ExpiresAt { get; set; }
    }
}
