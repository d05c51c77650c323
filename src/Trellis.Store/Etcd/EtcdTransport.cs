using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;

namespace Trellis.Store;

/// <summary>Whether a call may be sent again after an attempt whose outcome is unknown.</summary>
internal enum EtcdRetry
{
    /// <summary>Reads, keep-alives, compaction, lease grants (an orphaned lease simply expires): resend anywhere.</summary>
    Idempotent,

    /// <summary>
    /// Writes. Resent only when the first attempt provably never reached an etcd member (the
    /// connection failed) or a member refused it before proposing it ("no leader"). Once sent,
    /// a lost answer leaves the outcome unknown, and resending a compare-and-swap could report
    /// a conflict with the caller's own write; the caller is told instead, as clientv3 does.
    /// </summary>
    Mutation,
}

/// <summary>An error answer from etcd: its gRPC status code and message, and who gave it.</summary>
internal readonly record struct EtcdError(int Code, string Message, string Endpoint)
{
    public const int Canceled = 1;
    public const int DeadlineExceeded = 4;
    public const int NotFound = 5;
    public const int OutOfRange = 11;
    public const int Unavailable = 14;

    /// <summary>
    /// Errors etcd returns while a proposal is in flight (timeouts, leader changes, a stopping
    /// server): a write that got one may still commit. Refusals (not found, compare failures,
    /// too large) are definite and have other codes.
    /// </summary>
    public bool MayHaveCommitted => Code is Canceled or DeadlineExceeded or Unavailable;

    public override string ToString() => $"etcd at {Endpoint}: {Message} (gRPC code {Code.ToString(CultureInfo.InvariantCulture)})";
}

/// <summary>
/// HTTP/1.1 to etcd's gRPC gateway with failover. One <see cref="HttpClient"/> holds pooled
/// connections to every endpoint; its <see cref="SocketsHttpHandler.ConnectCallback"/> makes
/// each connection (TCP, a unix socket, or the caller's <see cref="ClusterStoreOptions.ConnectSocket"/>).
/// </summary>
/// <remarks>
/// <para>Failover: calls go to the preferred endpoint (at first the URL's first). A failure
/// moves the preference to the next endpoint and the call is retried there, round after round
/// with a short backoff, until it succeeds or <see cref="ClusterStoreOptions.RequestTimeout"/>
/// runs out; then <see cref="StoreUnavailableException"/> names every endpoint and what each said.</para>
/// <para>Why not gRPC: the gateway speaks JSON over HTTP/1.1, which <see cref="HttpClient"/> and
/// System.Text.Json handle without generated code or reflection, so the NativeAOT CLI can use it.
/// The gateway is served on the same port as gRPC by every etcd since 3.3.</para>
/// <para>Every request carries <c>Grpc-Metadata-hasleader: true</c> (clientv3's
/// WithRequireLeader): a member cut off from its leader then refuses at once with "no leader"
/// instead of hanging or serving stale watches, and the call moves to a member that has one.</para>
/// </remarks>
internal sealed class EtcdTransport : IDisposable
{
    private static readonly MediaTypeHeaderValue s_json = new("application/json");
    private static readonly TimeSpan s_firstBackoff = TimeSpan.FromMilliseconds(25);
    private static readonly TimeSpan s_maxBackoff = TimeSpan.FromMilliseconds(500);

    private readonly IReadOnlyList<EtcdEndpoint> _endpoints;
    private readonly Func<DnsEndPoint, CancellationToken, ValueTask<Socket>>? _connectSocket;
    private readonly HttpClient _http;
    private readonly TimeSpan _connectTimeout;
    private int _preferred;

