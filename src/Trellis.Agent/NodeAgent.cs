using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Trellis.Agent.NodeFirewall;
using Trellis.Agent.Routing;
using Trellis.Core.NodeFirewall;
using Trellis.Core.Objects;
using Trellis.Core.Routing;
using Trellis.Model;
using Trellis.Netlink;
using Trellis.Nftables;
using Trellis.Store;

namespace Trellis.Agent;

/// <summary>What trellisd is told on its command line.</summary>
public sealed record AgentOptions
{
    public required string Node { get; init; }
    public string Underlay { get; init; } = "eth0";
    public RoutingBackend Backend { get; init; } = RoutingBackend.Vxlan;
    public bool DirectRouting { get; init; }
    public required IPNetwork ClusterCidr { get; init; }
    public TimeSpan Resync { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Lease the node's pod CIDR from the cluster CIDR in subnets of this length (flannel's SubnetLen); null: use spec.podCIDR as given.</summary>
    public int? LeaseSubnetLength { get; init; }

    /// <summary>The subnet to ask for first when the node has none yet (e.g. the one it had before a reinstall).</summary>
    public IPNetwork? PreferSubnet { get; init; }

    public TimeSpan LeaseTtl { get; init; } = Core.Leases.LeaseTiming.DefaultTtl;

    /// <summary>Where to write the node's CNI conflist once the subnet is known, and the template for it.</summary>
    public string? CniConfFile { get; init; }

    /// <summary>A conflist with {{SUBNET}}, {{GATEWAY}} and {{MTU}} placeholders.</summary>
    public string? CniTemplate { get; init; }

    /// <summary>The service proxy's settings; null runs no proxy (kube-proxy runs beside another agent).</summary>
    public Proxy.ProxyOptions? Proxy { get; init; }

    /// <summary>The NetworkPolicy engine's settings; null enforces no policy (another engine does).</summary>
    public Policy.PolicyOptions? Policy { get; init; }

    /// <summary>Where to serve Prometheus metrics (<c>GET /metrics</c>); null serves none.</summary>
    public IPEndPoint? Metrics { get; init; }
    /// <summary>bgp backend: where to write the status <c>trellis bgp status</c> reads (and bgp.prom beside it); null writes none.</summary>
    public string? BgpStatusFile { get; init; }
}

/// <summary>
/// The node agent's loop (compile, then reconcile): publish this node's VTEP MAC, then on every
/// change of the Node objects — and on a periodic resync that repairs drift — compile the
/// desired routes and the trellis-node table from the Node objects and reconcile them. Never
/// flushes on start: a restarted agent observes what is there and changes only the difference,
/// so traffic that is flowing keeps flowing.
/// </summary>
/// <remarks>
/// Pod CIDRs come from each Node's spec.podCIDR (the lab assigns them); leasing them from the
/// cluster CIDR (Core.Leases) is the next step.
/// </remarks>
public sealed class NodeAgent(AgentOptions options, IClusterStore store, TextWriter log)
{
    public const string VtepMacAnnotation = "trellis.dev/vtep-mac";
    public const string BackendAnnotation = "trellis.dev/backend";

