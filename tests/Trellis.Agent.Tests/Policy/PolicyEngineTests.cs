using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Trellis.Agent.Metrics;
using Trellis.Agent.Policy;
using Trellis.Core.Nft;
using Trellis.Core.Objects;
using Trellis.Nftables;
using Trellis.Store;

namespace Trellis.Agent.Tests.Policy;

/// <summary>
/// The engine end to end without root: an in-memory store, and an nft client backed by the in-memory nf_tables
/// model, so every state the "kernel" passes through can be traced. Changes in the store (policies, labels, new
/// pods) reach the table as partial syncs, and a new pod selected by a deny policy is never reachable.
/// </summary>
public sealed class PolicyEngineTests
{
    private static readonly IPAddress s_client = IPAddress.Parse("10.244.1.5");
    private static readonly IPAddress s_server = IPAddress.Parse("10.244.1.6");
    private static readonly IPAddress s_newPod = IPAddress.Parse("10.244.1.7");

    /// <summary>INftClient over <see cref="NftModel"/>; keeps a copy of the model after every transaction.</summary>
    private sealed class ModelNft : INftClient
    {
        private readonly Lock _lock = new();
        private NftModel _model = new();

        public List<NftModel> States { get; } = [];

        public List<string> Transactions { get; } = [];

        public void Apply(string transaction)
        {
            lock (_lock)
            {
                var next = new NftModel();
                next.Apply(_model.Dump());
                next.Apply(transaction);
                _model = next;
                States.Add(next);
                Transactions.Add(transaction);
            }
        }

        public string? ListTable(string family, string name, bool stateless = false) => null;

        public bool Allows(IPAddress src, IPAddress dst, int port) => Allows(Last, src, dst, port);

        public NftModel Last
        {
            get
            {
                lock (_lock)
                {
                    return _model;
                }
            }
        }

        public static bool Allows(NftModel model, IPAddress src, IPAddress dst, int port) =>
            new NftTracer(model, [IPAddress.Parse("10.244.1.1")]).Trace(new TracePacket(src, dst, "tcp", 40000, port, TraceOrigin.Forwarded))
                .Outcomes.All(o => o.Verdict == TraceVerdict.Accept);
    }

    private static byte[] Json(JsonObject o) => Encoding.UTF8.GetBytes(o.ToJsonString());