    public EtcdTransport(IReadOnlyList<EtcdEndpoint> endpoints, ClusterStoreOptions options)
    {
        _endpoints = endpoints;
        _connectSocket = options.ConnectSocket;
        RequestTimeout = options.RequestTimeout;
        _connectTimeout = options.ConnectTimeout;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = ConnectAsync,
            ConnectTimeout = options.ConnectTimeout,
            // A proxy from the environment (HTTP_PROXY) must never sit between a node and its datastore.
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        };
        _http = new HttpClient(handler)
        {
            // Deadlines are ours (RequestTimeout across attempts), never HttpClient's.
            Timeout = Timeout.InfiniteTimeSpan,
            // etcd multiplexes its port: HTTP/2 goes to gRPC, HTTP/1.1 to the JSON gateway.
            DefaultRequestVersion = HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    public TimeSpan RequestTimeout { get; }

    public int EndpointCount => _endpoints.Count;

    public string Describe() => string.Join(",", _endpoints.Select(e => e.Display));

    /// <summary>
    /// POSTs <paramref name="body"/> to <paramref name="path"/> and hands the answer to
    /// <paramref name="onSuccess"/>, or an error answer to <paramref name="onError"/> (which
    /// throws or returns a result; by default it throws <see cref="StoreUnavailableException"/>).
    /// Streaming endpoints (lease keep-alive) answer <c>{"result":…}</c>, which is unwrapped.
    /// </summary>
    public async Task<T> CallAsync<T>(
        string operation,
        string? key,
        string path,
        ReadOnlyMemory<byte> body,
        EtcdRetry retry,
        Func<JsonElement, T> onSuccess,
        Func<EtcdError, T>? onError,
        CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(RequestTimeout);
        var failures = new List<string>();
        var backoff = s_firstBackoff;
        int attempts = 0;
        long started = TimeProvider.System.GetTimestamp();
        bool onlyUnreachable = true;
        while (true)
        {
            int index = Volatile.Read(ref _preferred);
            var endpoint = _endpoints[index];
            attempts++;
            // Only an idempotent call may give up on one member and ask another; a mutation that
            // was sent waits for its answer (etcd itself times out a proposal that cannot commit).
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            if (retry == EtcdRetry.Idempotent && _endpoints.Count > 1)
            {
                attempt.CancelAfter(RequestTimeout / _endpoints.Count);
            }
            Exception failure;
            try
            {
                using var request = NewRequest(endpoint, path, body);
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, attempt.Token).ConfigureAwait(false);
                byte[] bytes = await response.Content.ReadAsByteArrayAsync(attempt.Token).ConfigureAwait(false);
                using var document = ParseAnswer(bytes, response.StatusCode, endpoint);
                var root = document.RootElement;
                if (EtcdJson.Error(root) is { } error)
                {
                    var answer = new EtcdError(error.Code, error.Message, endpoint.Display);
                    if (retry == EtcdRetry.Mutation && !IsRefusedBeforeProposal(answer) && answer.MayHaveCommitted)
                    {
                        // e.g. "request timed out, possibly due to previous leader failure": a
                        // follower took the write while its leader was dying; the new leader may
                        // still commit it.
                        throw Unavailable(operation, key, $"{answer}; the outcome is unknown: read the key before retrying");
                    }
                    if (!IsRefusedBeforeProposal(answer) && (retry == EtcdRetry.Mutation || answer.Code != EtcdError.Unavailable))
                    {
                        return onError is null ? throw Unavailable(operation, key, answer.ToString()) : onError(answer);
                    }
                    failures.Add(answer.ToString());
                    onlyUnreachable = false;
                    backoff = await NextAttemptAsync(index, backoff, attempts, operation, key, failures, deadline.Token).ConfigureAwait(false);
                    continue;
                }
                if (root.TryGetProperty("result", out var result))
                {
                    root = result;
                }
                try
                {
                    return onSuccess(root);
                }
                catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or KeyNotFoundException or OverflowException)
                {
                    throw Unavailable(operation, key, $"unexpected answer from etcd at {endpoint.Display}: {ex.Message}", ex);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (OperationCanceledException ex) when (deadline.IsCancellationRequested)
            {
                failures.Add($"{endpoint.Display}: no answer");
                // A mutation still waiting for its answer may yet commit.
                throw Unavailable(operation, key, GaveUp(failures, outcomeUnknown: retry == EtcdRetry.Mutation, RequestTimeout), ex);
            }
            catch (OperationCanceledException ex)
            {
                // HttpClient's ConnectTimeout, or the per-attempt timeout (idempotent calls only).
                failure = ex;
            }
            catch (Exception ex) when (IsTransportFailure(ex))
            {
                failure = ex;
            }
            // A connection that could not be made never carried the request; anything later may have.
            bool delivered = !IsConnectFailure(failure);
            failures.Add($"{endpoint.Display}: {Reason(failure)}");
            if (delivered && retry == EtcdRetry.Mutation)
            {
                MoveOn(index);
                throw Unavailable(operation, key, $"the connection to etcd at {endpoint.Display} failed after the request was sent ({Reason(failure)}); the outcome is unknown: read the key before retrying", failure);
            }
            // Nothing listening anywhere (a cluster that is down, a wrong URL): waiting the whole
            // RequestTimeout would only delay the error. A member restarting or an election in
            // progress answers or times out differently, and keeps the full budget.
            onlyUnreachable &= !delivered;
            if (onlyUnreachable && attempts >= _endpoints.Count && TimeProvider.System.GetElapsedTime(started) >= _connectTimeout)
            {
                MoveOn(index);
                throw Unavailable(operation, key, GaveUp(failures, outcomeUnknown: false, TimeProvider.System.GetElapsedTime(started)), failure);
            }
            backoff = await NextAttemptAsync(index, backoff, attempts, operation, key, failures, deadline.Token).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Opens a streaming POST (a watch) on the preferred endpoint; the caller reads the body. An
    /// endpoint that cannot be reached or refuses moves the preference along and is returned as
    /// a failure, so the caller's reconnect loop (which owns backoff and the outage budget) decides.
    /// </summary>
    public async Task<(HttpResponseMessage? Response, string Endpoint, string? Failure)> OpenStreamAsync(string path, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        int index = Volatile.Read(ref _preferred);
        var endpoint = _endpoints[index];
        using var request = NewRequest(endpoint, path, body);
        HttpResponseMessage response;
        try
        {
            // Bounded so that a member that accepts connections but never answers is left behind.
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            attempt.CancelAfter(RequestTimeout / Math.Max(1, _endpoints.Count));
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, attempt.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            MoveOn(index);
            return (null, endpoint.Display, Reason(ex));
        }
        catch (Exception ex) when (IsTransportFailure(ex))
        {
            MoveOn(index);
            return (null, endpoint.Display, Reason(ex));
        }
        if (!response.IsSuccessStatusCode)
        {
            // The gateway answers an error before any stream message: read it for the report.
            string detail;
            try
            {
                byte[] bytes = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
                using var document = ParseAnswer(bytes, response.StatusCode, endpoint);
                detail = EtcdJson.Error(document.RootElement)?.Message ?? $"HTTP {(int)response.StatusCode}";
            }
            catch (Exception ex) when (ex is StoreUnavailableException || IsTransportFailure(ex))
            {
                detail = $"HTTP {(int)response.StatusCode}";
            }
            response.Dispose();
            MoveOn(index);
            return (null, endpoint.Display, detail);
        }
        return (response, endpoint.Display, null);
    }

    /// <summary>A stream that was open failed: prefer the next endpoint when reconnecting.</summary>
    public void StreamFailed(string endpointDisplay)
    {
        int index = Volatile.Read(ref _preferred);
        if (_endpoints[index].Display == endpointDisplay)
        {
            MoveOn(index);
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>
    /// Network failures as HttpClient reports them: its own exception, or the socket/IO error
    /// underneath when the body is read. Anything else (a bug, a bad argument) propagates.
    /// </summary>
    public static bool IsTransportFailure(Exception ex) => ex is HttpRequestException or IOException or SocketException;

    public static string Reason(Exception ex)
    {
        if (ex is OperationCanceledException)
        {
            return ex.InnerException is TimeoutException ? "connect timed out" : "no answer";
        }
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is SocketException socket)
            {
                return socket.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connection refused",
                    SocketError.ConnectionReset => "connection reset",
                    SocketError.TimedOut => "timed out",
                    SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
                    _ => socket.Message,
                };
            }
        }
        return ex.Message;
    }

    /// <summary>
    /// etcd answers these before proposing anything to raft, so even a write is safe to resend
    /// to another member: "no leader" (this member lost its leader; see hasleader above),
    /// "not capable" (a member still joining), "too many requests" (backpressure).
    /// </summary>
    private static bool IsRefusedBeforeProposal(EtcdError error) =>
        error.Code == EtcdError.Unavailable
        && (error.Message.Contains("no leader", StringComparison.Ordinal)
            || error.Message.Contains("not capable", StringComparison.Ordinal)
            || error.Message.Contains("too many requests", StringComparison.Ordinal));

    /// <summary>
    /// A connect that failed: HttpClient says so, or its ConnectTimeout fired, which surfaces as
    /// a TaskCanceledException (none of our tokens) wrapping a TimeoutException.
    /// </summary>
    private static bool IsConnectFailure(Exception ex) =>
        ex is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError }
            or OperationCanceledException { InnerException: TimeoutException };

    private static HttpRequestMessage NewRequest(EtcdEndpoint endpoint, string path, ReadOnlyMemory<byte> body)
    {
        var content = new ReadOnlyMemoryContent(body);
        content.Headers.ContentType = s_json;
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(endpoint.BaseUri, path)) { Content = content };
        request.Headers.TryAddWithoutValidation("Grpc-Metadata-hasleader", "true");
        return request;
    }

