using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Trellis.Dns;

namespace Trellis.DnsServer;

/// <summary>An upstream answer and how long it has sat in the cache (TTLs are aged by that much when sent).</summary>
public sealed record ForwardedReply(DnsMessage Message, uint AgeSeconds);

/// <summary>
/// Resolves names outside the cluster through the configured upstreams, in order: UDP first, TCP when the
/// reply is truncated. Replies (positive and negative) are cached for their TTL (negative: the SOA's, RFC 2308),
/// capped at an hour; SERVFAIL and failures are not cached. Each exchange uses a fresh socket and a random
/// id, and a reply must echo id and question, which defeats off-path spoofing of the cache.
/// </summary>
public sealed class Forwarder
{
    private const uint MaxCacheTtl = 3600;
    private const uint EmptyReplyTtl = 5;

    private readonly IReadOnlyList<IPEndPoint> _upstreams;
    private readonly TimeSpan _timeout;
    private readonly DnsMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly int _maxEntries;
    private readonly ConcurrentDictionary<(string Name, ushort Type, ushort Class), Entry> _cache = new();

    public Forwarder(IReadOnlyList<IPEndPoint> upstreams, TimeSpan timeout, int maxEntries, DnsMetrics metrics, TimeProvider? time = null)
    {
        _upstreams = upstreams;
        _timeout = timeout;
        _metrics = metrics;
        _maxEntries = maxEntries;
        _time = time ?? TimeProvider.System;
    }

    public int CacheCount => _cache.Count;

    /// <summary>The upstream's reply for the question, from the cache when fresh; null when every upstream failed.</summary>
    public async ValueTask<ForwardedReply?> ResolveAsync(string name, ushort type, ushort cls, CancellationToken ct)
    {
        var key = (name, type, cls);
        var now = _time.GetUtcNow();
        if (_cache.TryGetValue(key, out var hit))
        {
            if (hit.Expires > now)
            {
                _metrics.CacheHit();
                return new ForwardedReply(hit.Message, (uint)(now - hit.Stored).TotalSeconds);
            }
            _cache.TryRemove(key, out _);
        }
        _metrics.CacheMiss();
        foreach (var upstream in _upstreams)
        {
            _metrics.Forward();
            try
            {
                var reply = await ExchangeAsync(upstream, name, type, cls, tcp: false, ct).ConfigureAwait(false);
                if ((reply.Flags & DnsFlags.TC) != 0)
                {
                    reply = await ExchangeAsync(upstream, name, type, cls, tcp: true, ct).ConfigureAwait(false);
                }
                if (reply.ResponseCode == DnsRcode.ServFail || reply.ResponseCode == DnsRcode.Refused)
                {
                    _metrics.ForwardError();
                    continue; // the next upstream may do better
                }
                Store(key, reply, now);
                return new ForwardedReply(reply, 0);
            }
            catch (Exception e) when (e is SocketException or DnsFormatException or TimeoutException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                _metrics.ForwardError();
            }
        }
        return null;
    }

    private void Store((string, ushort, ushort) key, DnsMessage reply, DateTimeOffset now)
    {
        uint ttl = CacheTtl(reply);
        if (ttl == 0)
        {
            return;
        }
        if (_cache.Count >= _maxEntries)
        {
            foreach (var (k, e) in _cache)
            {
                if (e.Expires <= now)
                {
                    _cache.TryRemove(k, out _);
                }
            }
            if (_cache.Count >= _maxEntries)
            {
                return; // full of live entries: serve this one uncached rather than evict blindly
            }
        }
        _cache[key] = new Entry(reply, now, now.AddSeconds(ttl));
    }

    private static uint CacheTtl(DnsMessage reply)
    {
        if (reply.ResponseCode is not (DnsRcode.NoError or DnsRcode.NXDomain))
        {
            return 0;
        }
        uint ttl = MaxCacheTtl;
        bool any = false;
        foreach (var r in reply.Answers)
        {
            ttl = Math.Min(ttl, r.Ttl);
            any = true;
        }
        if (!any)
        {
            // Negative answer: the SOA's TTL capped by its MINIMUM (RFC 2308 §5); none at all: a few seconds.
            var soa = reply.Authority.FirstOrDefault(r => r.Data is SoaData);
            ttl = soa is { Data: SoaData s } ? Math.Min(Math.Min(soa.Ttl, s.Minimum), MaxCacheTtl) : EmptyReplyTtl;
        }
        return ttl;
    }

    private async Task<DnsMessage> ExchangeAsync(IPEndPoint upstream, string name, ushort type, ushort cls, bool tcp, CancellationToken ct)
    {
        ushort id = (ushort)RandomNumberGenerator.GetInt32(0, 65536);
        var query = new byte[600];
        int length = BuildQuery(query, id, name, type, cls);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_timeout);
        using var socket = new Socket(upstream.AddressFamily, tcp ? SocketType.Stream : SocketType.Dgram, tcp ? ProtocolType.Tcp : ProtocolType.Udp);
        await socket.ConnectAsync(upstream, timeout.Token).ConfigureAwait(false);
        byte[] reply;
        if (tcp)
        {
            var framed = new byte[length + 2];
            framed[0] = (byte)(length >> 8);
            framed[1] = (byte)length;
            query.AsSpan(0, length).CopyTo(framed.AsSpan(2));
            await socket.SendAsync(framed, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            var len = new byte[2];
            await ReceiveExactlyAsync(socket, len, timeout.Token).ConfigureAwait(false);
            reply = new byte[(len[0] << 8) | len[1]];
            await ReceiveExactlyAsync(socket, reply, timeout.Token).ConfigureAwait(false);
            return Check(reply, id, name, type, cls);
        }
        await socket.SendAsync(query.AsMemory(0, length), SocketFlags.None, timeout.Token).ConfigureAwait(false);
        var buffer = new byte[65535];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            try
            {
                return Check(buffer.AsSpan(0, n).ToArray(), id, name, type, cls);
            }
            catch (DnsFormatException)
            {
                // Not our reply (wrong id or question) or garbage: keep waiting for the real one until the timeout.
            }
        }
    }

    private static async Task ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer[read..], SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new SocketException((int)SocketError.ConnectionReset);
            }
            read += n;
        }
    }

    private static DnsMessage Check(byte[] reply, ushort id, string name, ushort type, ushort cls)
    {
        var msg = DnsMessage.Parse(reply);
        if (msg.Id != id || !msg.IsResponse || msg.Questions.Length != 1
            || !string.Equals(msg.Questions[0].Name, name, StringComparison.OrdinalIgnoreCase) || msg.Questions[0].Type != type || msg.Questions[0].Class != cls)
        {
            throw new DnsFormatException($"upstream reply does not match the query for {name}");
        }
        return msg;
    }

    internal static int BuildQuery(Span<byte> buffer, ushort id, string name, ushort type, ushort cls)
    {
        var w = new DnsWriter(buffer, stackalloc int[16]);
        w.WriteHeader(id, DnsFlags.RD, DnsOpcode.Query, 0);
        w.WriteQuestion(name, type, cls);
        w.WriteOpt(QueryHandler.AdvertisedUdpSize, 0, 0, false);
        w.SetCounts(1, 0, 0, 1);
        return w.Position;
    }

    private sealed record Entry(DnsMessage Message, DateTimeOffset Stored, DateTimeOffset Expires);
}
