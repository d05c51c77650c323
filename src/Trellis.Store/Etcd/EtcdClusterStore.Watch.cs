using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Trellis.Store;

public sealed partial class EtcdClusterStore
{
    private static readonly TimeSpan s_watchFirstBackoff = TimeSpan.FromMilliseconds(25);
    private static readonly TimeSpan s_watchMaxBackoff = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// An etcd watch (<c>/v3/watch</c>, a streaming POST answered with one JSON object per line)
    /// that reconnects by itself: when the stream breaks (the member died, the connection reset,
    /// the member lost its leader) it opens a new one, on the next endpoint, from the revision of
    /// the last event it delivered. A revision's events always arrive in one answer, so resuming
    /// after the last delivered revision neither misses nor repeats an event.
    /// </summary>
    /// <remarks>
    /// <para>Each stream starts at <c>start_revision = after</c> (not after + 1) and drops the
    /// events at <c>after</c> itself. That costs nothing, and it makes etcd's compaction check
    /// ours: etcd refuses a start revision below its compact revision, so a watcher that asks
    /// for history at or before the compact revision gets <see cref="StoreCompactedException"/>,
    /// exactly as from the other backends (etcd alone would still serve events at the compact
    /// revision). <c>fromRevision</c> 0 starts at revision 1, the beginning of history; etcd reads
    /// a start revision of 0 as "from now".</para>
    /// <para>A watch that cannot get a stream from any endpoint for
    /// <see cref="ClusterStoreOptions.RequestTimeout"/> fails with <see cref="StoreUnavailableException"/>
    /// naming the endpoints; the caller may watch again from its last revision.</para>
    /// </remarks>
    public IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken ct = default)
    {
        KeyRules.ValidatePrefix(prefix);
        KeyRules.ValidateFromRevision(fromRevision);
        ThrowIfDisposed();
        return WatchCoreAsync(prefix, fromRevision, ct);
    }

    private async IAsyncEnumerable<WatchEvent> WatchCoreAsync(string prefix, long fromRevision, [EnumeratorCancellation] CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposing.Token);
        var outage = new WatchOutage(_transport.RequestTimeout);
        long after = fromRevision;
        while (true)
        {
            var stream = await OpenWatchAsync(prefix, after, outage, ct, linked.Token).ConfigureAwait(false);
            string reason;
            try
            {
                while (await stream.NextAsync(outage, ct, linked.Token).ConfigureAwait(false) is { } events)
                {
                    foreach (var e in events)
                    {
                        yield return e;
                        after = e.Revision;
                    }
                }
                reason = stream.Failure ?? "the stream ended";
            }
            finally
            {
                stream.Dispose();
            }
            _transport.StreamFailed(stream.Endpoint);
            await AfterWatchFailureAsync(prefix, after, outage, stream.Endpoint, reason, ct, linked.Token).ConfigureAwait(false);
        }
    }

    /// <summary>Opens a stream from <paramref name="after"/>, trying endpoints in turn with backoff until the outage budget is spent.</summary>
    private async Task<WatchStreamConnection> OpenWatchAsync(string prefix, long after, WatchOutage outage, CancellationToken ct, CancellationToken linked)
    {
        byte[] key = EtcdJson.Key(prefix);
        var body = EtcdJson.Object(w =>
        {
            w.WriteStartObject("create_request");
            w.WriteBase64String("key", key);
            w.WriteBase64String("range_end", EtcdJson.PrefixEnd(key));
            w.WriteNumber("start_revision", Math.Max(after, 1));
            // Delete events then carry the key's last state, as IClusterStore promises.
            w.WriteBoolean("prev_kv", true);
            w.WriteEndObject();
        });
        while (true)
        {
            ThrowIfDisposed();
            HttpResponseMessage? response;
            string endpoint;
            string? failure;
            try
            {
                (response, endpoint, failure) = await _transport.OpenStreamAsync("/v3/watch", body, linked).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested && _disposing.IsCancellationRequested)
            {
                throw Disposed();
            }
            if (response is not null)
            {
                try
                {
                    var stream = await response.Content.ReadAsStreamAsync(linked).ConfigureAwait(false);
                    return new WatchStreamConnection(prefix, after, endpoint, response, stream);
                }
                catch (Exception ex) when (EtcdTransport.IsTransportFailure(ex))
                {
                    response.Dispose();
                    _transport.StreamFailed(endpoint);
                    failure = EtcdTransport.Reason(ex);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested && _disposing.IsCancellationRequested)
                {
                    response.Dispose();
                    throw Disposed();
                }
            }
            await AfterWatchFailureAsync(prefix, after, outage, endpoint, failure ?? "no stream", ct, linked).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Records a failed or broken stream; fails the watch once the outage outlasts its budget,
    /// and backs off after each full round of endpoints so a dead cluster is not hammered.
    /// </summary>
    private async Task AfterWatchFailureAsync(string prefix, long after, WatchOutage outage, string endpoint, string reason, CancellationToken ct, CancellationToken linked)
    {
        outage.Failed(endpoint, reason);
        if (outage.Expired)
        {
            throw new StoreUnavailableException("watch", prefix,
                $"no etcd endpoint of {_transport.Describe()} would serve the watch for {outage.Budget.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s ({outage.Describe()}); watch again from revision {after.ToString(CultureInfo.InvariantCulture)}");
        }
        // The first reconnect after a working stream is immediate (the next endpoint, or the same
        // one after a cut connection); only a whole round of failed attempts backs off.
        if (outage.Attempts == 1 || outage.Attempts % _transport.EndpointCount != 0)
        {
            return;
        }
        try
        {
            // Real time on purpose: this paces reconnects to a real server.
            await Task.Delay(outage.NextBackoff(), TimeProvider.System, linked).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && _disposing.IsCancellationRequested)
        {
            throw Disposed();
        }
    }

    private static ObjectDisposedException Disposed() => new(nameof(EtcdClusterStore), "the store was disposed while a watch was open");

    /// <summary>How long a watch has been without a working stream, and what the endpoints said meanwhile.</summary>
    private sealed class WatchOutage(TimeSpan budget)
    {
        private readonly List<string> _failures = [];
        private long _since = -1;
        private TimeSpan _backoff = s_watchFirstBackoff;

        public TimeSpan Budget => budget;

        public int Attempts { get; private set; }

        public bool Expired => _since >= 0 && TimeProvider.System.GetElapsedTime(_since) > budget;

        public void Failed(string endpoint, string reason)
        {
            if (_since < 0)
            {
                _since = TimeProvider.System.GetTimestamp();
            }
            Attempts++;
            _failures.Add($"{endpoint}: {reason}");
        }

        /// <summary>A stream was established (etcd confirmed the watch): the outage, if any, is over.</summary>
        public void Healthy()
        {
            _since = -1;
            Attempts = 0;
            _backoff = s_watchFirstBackoff;
            _failures.Clear();
        }

        public TimeSpan NextBackoff()
        {
            var delay = _backoff;
            _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, s_watchMaxBackoff.Ticks));
            return delay;
        }

        public string Describe() => string.Join("; ", _failures.AsEnumerable().Reverse().Distinct().Take(3).Reverse());
    }

    /// <summary>One watch stream: the HTTP response being read, and the revision it started after.</summary>
    private sealed class WatchStreamConnection(string prefix, long after, string endpoint, HttpResponseMessage response, Stream body) : IDisposable
    {
        private readonly JsonLineReader _reader = new(body);

        public string Endpoint => endpoint;

        /// <summary>Why the stream stopped, when it stopped without an exception for the caller.</summary>
        public string? Failure { get; private set; }

        /// <summary>
        /// The next answer that carries events newer than the start, or null when the stream
        /// ended or broke (the caller reconnects). Compaction is thrown: reconnecting cannot help.
        /// </summary>
        public async Task<List<WatchEvent>?> NextAsync(WatchOutage outage, CancellationToken ct, CancellationToken linked)
        {
            try
            {
                while (true)
                {
                    (bool ok, WatchAnswer answer) = await _reader.ReadAsync(ParseAnswer, linked).ConfigureAwait(false);
                    if (!ok)
                    {
                        Failure = "the stream ended";
                        return null;
                    }
                    if (answer.Error is not null)
                    {
                        Failure = answer.Error;
                        return null;
                    }
                    if (answer.CompactRevision > 0)
                    {
                        throw new StoreCompactedException(prefix, after, answer.CompactRevision);
                    }
                    if (answer.Canceled)
                    {
                        // e.g. "etcdserver: no leader" after this member lost its leader.
                        Failure = "etcd cancelled the watch: " + (answer.CancelReason ?? "no reason given");
                        return null;
                    }
                    if (answer.Created)
                    {
                        outage.Healthy();
                    }
                    var events = answer.Events?.FindAll(e => e.Revision > after);
                    if (events is { Count: > 0 })
                    {
                        return events;
                    }
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested && linked.IsCancellationRequested)
            {
                throw Disposed();
            }
            catch (Exception ex) when (EtcdTransport.IsTransportFailure(ex))
            {
                Failure = EtcdTransport.Reason(ex);
                return null;
            }
            catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or KeyNotFoundException or OverflowException)
            {
                throw new StoreUnavailableException("watch", prefix, $"unexpected answer from etcd at {endpoint}: {ex.Message}", ex);
            }
        }

        public void Dispose()
        {
            // Disposing the response aborts the request: etcd sees the stream end and drops the watcher.
            response.Dispose();
            body.Dispose();
            _reader.Dispose();
        }
    }

    private readonly record struct WatchAnswer(bool Created, bool Canceled, long CompactRevision, string? CancelReason, List<WatchEvent>? Events, string? Error);

    private static WatchAnswer ParseAnswer(JsonElement root)
    {
        if (EtcdJson.Error(root) is { } error)
        {
            return new WatchAnswer(false, false, 0, null, null, $"{error.Message} (gRPC code {error.Code.ToString(CultureInfo.InvariantCulture)})");
        }
        var result = root.GetProperty("result");
        List<WatchEvent>? events = null;
        if (result.TryGetProperty("events", out var array))
        {
            events = new List<WatchEvent>(array.GetArrayLength());
            foreach (var e in array.EnumerateArray())
            {
                events.Add(ParseEvent(e));
            }
        }
        string? reason = result.TryGetProperty("cancel_reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        return new WatchAnswer(EtcdJson.Bool(result, "created"), EtcdJson.Bool(result, "canceled"), EtcdJson.Int64(result, "compact_revision"), reason, events, null);
    }

    private static WatchEvent ParseEvent(JsonElement e)
    {
        var kv = e.GetProperty("kv");
        bool delete = e.TryGetProperty("type", out var type) && type.GetString() == "DELETE";
        if (!delete)
        {
            var item = EtcdJson.Item(kv);
            return new WatchEvent(WatchEventType.Put, item, item.ModRevision);
        }
        // A delete's kv holds only the key and the delete's revision; prev_kv holds the last
        // state (absent only if that revision is gone, which compaction never does to a live key).
        var last = e.TryGetProperty("prev_kv", out var prev) ? EtcdJson.Item(prev) : new StoreItem(EtcdJson.KeyText(kv), [], 0, 0, 0);
        return new WatchEvent(WatchEventType.Delete, last, EtcdJson.Int64(kv, "mod_revision"));
    }
}
