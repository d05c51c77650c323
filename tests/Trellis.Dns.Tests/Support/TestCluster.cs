using System.Text;
using System.Text.Json.Nodes;
using Trellis.Core.Dns;
using Trellis.Core.Objects;
using Trellis.DnsServer;
using Trellis.Store;

namespace Trellis.Dns.Tests.Support;

/// <summary>Kubernetes objects as JSON, written into a store the way `trellis apply` stores them.</summary>
internal static class Objects
{
    public static JsonObject Namespace(string name) => Parse($$"""
        {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"{{name}}","labels":{"kubernetes.io/metadata.name":"{{name}}"} } }
        """);

    public static JsonObject Service(string ns, string name, string clusterIP, string ports = "[]", string? extra = null)
    {
        string ips = clusterIP == "None" ? "" : $",\"clusterIPs\":[{string.Join(',', clusterIP.Split(',').Select(i => $"\"{i}\""))}]";
        return Parse($$"""
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"{{name}}","namespace":"{{ns}}"},
             "spec":{"type":"ClusterIP","clusterIP":"{{clusterIP.Split(',')[0]}}"{{ips}},"ports":{{ports}}{{(extra is null ? "" : "," + extra)}} } }
            """);
    }

    public static JsonObject ExternalName(string ns, string name, string target) => Parse($$"""
        {"apiVersion":"v1","kind":"Service","metadata":{"name":"{{name}}","namespace":"{{ns}}"},"spec":{"type":"ExternalName","externalName":"{{target}}"} }
        """);

    /// <summary>endpoints: (address, hostname or null, ready or null).</summary>
    public static JsonObject Slice(string ns, string service, string name, IEnumerable<(string Address, string? Hostname, bool? Ready)> endpoints, string ports = "[]", string addressType = "IPv4")
    {
        var eps = new JsonArray();
        foreach (var (address, hostname, ready) in endpoints)
        {
            var ep = new JsonObject { ["addresses"] = new JsonArray(address) };
            if (hostname is not null)
            {
                ep["hostname"] = hostname;
            }
            if (ready is not null)
            {
                ep["conditions"] = new JsonObject { ["ready"] = ready.Value };
            }
            eps.Add(ep);
        }
        var obj = Parse($$"""
            {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"{{name}}","namespace":"{{ns}}","labels":{"kubernetes.io/service-name":"{{service}}"} },
             "addressType":"{{addressType}}","ports":{{ports}} }
            """);
        obj["endpoints"] = eps;
        return obj;
    }

    public static JsonObject Pod(string ns, string name, string ip) => Parse($$"""
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"{{name}}","namespace":"{{ns}}"},"spec":{"containers":[{"name":"c"}]},
         "status":{"phase":"Running","podIP":"{{ip}}","podIPs":[{"ip":"{{ip}}"}] } }
        """);

    private static JsonObject Parse(string json) => (JsonObject)JsonNode.Parse(json)!;

    public static async Task<long> ApplyAsync(IClusterStore store, JsonObject obj)
    {
        string key = Kinds.StoreKey(obj);
        var bytes = Encoding.UTF8.GetBytes(obj.ToJsonString());
        var existing = await store.GetAsync(key);
        return existing is null ? await store.CreateAsync(key, bytes) : await store.UpdateAsync(key, bytes, existing.ModRevision);
    }

    /// <summary>The cluster the table tests query (see ZoneTableTests for what each object is there to exercise).</summary>
    public static IReadOnlyList<JsonObject> Standard()
    {
        string webPorts = """[{"name":"http","port":80,"protocol":"TCP"},{"name":"dns","port":53,"protocol":"UDP"},{"port":8080,"protocol":"TCP"}]""";
        return
        [
            Namespace("default"),
            Namespace("kube-system"),
            Namespace("empty"),
            Service("kube-system", "kube-dns", "10.96.0.10", """[{"name":"dns","port":53,"protocol":"UDP"},{"name":"dns-tcp","port":53,"protocol":"TCP"}]"""),
            Service("default", "web", "10.96.0.20", webPorts),
            Slice("default", "web", "web-abc", [("10.244.1.9", null, true)], """[{"name":"http","port":8080,"protocol":"TCP"}]"""),
            Service("default", "noeps", "10.96.0.21", """[{"name":"http","port":80}]"""),
            Service("default", "dual", "10.96.0.22,fd00::22"),
            Service("default", "headless", "None", """[{"name":"http","port":80}]"""),
            Slice("default", "headless", "headless-1", [("10.244.1.5", "web-0", true), ("10.244.2.6", null, null), ("10.244.3.7", null, false)],
                """[{"name":"http","port":8080,"protocol":"TCP"}]"""),
            Service("default", "headless-none", "None"),
            Slice("default", "headless-none", "headless-none-1", [("10.244.3.8", null, false)]),
            ExternalName("default", "ext", "example.com"),
            ExternalName("default", "ext-in", "web.default.svc.cluster.local"),
            Pod("default", "pod-a", "10.244.1.5"),
        ];
    }
}

/// <summary>An in-memory store with the standard objects and a trellis-dns serving it on loopback.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private TestServer(InMemoryClusterStore store, DnsServer.DnsServer server)
    {
        Store = store;
        Server = server;
    }

    public InMemoryClusterStore Store { get; }

    public DnsServer.DnsServer Server { get; }

    public DnsClient Client => new(Server.UdpEndPoint);

    public static async Task<TestServer> StartAsync(IEnumerable<JsonObject>? objects = null, Func<DnsServerOptions, DnsServerOptions>? configure = null)
    {
        var store = new InMemoryClusterStore();
        foreach (var obj in objects ?? Objects.Standard())
        {
            await Objects.ApplyAsync(store, obj);
        }
        var options = new DnsServerOptions
        {
            StoreUrl = "memory",
            Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
            Zone = new DnsZoneOptions(),
        };
        options = configure?.Invoke(options) ?? options;
        var log = new StringWriter();
        var server = DnsServer.DnsServer.Start(options, store, TextWriter.Synchronized(log));
        try
        {
            await server.Watcher.Ready.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            await server.DisposeAsync();
            throw new TimeoutException($"trellis-dns did not load a snapshot in 10 s; its log:\n{log}");
        }
        return new TestServer(store, server);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }
}