    private static JsonObject Pod(string name, string app, IPAddress? ip) => new()
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Pod",
        ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = "default", ["labels"] = new JsonObject { ["app"] = app } },
        ["spec"] = new JsonObject { ["nodeName"] = "node-1", ["containers"] = new JsonArray(new JsonObject { ["name"] = "c" }) },
        ["status"] = ip is null ? new JsonObject { ["phase"] = "Pending" } : new JsonObject { ["phase"] = "Running", ["podIP"] = ip.ToString() },
    };

    private static JsonObject AllowFrom(string name, string target, string from) => new()
    {
        ["apiVersion"] = "networking.k8s.io/v1",
        ["kind"] = "NetworkPolicy",
        ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = "default" },
        ["spec"] = new JsonObject
        {
            ["podSelector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["app"] = target } },
            ["ingress"] = new JsonArray(new JsonObject
            {
                ["from"] = new JsonArray(new JsonObject { ["podSelector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["app"] = from } } }),
            }),
        },
    };

    private static async Task SeedAsync(InMemoryClusterStore store)
    {
        await store.CreateAsync(Kinds.Node.StoreKey(null, "node-1"), Json(new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Node",
            ["metadata"] = new JsonObject { ["name"] = "node-1" },
            ["spec"] = new JsonObject { ["podCIDR"] = "10.244.1.0/24" },
        }));
        await store.CreateAsync(Kinds.Namespace.StoreKey(null, "default"), Json(new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Namespace",
            ["metadata"] = new JsonObject { ["name"] = "default", ["labels"] = new JsonObject { [NamespaceView.NameLabel] = "default" } },
        }));
        await store.CreateAsync(Kinds.Pod.StoreKey("default", "client"), Json(Pod("client", "client", s_client)));
        await store.CreateAsync(Kinds.Pod.StoreKey("default", "server"), Json(Pod("server", "server", s_server)));
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        for (int i = 0; i < 200; i++)
        {
            if (condition())
            {
                return;
            }
            await Task.Delay(25);
        }
        Assert.Fail("timed out waiting until " + what);
    }

    private static async Task PutAsync(InMemoryClusterStore store, string key, JsonObject value)
    {
        var item = await store.GetAsync(key);
        if (item is null)
        {
            await store.CreateAsync(key, Json(value));
        }
        else
        {
            await store.UpdateAsync(key, Json(value), item.ModRevision);
        }
    }

    [Fact]
    public async Task Store_changes_reach_the_table_and_a_new_selected_pod_is_never_reachable()
    {
        await using var store = new InMemoryClusterStore();
        await SeedAsync(store);
        var nft = new ModelNft();
        var engine = new PolicyEngine("node-1", new PolicyOptions { Resync = TimeSpan.FromSeconds(30) }, store, TextWriter.Null, nft);
        using var cts = new CancellationTokenSource();
        var run = Task.Run(() => engine.RunAsync(cts.Token));
        try
        {
            await Until(() => nft.Transactions.Count > 0 && nft.Allows(s_client, s_server, 80), "the first sync lets client reach server");

            // A policy isolating server, allowing only app=web: client is denied.
            await PutAsync(store, Kinds.NetworkPolicy.StoreKey("default", "server"), AllowFrom("server", "server", "web"));
            await Until(() => !nft.Allows(s_client, s_server, 80), "the policy denies client");

            // Relabel client as web: allowed again, without any policy change.
            await PutAsync(store, Kinds.Pod.StoreKey("default", "client"), Pod("client", "web", s_client));
            await Until(() => nft.Allows(s_client, s_server, 80), "the label change allows client");

            // A new pod selected by a deny-all policy: created without an IP, then given one (as the kubelet does).
            // In every state the table passes through, nothing reaches it.
            var deny = AllowFrom("deny-new", "new", "nobody");
            await PutAsync(store, Kinds.NetworkPolicy.StoreKey("default", "deny-new"), deny);
            int from = nft.States.Count;
            Assert.False(nft.Allows(s_client, s_newPod, 80), "an unknown pod address is dropped before the pod exists");
            await PutAsync(store, Kinds.Pod.StoreKey("default", "new"), Pod("new", "new", null));
            await PutAsync(store, Kinds.Pod.StoreKey("default", "new"), Pod("new", "new", s_newPod));
            await Until(() => nft.Last.Dump().Contains("10.244.1.7", StringComparison.Ordinal) && nft.Last.Dump().Contains("drop-in-", StringComparison.Ordinal), "the new pod is programmed");
            foreach (var state in nft.States.Skip(from - 1))
            {
                Assert.False(ModelNft.Allows(state, s_client, s_newPod, 80));
            }

            // Deleting the policy opens server to everyone; the syncs after the first are partial.
            var item = await store.GetAsync(Kinds.NetworkPolicy.StoreKey("default", "server"));
            await store.DeleteAsync(item!.Key, item.ModRevision);
            await PutAsync(store, Kinds.Pod.StoreKey("default", "client"), Pod("client", "client", s_client));
            await Until(() => nft.Allows(s_client, s_server, 80), "the delete allows client");
            Assert.StartsWith("add table inet trellis-policy", nft.Transactions[0], StringComparison.Ordinal);
            Assert.All(nft.Transactions.Skip(1), t => Assert.DoesNotContain("flush chain inet trellis-policy forward", t, StringComparison.Ordinal));

            var metrics = new StringBuilder();
            engine.WriteMetrics(metrics);
            Assert.Contains("trellis_policy_syncs_total{node=\"node-1\",kind=\"full\"} 1", metrics.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            await cts.CancelAsync();
            try
            {
                await run;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    [Fact]
    public async Task Metrics_server_serves_prometheus_text_and_404_elsewhere()
    {
        await using var server = new MetricsServer(new IPEndPoint(IPAddress.Loopback, 0),
            [w => w.Append("# TYPE x counter\nx{a=\"b\"} 3\n")], TextWriter.Null);
        string ok = await GetAsync(server.Endpoint.Port, "/metrics");
        Assert.StartsWith("HTTP/1.1 200 OK", ok, StringComparison.Ordinal);
        Assert.Contains("Content-Type: text/plain; version=0.0.4", ok, StringComparison.Ordinal);
        Assert.EndsWith("x{a=\"b\"} 3\n", ok, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 404", await GetAsync(server.Endpoint.Port, "/other"), StringComparison.Ordinal);
        Assert.True(MetricsServer.TryParseEndpoint("0.0.0.0:9402", out _));
        Assert.False(MetricsServer.TryParseEndpoint("nonsense", out _));
    }

    private static async Task<string> GetAsync(int port, string path)
    {
        using var c = new TcpClient();
        await c.ConnectAsync(IPAddress.Loopback, port);
        var s = c.GetStream();
        await s.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        using var r = new StreamReader(s, Encoding.UTF8);
        return await r.ReadToEndAsync();
    }
}
