using System.Diagnostics;
using System.Globalization;
using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.Etcd;

/// <summary>What only a networked client has: endpoints that are down, connections that break, a unix socket, contents another client wrote.</summary>
public sealed class EtcdClientTests
{
    [Fact]
    public async Task When_no_endpoint_answers_calls_and_watches_fail_unavailable_naming_every_endpoint()
    {
        // Ports that were free a moment ago: connecting is refused.
        int[] ports = EtcdCluster.FreePorts(2);
        string[] endpoints = ports.Select(p => $"127.0.0.1:{p.ToString(CultureInfo.InvariantCulture)}").ToArray();
        var options = new ClusterStoreOptions { ConnectTimeout = TimeSpan.FromSeconds(0.3), RequestTimeout = TimeSpan.FromSeconds(2) };
        await using var store = ClusterStore.Open("etcd://" + string.Join(",", endpoints), options);

        var clock = Stopwatch.StartNew();
        var get = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetAsync("/k"));
        var create = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.CreateAsync("/k", Bytes.Utf8("v")));
        // Nothing listening anywhere: calls give up after about a connect timeout, not the request timeout.
        Assert.True(clock.Elapsed < options.RequestTimeout, $"two calls took {clock.Elapsed}");
        // A watch rides out outages up to the request timeout before it gives up.
        var watch = await Assert.ThrowsAsync<StoreUnavailableException>(() => new WatchReader(store, "/k", 0).NextAsync());

        foreach (var ex in new[] { get, create, watch })
        {
            Assert.All(endpoints, e => Assert.Contains(e, ex.Message, StringComparison.Ordinal));
            Assert.Contains("connection refused", ex.Message, StringComparison.Ordinal);
        }
        Assert.Equal(("get", "create", "watch"), (get.Operation, create.Operation, watch.Operation));
        // The connection was never made, so the create cannot have happened.
        Assert.DoesNotContain("outcome is unknown", create.Message, StringComparison.Ordinal);
    }

    [EtcdFact]
    public async Task A_dead_endpoint_listed_first_is_passed_over()
    {
        await using var cluster = await EtcdCluster.StartAsync(1, EtcdTiming.Single);
        int dead = EtcdCluster.FreePorts(1)[0];
        await using var store = ClusterStore.Open($"etcd://127.0.0.1:{dead.ToString(CultureInfo.InvariantCulture)},{cluster.Members[0].ClientEndpoint}");
        await using var watch = new WatchReader(store, "/f/", 0);

        long r = await store.CreateAsync("/f/a", Bytes.Utf8("a"));

        Assert.Equal("a", (await store.GetAsync("/f/a"))!.Text());
        Assert.Equal(r, (await watch.NextAsync()).Revision);
    }

    [EtcdFact]
    public async Task A_unix_socket_url_reaches_the_same_store_as_tcp()
    {
        await using var cluster = await EtcdCluster.StartAsync(1, EtcdTiming.Single, unixSocket: true);
        await using var overUnix = ClusterStore.Open("etcd+unix://" + cluster.Members[0].UnixSocketPath);
        await using var overTcp = ClusterStore.Open(cluster.Url);
        await using var watch = new WatchReader(overUnix, "/u/", 0);

        long r = await overUnix.CreateAsync("/u/a", Bytes.Utf8("via unix"));

        Assert.Equal("via unix", (await overTcp.GetAsync("/u/a"))!.Text());
        Assert.Equal(("/u/a", r), ((await watch.NextAsync()).Item.Key, r));
        Assert.Equal(r, await overUnix.CurrentRevisionAsync());
    }

    [EtcdFact]
    public async Task A_watch_whose_connection_is_cut_again_and_again_resumes_without_gaps_or_repeats()
    {
        const int Rounds = 10;
        const int PerRound = 10;
        await using var cluster = await EtcdCluster.StartAsync(1, EtcdTiming.Single);
        var connector = new RecordingConnector();
        await using var watching = ClusterStore.Open(cluster.Url, new ClusterStoreOptions { ConnectSocket = connector.ConnectAsync });
        await using var writing = ClusterStore.Open(cluster.Url);
        long start = await writing.CurrentRevisionAsync();
        await using var watch = new WatchReader(watching, "/cut/", start);

        // Each round's writes land while the watch's connection is cut (the previous round cut
        // it), so every round the watch must reconnect and pick them up from history (which etcd
        // serves a reconnected watcher every 100 ms: hence few rounds).
        var seen = new List<WatchEvent>();
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < PerRound; i++)
            {
                int n = (round * PerRound) + i;
                await writing.CreateAsync($"/cut/{n:D4}", Bytes.Utf8(n.ToString(CultureInfo.InvariantCulture)));
            }
            seen.AddRange(await watch.TakeAsync(PerRound));
            connector.CutAll();
        }

        Assert.Equal(Enumerable.Range(1, Rounds * PerRound).Select(i => start + i), seen.Select(e => e.Revision));
        Assert.Equal(Enumerable.Range(0, Rounds * PerRound).Select(i => $"/cut/{i:D4}"), seen.Select(e => e.Item.Key));
        Assert.True(connector.Connections >= Rounds, $"only {connector.Connections} connections for {Rounds} cuts");
        Assert.True(await watch.IsQuietAsync(TimeSpan.FromMilliseconds(100)));
    }

    [EtcdFact]
    public async Task A_watch_that_reconnects_after_its_history_was_compacted_is_told()
    {
        await using var cluster = await EtcdCluster.StartAsync(1, EtcdTiming.Single);
        var connector = new RecordingConnector();
        await using var watching = ClusterStore.Open(cluster.Url, new ClusterStoreOptions { ConnectSocket = connector.ConnectAsync });
        await using var writing = (EtcdClusterStore)ClusterStore.Open(cluster.Url);
        await using var watch = new WatchReader(watching, "/gone/", 0);
        long seen = 0;
        for (int i = 0; i < 3; i++)
        {
            await writing.CreateAsync($"/gone/{i}", Bytes.Utf8("v"));
            seen = (await watch.NextAsync()).Revision;
        }

        // Disconnected while the history it needs is written and compacted away.
        connector.Hold();
        connector.CutAll();
        await writing.CreateAsync("/elsewhere/a", Bytes.Utf8("v"));
        await writing.CreateAsync("/elsewhere/b", Bytes.Utf8("v"));
        long now = await writing.CurrentRevisionAsync();
        await writing.CompactAsync(now);
        connector.Release();

        var ex = await Assert.ThrowsAsync<StoreCompactedException>(() => watch.NextAsync());
        Assert.Equal((seen, now), (ex.RequestedRevision, ex.CompactRevision));
    }

    [EtcdFact]
    public async Task A_key_another_client_wrote_that_is_not_utf8_is_reported_not_mangled()
    {
        await using var cluster = await EtcdCluster.StartAsync(1, EtcdTiming.Single);
        await cluster.PutRawAsync([.. "/x/"u8, 0xFF, 0xFE], Bytes.Utf8("v"));
        await using var store = ClusterStore.Open(cluster.Url);

        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.ListAsync("/x/"));

        Assert.Contains("not UTF-8", ex.Message, StringComparison.Ordinal);
        Assert.Contains(Convert.ToBase64String([.. "/x/"u8, 0xFF, 0xFE]), ex.Message, StringComparison.Ordinal);
        Assert.Equal(("list", "/x/"), (ex.Operation, ex.Key));
        Assert.Empty((await store.ListAsync("/y/")).Items);
    }

    [EtcdFact]
    public async Task An_etcd_with_its_default_request_limit_refuses_a_maximum_size_value_saying_why()
    {
        await using var cluster = await EtcdCluster.StartAsync(1, EtcdTiming.Single, maxRequestBytes: null);
        await using var store = ClusterStore.Open(cluster.Url);

        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.CreateAsync("/big", new byte[KeyRules.MaxValueBytes]));

        Assert.Contains("request is too large", ex.Message, StringComparison.Ordinal);
        Assert.Null(await store.GetAsync("/big"));
    }

    [EtcdFact]
    public async Task Lease_ttls_are_rounded_up_to_whole_seconds()
    {
        await using var cluster = await EtcdCluster.StartAsync(1, EtcdTiming.Single);
        await using var store = ClusterStore.Open(cluster.Url);
        long lease = await store.GrantLeaseAsync(TimeSpan.FromMilliseconds(1500));
        await store.CreateAsync("/l/a", Bytes.Utf8("a"), lease);
        var clock = Stopwatch.StartNew();

        // A 2 s lease: still there well after 1.5 s.
        await Task.Delay(TimeSpan.FromMilliseconds(1700));
        Assert.NotNull(await store.GetAsync("/l/a"));
        while (await store.GetAsync("/l/a") is not null)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the lease never expired");
            await Task.Delay(20);
        }
    }
}