    private static JsonDocument ParseAnswer(byte[] bytes, HttpStatusCode status, EtcdEndpoint endpoint)
    {
        try
        {
            return JsonDocument.Parse(bytes);
        }
        catch (JsonException ex)
        {
            throw new StoreUnavailableException("etcd", null, $"etcd at {endpoint.Display} answered HTTP {(int)status} with something that is not etcd's JSON; is this an etcd v3 client URL?", ex);
        }
    }

    private void MoveOn(int failedIndex) =>
        Interlocked.CompareExchange(ref _preferred, (failedIndex + 1) % _endpoints.Count, failedIndex);

    /// <summary>
    /// Prefer the next endpoint; after a whole round of failures, back off before the next round.
    /// Returns the next backoff; throws <see cref="StoreUnavailableException"/> when the deadline passes first.
    /// </summary>
    private async Task<TimeSpan> NextAttemptAsync(int failedIndex, TimeSpan backoff, int attempts, string operation, string? key, List<string> failures, CancellationToken deadline)
    {
        MoveOn(failedIndex);
        if (attempts % _endpoints.Count != 0)
        {
            return backoff;
        }
        try
        {
            // Real time on purpose: this paces retries against a real server.
            await Task.Delay(backoff, TimeProvider.System, deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (deadline.IsCancellationRequested)
        {
            throw new StoreUnavailableException(operation, key, GaveUp(failures, outcomeUnknown: false, RequestTimeout), ex);
        }
        return TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, s_maxBackoff.Ticks));
    }

