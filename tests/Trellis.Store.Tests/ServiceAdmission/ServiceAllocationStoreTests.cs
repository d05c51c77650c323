using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Trellis.Cli.Cluster;
using Trellis.Core.Cluster;
using Trellis.Core.Objects;
using Trellis.Store.Tests.Contract;
using Trellis.Store.Tests.Etcd;
using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.ServiceAdmission;

/// <summary>
/// Service admission against real backends: every allocation is one create-if-absent key, so parallel applies
/// from separate clients (separate connections, as separate processes have) never share a ClusterIP or NodePort;
/// deletes, type changes and failed writes leave no key behind; the repair removes leaks and restores missing keys.
/// </summary>
public abstract class ServiceAllocationStoreTests : IAsyncLifetime
{
    private readonly List<IClusterStore> _peers = [];

    protected IClusterStore Store { get; private set; } = null!;

    protected abstract IClusterStore CreateStore();

    /// <summary>Another client of the same data (for SQLite another connection to the file).</summary>
    protected abstract IClusterStore OpenPeerClient();

    public virtual async Task InitializeAsync()
    {
        Store = CreateStore();
        await ApplyOkAsync(Store, "apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n");
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var p in _peers)
        {
            await p.DisposeAsync();
        }
        await Store.DisposeAsync();
    }

    private IClusterStore Peer()
    {
        var p = OpenPeerClient();
        _peers.Add(p);
        return p;
    }

    private static Admission AdmissionFor(IClusterStore store) => new(new ObjectClient(store), TimeProvider.System);

    private static async Task<IReadOnlyList<ApplyOutcome>> ApplyOkAsync(IClusterStore store, string yaml)
    {
        var (done, errors) = await AdmissionFor(store).ApplyAsync(Manifests.ParseDocuments(yaml, "t.yaml"));
        Assert.Empty(errors);
        return done;
    }

    private static async Task<IReadOnlyList<AdmissionError>> ApplyFailsAsync(IClusterStore store, string yaml)
    {
        var (done, errors) = await AdmissionFor(store).ApplyAsync(Manifests.ParseDocuments(yaml, "t.yaml"));
        Assert.Empty(done);
        Assert.NotEmpty(errors);
        return errors;
    }

    private async Task<Dictionary<string, string>> AllocationKeysAsync()
    {
        var list = await Store.ListAsync(AllocationKeys.Prefix);
        return list.Items.ToDictionary(i => i.Key, i => AllocationKeys.DecodeOwner(i.Value)!.Service);
    }

    private async Task<ServiceView?> ServiceAsync(string name, string ns = "default") =>
        await new ObjectClient(Store).GetAsync(Kinds.Service, ns, name) is { } s ? new ServiceView(s.Json) : null;

    private static string NodePortSvc(string name, string extra = "") =>
        $"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{type: NodePort, selector: {{app: {name}}}, ports: [{{port: 80}}]{extra}}}\n";

    [ContractFact]
    public async Task Twenty_parallel_applies_from_separate_clients_never_share_an_IP_or_port()
    {
        // A small range makes collisions certain: 30 addresses (14 outside the reserved band) and 40 ports for 20 Services.
        await ClusterConfigStore.SaveAsync(Store, ClusterNetworkConfig.Default with
        {
            ServiceCidrs = [IPNetwork.Parse("10.96.0.0/27")],
            NodePortMin = 30000,
            NodePortMax = 30039,
        });
        var clients = Enumerable.Range(0, 20).Select(_ => Peer()).ToList();
        var results = await Task.WhenAll(clients.Select((c, i) => Task.Run(() => AdmissionFor(c).ApplyAsync(Manifests.ParseDocuments(NodePortSvc($"s{i}"), "t.yaml")))));
        Assert.All(results, r => Assert.Empty(r.Errors));

        var services = new List<ServiceView>();
        for (int i = 0; i < 20; i++)
        {
            services.Add((await ServiceAsync($"s{i}"))!);
        }
        Assert.Equal(20, services.Select(s => s.ClusterIP).Distinct().Count());
        Assert.Equal(20, services.Select(s => s.Ports[0].NodePort).Distinct().Count());
        Assert.All(services, s => Assert.InRange(s.Ports[0].NodePort!.Value, 30000, 30039));
        var keys = await AllocationKeysAsync();
        Assert.Equal(40, keys.Count);
        foreach (var s in services)
        {
            Assert.Equal($"default/{s.Name}", keys[AllocationKeys.ClusterIPPrefix + s.ClusterIP]);
            Assert.Equal($"default/{s.Name}", keys[AllocationKeys.NodePortPrefix + s.Ports[0].NodePort]);
        }
    }

    [ContractFact]
    public async Task A_requested_clusterIP_or_nodePort_that_is_taken_is_refused_naming_the_field_and_nothing_is_written()
    {
        await ApplyOkAsync(Store, NodePortSvc("a", ", clusterIP: 10.96.0.10").Replace("{port: 80}", "{port: 80, nodePort: 30080}", StringComparison.Ordinal));
        var before = await AllocationKeysAsync();

        var e1 = Assert.Single(await ApplyFailsAsync(Store, NodePortSvc("b", ", clusterIP: 10.96.0.10")));
        Assert.Equal("spec.clusterIP", e1.Field);
        Assert.Contains("provided IP is already allocated (by service default/a)", e1.Message, StringComparison.Ordinal);

        var e2 = Assert.Single(await ApplyFailsAsync(Store, NodePortSvc("c").Replace("{port: 80}", "{port: 80, nodePort: 30080}", StringComparison.Ordinal)));
        Assert.Equal("spec.ports[0].nodePort", e2.Field);
        Assert.Contains("provided port is already allocated (by service default/a)", e2.Message, StringComparison.Ordinal);

        var e3 = Assert.Single(await ApplyFailsAsync(Store, NodePortSvc("d", ", clusterIP: 10.100.0.1")));
        Assert.Contains("not in the valid range", e3.Message, StringComparison.Ordinal);

        Assert.Null(await ServiceAsync("b"));
        Assert.Null(await ServiceAsync("c"));
        Assert.Equal(before, await AllocationKeysAsync());
    }

    [ContractFact]
    public async Task A_clash_later_in_one_apply_releases_what_earlier_documents_allocated()
    {
        await ApplyOkAsync(Store, NodePortSvc("a", ", clusterIP: 10.96.0.10"));
        var before = await AllocationKeysAsync();
        await ApplyFailsAsync(Store, NodePortSvc("fresh") + "---\n" + NodePortSvc("b", ", clusterIP: 10.96.0.10"));
        Assert.Null(await ServiceAsync("fresh"));
        Assert.Equal(before, await AllocationKeysAsync());
    }

    [ContractFact]
    public async Task Reapply_keeps_allocations_and_a_changed_clusterIP_is_immutable()
    {
        await ApplyOkAsync(Store, NodePortSvc("a"));
        var first = (await ServiceAsync("a"))!;
        Assert.Equal("service/a unchanged", Assert.Single(await ApplyOkAsync(Store, NodePortSvc("a"))).ToString());
        var again = (await ServiceAsync("a"))!;
        Assert.Equal((first.ClusterIP, first.Ports[0].NodePort), (again.ClusterIP, again.Ports[0].NodePort));

        string other = first.ClusterIP == "10.96.200.200" ? "10.96.200.201" : "10.96.200.200";
        var e = Assert.Single(await ApplyFailsAsync(Store, NodePortSvc("a", $", clusterIP: {other}")));
        Assert.Equal("spec.clusterIP", e.Field);
        Assert.Contains("field is immutable", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await AllocationKeysAsync()).Count);
    }

    [ContractFact]
    public async Task Type_change_to_ClusterIP_releases_node_ports_and_delete_releases_everything()
    {
        await ApplyOkAsync(Store, NodePortSvc("a"));
        int nodePort = (await ServiceAsync("a"))!.Ports[0].NodePort!.Value;
        Assert.Contains(AllocationKeys.NodePortPrefix + nodePort, (await AllocationKeysAsync()).Keys);

        await ApplyOkAsync(Store, "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {selector: {app: a}, ports: [{port: 80}]}\n");
        var keys = await AllocationKeysAsync();
        Assert.Equal([AllocationKeys.ClusterIPPrefix + (await ServiceAsync("a"))!.ClusterIP], keys.Keys);

        await AdmissionFor(Store).DeleteAsync(Manifests.ParseDocuments("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n", "d.yaml"));
        Assert.Empty(await AllocationKeysAsync());
    }

    [ContractFact]
    public async Task Namespace_cascade_releases_its_services_allocations()
    {
        await ApplyOkAsync(Store, "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\n" + NodePortSvc("a").Replace("{name: a}", "{name: a, namespace: team}", StringComparison.Ordinal));
        Assert.Equal(2, (await AllocationKeysAsync()).Count);
        var (_, errors) = await AdmissionFor(Store).DeleteAsync(Manifests.ParseDocuments("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n", "d.yaml"));
        Assert.Empty(errors);
        Assert.Empty(await AllocationKeysAsync());
    }

    [ContractFact]
    public async Task A_write_that_fails_after_allocation_leaves_no_key()
    {
        await using var failing = new FailingStore(Peer(), "/registry/services/");
        await Assert.ThrowsAsync<StoreUnavailableException>(() => AdmissionFor(failing).ApplyAsync(Manifests.ParseDocuments(NodePortSvc("a"), "t.yaml")));
        Assert.Empty(await AllocationKeysAsync());
        Assert.Null(await ServiceAsync("a"));
    }

    [ContractFact]
    public async Task Two_parallel_creates_of_one_service_keep_only_the_winners_allocations()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Peer()).Select(c => Task.Run(() => AdmissionFor(c).ApplyAsync(Manifests.ParseDocuments(NodePortSvc("a"), "t.yaml")))));
        Assert.Contains(results, r => r.Errors.Count == 0);
        var svc = (await ServiceAsync("a"))!;
        var keys = await AllocationKeysAsync();
        Assert.Equal(new[] { AllocationKeys.ClusterIPPrefix + svc.ClusterIP, AllocationKeys.NodePortPrefix + svc.Ports[0].NodePort }.Order(StringComparer.Ordinal), keys.Keys.Order(StringComparer.Ordinal));
    }

    [ContractFact]
    public async Task LoadBalancer_gets_a_pool_address_kept_across_reapplies_and_released_on_type_change()
    {
        await ClusterConfigStore.SaveAsync(Store, ClusterNetworkConfig.Default with { LoadBalancerPools = [IPNetwork.Parse("172.30.0.240/30")] });
        const string lb = "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: LoadBalancer, externalTrafficPolicy: Local, selector: {app: x}, ports: [{port: 80}]}\n";
        await ApplyOkAsync(Store, lb);
        var svc = (await ServiceAsync("lb"))!;
        Assert.Equal("172.30.0.240", Assert.Single(svc.LoadBalancerIngress).IP); // the lowest free address, as MetalLB
        Assert.NotNull(svc.HealthCheckNodePort);
        Assert.Equal(4, (await AllocationKeysAsync()).Count); // ClusterIP, nodePort, healthCheckNodePort, LB IP

        await ApplyOkAsync(Store, lb);
        Assert.Equal("172.30.0.240", Assert.Single((await ServiceAsync("lb"))!.LoadBalancerIngress).IP);

        await ApplyOkAsync(Store, "apiVersion: v1\nkind: Service\nmetadata: {name: lb2}\nspec: {type: LoadBalancer, loadBalancerIP: 172.30.0.243, ports: [{port: 80}]}\n");
        Assert.Equal("172.30.0.243", Assert.Single((await ServiceAsync("lb2"))!.LoadBalancerIngress).IP);

        await ApplyOkAsync(Store, "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {selector: {app: x}, ports: [{port: 80}]}\n");
        Assert.Empty((await ServiceAsync("lb"))!.LoadBalancerIngress);
        Assert.Equal(1, (await AllocationKeysAsync()).Count(k => k.Value == "default/lb"));
    }

    [ContractFact]
    public async Task Repair_removes_leaked_keys_restores_missing_ones_and_spares_young_ones()
    {
        var old = new AllocationOwner("default", "gone", "u-gone", DateTimeOffset.UtcNow.AddHours(-1));
        await Store.CreateAsync(AllocationKeys.ClusterIPPrefix + "10.96.5.5", AllocationKeys.EncodeOwner(old));
        await Store.CreateAsync(AllocationKeys.NodePortPrefix + "31111", AllocationKeys.EncodeOwner(old with { AllocatedAt = DateTimeOffset.UtcNow }));
        await Store.CreateAsync(AllocationKeys.NodePortPrefix + "31112", Encoding.UTF8.GetBytes("garbage"));
        // A Service stored without its keys (written before allocation existed).
        var raw = ObjectDefaults.ForCreate(Assert.Single(Manifests.Parse(NodePortSvc("legacy", ", clusterIP: 10.96.7.7").Replace("{port: 80}", "{port: 80, nodePort: 30777}", StringComparison.Ordinal), "t")), "u-legacy", DateTimeOffset.UtcNow);
        await new ObjectClient(Store).CreateAsync(raw);

        var report = await AllocationRepair.RunOnceAsync(Store);
        Assert.Equal([AllocationKeys.ClusterIPPrefix + "10.96.5.5", AllocationKeys.NodePortPrefix + "31112"], report.Removed.Order(StringComparer.Ordinal));
        Assert.Equal([AllocationKeys.ClusterIPPrefix + "10.96.7.7", AllocationKeys.NodePortPrefix + "30777"], report.Restored.Order(StringComparer.Ordinal));
        Assert.Empty(report.Conflicts);
        var keys = await AllocationKeysAsync();
        Assert.Equal("default/gone", keys[AllocationKeys.NodePortPrefix + "31111"]);
        Assert.Equal("default/legacy", keys[AllocationKeys.ClusterIPPrefix + "10.96.7.7"]);

        Assert.True((await AllocationRepair.RunOnceAsync(Store, TimeSpan.FromMinutes(1))).IsClean);
        Assert.Equal([AllocationKeys.NodePortPrefix + "31111"], (await AllocationRepair.RunOnceAsync(Store, TimeSpan.Zero)).Removed);
    }

    [ContractFact]
    public async Task Deleting_a_bound_pod_marks_it_terminating_and_force_removes_it()
    {
        const string pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: node-1, terminationGracePeriodSeconds: 7, containers: [{name: c, image: x}]}\n";
        const string unbound = "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec: {containers: [{name: c, image: x}]}\n";
        await ApplyOkAsync(Store, pod + "---\n" + unbound);
        var admission = AdmissionFor(Store);
        var result = await admission.DeleteAsync(Manifests.ParseDocuments(pod + "---\n" + unbound, "d"), new DeleteOptions());
        Assert.Empty(result.Errors);
        var t = Assert.Single(result.Terminating);
        Assert.Equal(("p", 7), (t.Name, t.GracePeriodSeconds));
        var stored = new PodView((await new ObjectClient(Store).GetAsync(Kinds.Pod, "default", "p"))!.Json);
        Assert.True(stored.IsTerminating);
        Assert.Equal(7, stored.DeletionGracePeriodSeconds);
        Assert.Null(await new ObjectClient(Store).GetAsync(Kinds.Pod, "default", "q"));

        // A re-delete is no error and may shorten the grace period; apply is refused while it terminates.
        var again = await admission.DeleteAsync(Manifests.ParseDocuments(pod, "d"), new DeleteOptions(GracePeriodSeconds: 3));
        Assert.Empty(again.Errors);
        Assert.Equal(3, new PodView((await new ObjectClient(Store).GetAsync(Kinds.Pod, "default", "p"))!.Json).DeletionGracePeriodSeconds);
        Assert.Equal("metadata.deletionTimestamp", Assert.Single(await ApplyFailsAsync(Store, pod)).Field);
        Assert.Single(await admission.WaitGoneAsync(again.Terminating, TimeSpan.FromMilliseconds(300)));

        var forced = await admission.DeleteAsync(Manifests.ParseDocuments(pod, "d"), new DeleteOptions(Force: true));
        Assert.Empty(forced.Terminating);
        Assert.Null(await new ObjectClient(Store).GetAsync(Kinds.Pod, "default", "p"));
        Assert.Empty(await admission.WaitGoneAsync(again.Terminating, TimeSpan.FromSeconds(1)));
    }

    /// <summary>A store whose creates under one prefix fail as a broken disk would, after allocation has run.</summary>
    private sealed class FailingStore(IClusterStore inner, string failPrefix) : IClusterStore
    {
        public Task<StoreItem?> GetAsync(string key, CancellationToken ct = default) => inner.GetAsync(key, ct);

        public Task<StoreList> ListAsync(string prefix, CancellationToken ct = default) => inner.ListAsync(prefix, ct);

        public Task<long> CreateAsync(string key, ReadOnlyMemory<byte> value, long leaseId = 0, CancellationToken ct = default) =>
            key.StartsWith(failPrefix, StringComparison.Ordinal)
                ? throw new StoreUnavailableException("create", key, "disk I/O error (injected)")
                : inner.CreateAsync(key, value, leaseId, ct);

        public Task<long> UpdateAsync(string key, ReadOnlyMemory<byte> value, long expectedModRevision, long leaseId = 0, CancellationToken ct = default) =>
            inner.UpdateAsync(key, value, expectedModRevision, leaseId, ct);

        public Task<long> DeleteAsync(string key, long expectedModRevision = 0, CancellationToken ct = default) => inner.DeleteAsync(key, expectedModRevision, ct);

        public IAsyncEnumerable<WatchEvent> WatchAsync(string prefix, long fromRevision, CancellationToken ct = default) => inner.WatchAsync(prefix, fromRevision, ct);

        public Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken ct = default) => inner.GrantLeaseAsync(ttl, ct);

        public Task KeepAliveAsync(long leaseId, CancellationToken ct = default) => inner.KeepAliveAsync(leaseId, ct);

        public Task RevokeLeaseAsync(long leaseId, CancellationToken ct = default) => inner.RevokeLeaseAsync(leaseId, ct);

        public Task<long> CurrentRevisionAsync(CancellationToken ct = default) => inner.CurrentRevisionAsync(ct);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

public sealed class SqliteServiceAllocationTests : ServiceAllocationStoreTests, IDisposable
{
    private readonly TempDir _dir = new();

    protected override IClusterStore CreateStore() => new SqliteClusterStore(_dir.File("store.db"), new ClusterStoreOptions());

    protected override IClusterStore OpenPeerClient() => new SqliteClusterStore(_dir.File("store.db"), new ClusterStoreOptions());

    public void Dispose() => _dir.Dispose();
}

[EtcdRequired]
public sealed class EtcdServiceAllocationTests : ServiceAllocationStoreTests
{
    private EtcdCluster? _etcd;

    public override async Task InitializeAsync()
    {
        _etcd = await EtcdCluster.StartAsync(1, EtcdTiming.Single);
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        try
        {
            await base.DisposeAsync();
        }
        finally
        {
            await _etcd!.DisposeAsync();
        }
    }

    protected override IClusterStore CreateStore() => ClusterStore.Open(_etcd!.Url, new ClusterStoreOptions());

    protected override IClusterStore OpenPeerClient() => ClusterStore.Open(_etcd!.Url, new ClusterStoreOptions());
}
