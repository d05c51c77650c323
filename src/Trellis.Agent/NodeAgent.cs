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
        await AnnotateSelfAsync(vtep, ct).ConfigureAwait(false);
        string? lastReport = null;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var list = await store.ListAsync(Kinds.Node.StorePrefix(), ct).ConfigureAwait(false);
                var nodes = list.Items.Select(i => new NodeView((JsonObject)JsonNode.Parse(i.Value)!)).ToList();
                lastReport = Sync(nl, routing, firewall, vtep, nodes, lastReport);
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
        }
    }

    private string? Sync(RtNetlink nl, RoutingReconciler routing, NodeFirewallReconciler firewall, MacAddress vtep, List<NodeView> nodes, string? lastReport)
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
        var result = routing.Sync(new RouteCompilerInput
        {
            Self = selfNode,
            UnderlayInterface = options.Underlay,
            Peers = peers,
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
            $"{peers.Count} peers; routing {(result.Converged ? "converged" : "NOT converged")}; firewall {fw.Outcome}");
        if (result.Plan is { Ops.Count: > 0 } || result.Apply.Errors.Count > 0 || result.Compilation.Errors.Count > 0 || fw.Errors.Count > 0)
        {
            Log(report + "\n" + result.Describe().TrimEnd() + string.Concat(fw.Errors.Select(e => "\n# firewall: " + e)));
            return report;
        }
        return Report(report, lastReport);
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
                string backend = options.Backend == RoutingBackend.HostGw ? "host-gw" : options.DirectRouting ? "vxlan+directRouting" : "vxlan";
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