    private string GaveUp(List<string> failures, bool outcomeUnknown, TimeSpan waited)
    {
        string seconds = waited.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture);
        // The newest failures say the most; repeats of one say nothing new.
        var last = failures.AsEnumerable().Reverse().Distinct().Take(Math.Max(_endpoints.Count, 3)).Reverse();
        string outcome = outcomeUnknown ? "; the outcome is unknown: read the key before retrying" : "";
        return $"no etcd endpoint of {Describe()} answered within {seconds} s ({string.Join("; ", last)}){outcome}";
    }

    private static StoreUnavailableException Unavailable(string operation, string? key, string detail, Exception? inner = null) => new(operation, key, detail, inner);

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var endpoint = _endpoints.FirstOrDefault(e => e.UnixPath is not null);
        Socket socket;
        if (endpoint is not null)
        {
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(endpoint.UnixPath!), ct).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            return new NetworkStream(socket, ownsSocket: true);
        }
        if (_connectSocket is not null)
        {
            socket = await _connectSocket(context.DnsEndPoint, ct).ConfigureAwait(false)
                ?? throw new InvalidOperationException("ClusterStoreOptions.ConnectSocket returned null; it must return a connected socket");
            if (!socket.Connected)
            {
                socket.Dispose();
                throw new InvalidOperationException($"ClusterStoreOptions.ConnectSocket returned a socket that is not connected to {context.DnsEndPoint}");
            }
        }
        else
        {
            // An IP literal gets a socket of its own family (works where IPv6 is disabled); a
            // name gets a dual-mode socket and whatever the resolver returns.
            socket = IPAddress.TryParse(context.DnsEndPoint.Host, out var address)
                ? new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
                : new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, ct).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        ConfigureTcp(socket);
        return new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>
    /// No Nagle delay for small requests; keep-alive probes so a watch on a member that vanished
    /// without a reset (power loss, partition) fails within about 20 s and reconnects elsewhere.
    /// </summary>
    private static void ConfigureTcp(Socket socket)
    {
        if (socket.ProtocolType != ProtocolType.Tcp)
        {
            return;
        }
        try
        {
            socket.NoDelay = true;
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 10);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 3);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
        }
        catch (SocketException)
        {
            // Tuning only: a platform without these options still works, it just notices dead peers later.
        }
    }
}