    public async Task RunAsync(CancellationToken ct)
    {
        using var nl = RtNetlink.Open();
        var routing = new RoutingReconciler(nl, options.Underlay);
        var firewall = new NodeFirewallReconciler(new NftClient());
        var vtep = MacAddress.ForNode(options.Node);
        // The bgp backend's speaker and route loop live beside the store loop (see Bgp/BgpBackend).
        await using var bgp = options.Backend == RoutingBackend.Bgp ? new Bgp.BgpBackend(options.Node, options.Underlay, options.BgpStatusFile, Log) : null;
        // The proxy runs beside the routing loop, on its own watch: a Service change must not wait for a
        // Node resync, and a slow nft transaction must not delay a route.
        var proxy = options.Proxy is { } po
            ? Task.Run(() => new Proxy.ServiceProxy(options.Node, options.Underlay, po, store, log).RunAsync(ct), ct)
            : Task.CompletedTask;
        // The policy engine likewise: its own watch (pods, namespaces, policies), its own table.
        var policyEngine = options.Policy is { } pol ? new Policy.PolicyEngine(options.Node, pol, store, log) : null;
        var policy = policyEngine is not null ? Task.Run(() => policyEngine.RunAsync(ct), ct) : Task.CompletedTask;
        await using var metrics = options.Metrics is { } endpoint
            ? new Metrics.MetricsServer(endpoint, [.. MetricWriters(policyEngine, bgp)], log)
            : null;
        if (metrics is not null)
        {
            Log($"serving metrics on http://{metrics.Endpoint}/metrics");
        }
        // Only the routing loop needs this node's Node object; the proxy and the policy engine (started above)
        // do not wait for it, as kube-proxy does not wait for its node's registration.
        await AnnotateSelfAsync(vtep, ct).ConfigureAwait(false);
        string? lastReport = null;
        DateTimeOffset renewAt = DateTimeOffset.MinValue;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (options.LeaseSubnetLength is int length && TimeProvider.System.GetUtcNow() >= renewAt)
                {
                    renewAt = await LeaseAsync(nl, length, vtep, ct).ConfigureAwait(false);
                }
                var list = await store.ListAsync(Kinds.Node.StorePrefix(), ct).ConfigureAwait(false);
                var nodes = list.Items.Select(i => new NodeView((JsonObject)JsonNode.Parse(i.Value)!)).ToList();
                (List<BgpPeerView> Peers, BgpConfigurationView? Config)? bgpIntent = bgp is null ? null : await ListBgpIntentAsync(ct).ConfigureAwait(false);
                lastReport = Sync(nl, routing, firewall, vtep, nodes, lastReport, bgp, bgpIntent);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(options.Resync);
                try
                {
                    // Wait for the first Node change after the list, or the resync period.
                    await foreach (var _ in store.WatchAsync(Kinds.Node.StorePrefix(), list.Revision, timeout.Token).ConfigureAwait(false))
                    {
                        break;
                    }
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    // periodic resync
                }
            }
            catch (StoreException e) when (!ct.IsCancellationRequested)
            {
                // Store outage: keep the kernel as it is (traffic keeps flowing) and retry.
                Log($"store: {e.Message}; keeping the current routes, retrying");
                await Task.Delay(1000, ct).ConfigureAwait(false);
            }
            if (proxy.IsFaulted)
            {
                // Surface a proxy crash: the supervisor restarts the agent, as systemd restarts kube-proxy.
                await proxy.ConfigureAwait(false);
            }
            if (policy.IsFaulted)
            {
                await policy.ConfigureAwait(false);
            }
        }
        await proxy.ConfigureAwait(false);
        await policy.ConfigureAwait(false);
    }

    /// <summary>BGPPeer objects and the BGPConfiguration singleton (Calico's kinds); changes are seen on the next resync.</summary>
    /// <summary>What <c>/metrics</c> shows: the policy engine's counters and the bgp backend's gauges, whichever run.</summary>
    private static IEnumerable<Action<System.Text.StringBuilder>> MetricWriters(Policy.PolicyEngine? policy, Bgp.BgpBackend? bgp)
    {
        if (policy is not null)
        {
            yield return policy.WriteMetrics;
        }
        if (bgp is not null)
        {
            yield return bgp.WriteMetrics;
        }
    }

    private async Task<(List<BgpPeerView> Peers, BgpConfigurationView? Config)> ListBgpIntentAsync(CancellationToken ct)
    {
        var peers = await store.ListAsync(Kinds.BgpPeer.StorePrefix(), ct).ConfigureAwait(false);
        var config = await store.GetAsync(Kinds.BgpConfiguration.StoreKey(null, BgpConfigurationView.DefaultName), ct).ConfigureAwait(false);
        return ([.. peers.Items.Select(i => new BgpPeerView((JsonObject)JsonNode.Parse(i.Value)!))],
            config is null ? null : new BgpConfigurationView((JsonObject)JsonNode.Parse(config.Value)!));
    }

    private string? Sync(RtNetlink nl, RoutingReconciler routing, NodeFirewallReconciler firewall, MacAddress vtep, List<NodeView> nodes, string? lastReport,
        Bgp.BgpBackend? bgp, (List<BgpPeerView> Peers, BgpConfigurationView? Config)? bgpIntent)
    {
        var self = nodes.FirstOrDefault(n => n.Name == options.Node);
        var underlay = nl.LinkGetByName(options.Underlay);
        var addrs = underlay is null ? [] : nl.AddrList(underlay.Index, AddressFamily.InterNetwork);
        var addr = addrs.Count > 0 ? addrs[0] : null;
        if (self is null || addr is null || self.PodCIDRs.Count == 0 || !IPNetwork.TryParse(self.PodCIDRs[0], out var podCidr))
        {
            return Report($"waiting: node object, its podCIDR or {options.Underlay}'s address is not there yet", lastReport);
        }
        var selfNode = new RouteNode(options.Node, addr.Cidr.Address, addr.Cidr.Network, podCidr, vtep);
        var peers = new List<RouteNode>();
        foreach (var n in nodes.Where(n => n.Name != options.Node))
        {
            if (n.InternalIP is { } ip && IPAddress.TryParse(ip, out var peerIp) && n.PodCIDRs.Count > 0 && IPNetwork.TryParse(n.PodCIDRs[0], out var peerCidr))
            {
                MacAddress? mac = MacAddress.TryParse(n.Metadata.Annotation(VtepMacAnnotation), out var m) ? m : null;
                // A peer on the same L2 subnet as this node is known to be; others are "elsewhere".
                peers.Add(new RouteNode(n.Name, peerIp, addr.Cidr.Network.Contains(peerIp) ? addr.Cidr.Network : null, peerCidr, mac));
            }
        }
        string bgpReport = "";
        if (bgp is not null && bgpIntent is { } bi)
        {
            var topology = BgpTopologyCompiler.Compile(options.Node, nodes, bi.Config, bi.Peers);
            bgp.Configure(topology, selfNode.UnderlayIp, addr.Cidr.Network, podCidr);
            bgpReport = string.Create(CultureInfo.InvariantCulture, $"; bgp AS {topology.Asn}, {topology.Peers.Count} sessions{(topology.ClusterId is { } c ? $", reflector {c}" : "")}")
                + string.Concat(topology.Errors.Select(e => "; bgp: " + e));
        }
        var result = routing.Sync(new RouteCompilerInput
        {
            Self = selfNode,
            UnderlayInterface = options.Underlay,
            // bgp: routes come from the speaker (protocol 203); this compiler then owns nothing but cleans up.
            Peers = bgp is null ? peers : [],
            Backend = options.Backend,
            DirectRouting = options.DirectRouting,
            UnderlayMtu = underlay!.Mtu,
        });
        var fw = firewall.Sync(new NodeFirewallInput
        {
            ClusterCidrs = [options.ClusterCidr],
            PodCidrs = [podCidr],
            NodeIps = [selfNode.UnderlayIp, .. peers.Select(p => p.UnderlayIp)],
            VxlanPort = options.Backend == RoutingBackend.Vxlan || options.DirectRouting ? 8472 : null,
        });
        string report = string.Create(CultureInfo.InvariantCulture,
            $"{peers.Count} peers; routing {(result.Converged ? "converged" : "NOT converged")}; firewall {fw.Outcome}{bgpReport}");
        if (result.Plan is { Ops.Count: > 0 } || result.Apply.Errors.Count > 0 || result.Compilation.Errors.Count > 0 || fw.Errors.Count > 0)
        {
            Log(report + "\n" + result.Describe().TrimEnd() + string.Concat(fw.Errors.Select(e => "\n# firewall: " + e)));
            return report;
        }
        return Report(report, lastReport);
    }

    /// <summary>
    /// Acquires or renews the node's subnet lease, records it as the Node's spec.podCIDR, writes the
    /// CNI conflist for it and reports NetworkUnavailable=False; when no subnet can be had, says why in
    /// the Node's status (NetworkUnavailable=True) and retries later instead of crash-looping.
    /// Returns when to renew.
    /// </summary>
    private async Task<DateTimeOffset> LeaseAsync(RtNetlink nl, int length, MacAddress vtep, CancellationToken ct)
    {
        var now = TimeProvider.System.GetUtcNow();
        var underlay = nl.LinkGetByName(options.Underlay);
        var addrs = underlay is null ? [] : nl.AddrList(underlay.Index, AddressFamily.InterNetwork);
        if (addrs.Count == 0)
        {
            Log($"lease: {options.Underlay} has no IPv4 address yet");
            return now + TimeSpan.FromSeconds(1);
        }
        var nodeItem = await store.GetAsync(Kinds.Node.StoreKey(null, options.Node), ct).ConfigureAwait(false);
        var current = nodeItem is null ? null : new NodeView((JsonObject)JsonNode.Parse(nodeItem.Value)!);
        IPNetwork? previous = current is { PodCIDRs.Count: > 0 } && IPNetwork.TryParse(current.PodCIDRs[0], out var had) ? had : options.PreferSubnet;
        var leaser = new SubnetLeaser(store, options.ClusterCidr, length, TimeProvider.System) { Ttl = options.LeaseTtl };
        var outcome = await leaser.AcquireAsync(options.Node, addrs[0].Cidr.Address, vtep, previous, ct).ConfigureAwait(false);
        if (!outcome.Held)
        {
            Log($"lease: {outcome.Message}");
            await SetNetworkConditionAsync(unavailable: true, "NoSubnetLease", outcome.Message, null, ct).ConfigureAwait(false);
            return now + TimeSpan.FromSeconds(10);
        }
        var lease = outcome.Lease!;
        if (options.CniConfFile is { } file && options.CniTemplate is { } template)
        {
            var gateway = IPAddressMath.Add(lease.Subnet.BaseAddress, 1);
            int mtu = (underlay?.Mtu ?? 1500) - (options.Backend == RoutingBackend.Vxlan ? 50 : 0);
            string conf = template.Replace("{{SUBNET}}", lease.Subnet.ToString(), StringComparison.Ordinal)
                .Replace("{{GATEWAY}}", gateway.ToString(), StringComparison.Ordinal)
                .Replace("{{MTU}}", mtu.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
            if (!File.Exists(file) || File.ReadAllText(file) != conf)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                File.WriteAllText(file + ".tmp", conf);
                File.Move(file + ".tmp", file, overwrite: true); // runtimes read it whole or not at all
                Log($"wrote {file} for {lease.Subnet}");
            }
        }
        await SetNetworkConditionAsync(unavailable: false, "TrellisIsUp", $"lease {lease.Subnet} until {lease.Expires:u}", lease.Subnet, ct).ConfigureAwait(false);
        if (outcome.Reason != Core.Leases.SubnetChoiceReason.OwnLease)
        {
            Log($"lease: {lease.Subnet} ({outcome.Reason})");
        }
        return Core.Leases.LeaseTiming.RenewAt(lease, options.LeaseTtl, now);
    }

    /// <summary>The NetworkUnavailable condition (as flannel/Calico set it) and, once known, spec.podCIDR(s).</summary>
    private async Task SetNetworkConditionAsync(bool unavailable, string reason, string message, IPNetwork? podCidr, CancellationToken ct)
    {
        string key = Kinds.Node.StoreKey(null, options.Node);
        for (int attempt = 0; attempt < 20; attempt++)
        {
            var item = await store.GetAsync(key, ct).ConfigureAwait(false);
            if (item is null)
            {
                return;
            }
            var json = (JsonObject)JsonNode.Parse(item.Value)!;
            var spec = json["spec"] as JsonObject ?? [];
            json["spec"] = spec;
            bool changed = false;
            if (podCidr is { } cidr && spec["podCIDR"] is null)
            {
                spec["podCIDR"] = cidr.ToString();
                spec["podCIDRs"] = new JsonArray(cidr.ToString());
                changed = true;
            }
            var status = json["status"] as JsonObject ?? [];
            json["status"] = status;
            var conditions = status["conditions"] as JsonArray ?? [];
            status["conditions"] = conditions;
            var existing = conditions.FirstOrDefault(c => c?["type"]?.ToString() == "NetworkUnavailable");
            string wanted = unavailable ? "True" : "False";
            if (existing?["status"]?.ToString() != wanted || existing?["reason"]?.ToString() != reason)
            {
                if (existing is not null)
                {
                    conditions.Remove(existing);
                }
                conditions.Add((JsonNode)new JsonObject
                {
                    ["type"] = "NetworkUnavailable",
                    ["status"] = wanted,
                    ["reason"] = reason,
                    ["message"] = message,
                    ["lastTransitionTime"] = Timestamps.Format(TimeProvider.System.GetUtcNow()),
                });
                changed = true;
            }
            if (!changed)
            {
                return;
            }
            try
            {
                await store.UpdateAsync(key, System.Text.Encoding.UTF8.GetBytes(json.ToJsonString()), item.ModRevision, 0, ct).ConfigureAwait(false);
                return;
            }
            catch (StoreConflictException)
            {
                // the kubelet wrote meanwhile: read again
            }
        }
    }

    /// <summary>Publishes the VTEP MAC (as flannel does with its backend-data annotation) and the backend.</summary>
    private async Task AnnotateSelfAsync(MacAddress vtep, CancellationToken ct)
    {
        string key = Kinds.Node.StoreKey(null, options.Node);
        for (int attempt = 0; !ct.IsCancellationRequested; attempt++)
        {
            try
            {
                var item = await store.GetAsync(key, ct).ConfigureAwait(false);
                if (item is null)
                {
                    Log($"waiting for Node {options.Node} to be registered");
                    await Task.Delay(500, ct).ConfigureAwait(false);
                    continue;
                }
                var json = (JsonObject)JsonNode.Parse(item.Value)!;
                var meta = (JsonObject)json["metadata"]!;
                var annotations = meta["annotations"] as JsonObject ?? [];
                meta["annotations"] = annotations;
                string backend = options.Backend switch
                {
                    RoutingBackend.HostGw => "host-gw",
                    RoutingBackend.Bgp => "bgp",
                    _ => options.DirectRouting ? "vxlan+directRouting" : "vxlan",
                };
                if (annotations[VtepMacAnnotation]?.ToString() == vtep.ToString() && annotations[BackendAnnotation]?.ToString() == backend)
                {
                    return;
                }
                annotations[VtepMacAnnotation] = vtep.ToString();
                annotations[BackendAnnotation] = backend;
                await store.UpdateAsync(key, System.Text.Encoding.UTF8.GetBytes(json.ToJsonString()), item.ModRevision, 0, ct).ConfigureAwait(false);
                Log($"published VTEP MAC {vtep} ({backend})");
                return;
            }
            catch (StoreConflictException)
            {
                // written concurrently (the kubelet's status): read again
            }
            catch (StoreException e)
            {
                Log($"store: {e.Message}; retrying");
                await Task.Delay(500, ct).ConfigureAwait(false);
            }
        }
    }

    private string Report(string report, string? last)
    {
        if (report != last)
        {
            Log(report);
        }
        return report;
    }

    private void Log(string message) =>
        log.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} trellisd {options.Node}: {message}");
}
