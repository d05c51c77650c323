using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Trellis.Core.Routing;
using Trellis.Store;

namespace Trellis.Agent;

/// <summary>trellisd, the node agent: composes the store, the compilers and the reconcilers (see <see cref="NodeAgent"/>).</summary>
internal static class Program
{
    private const string Usage = """
        usage: trellisd --store URL --node NAME --cluster-cidr CIDR [--underlay eth0] [--backend vxlan|host-gw|bgp] [--bgp-status FILE]
                        [--direct-routing] [--resync 10s]
                        [--service-cidr CIDR[,CIDR]] [--masquerade-all] [--nodeport-addresses CIDR[,CIDR]] [--no-proxy]
                        [--no-policy] [--metrics ADDR:PORT]
                        [--lease-subnet-length 24 [--prefer-subnet CIDR] [--cni-conf FILE --cni-template FILE]]

        The Trellis node agent: keeps the node's cross-node routes (VXLAN device, routes, neighbours, FDB)
        and its nftables table (inet trellis-node: masquerade to the outside, VXLAN only from nodes) in line
        with the cluster's Node objects. With --lease-subnet-length it leases the node's pod CIDR from the
        cluster CIDR (flannel's protocol), records it as spec.podCIDR and writes the CNI config for it.
        Unless --no-proxy, it is also the node's service proxy (kube-proxy, nftables mode): table ip trellis-proxy.
        Unless --no-policy, it enforces NetworkPolicy for the node's pods: table inet trellis-policy.
        --metrics serves Prometheus text (policy allow/drop counters, sync counts) on http://ADDR:PORT/metrics.
        With --backend bgp it runs a BGP speaker on the underlay address instead (Calico's model: iBGP mesh,
        route reflectors, BGPPeer objects), installs learned routes as proto 203 and writes its status to --bgp-status.
        Runs in the node's network namespace.
        """;

    private static async Task<int> Main(string[] args)
    {
        if (args is ["--help"] or ["-h"])
        {
            Console.Out.WriteLine(Usage);
            return 0;
        }
        var flags = new Dictionary<string, string>();
        bool directRouting = false;
        bool masqueradeAll = false;
        bool noProxy = false;
        bool noPolicy = false;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--direct-routing")
            {
                directRouting = true;
            }
            else if (args[i] == "--masquerade-all")
            {
                masqueradeAll = true;
            }
            else if (args[i] == "--no-proxy")
            {
                noProxy = true;
            }
            else if (args[i] == "--no-policy")
            {
                noPolicy = true;
            }
            else if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length)
            {
                flags[args[i]] = args[++i];
            }
            else
            {
                return UsageError($"unexpected argument '{args[i]}'");
            }
        }
        if (!flags.TryGetValue("--store", out var url) || !flags.TryGetValue("--node", out var node))
        {
            return UsageError("--store and --node are required");
        }
        if (!flags.TryGetValue("--cluster-cidr", out var cidrText) || !IPNetwork.TryParse(cidrText, out var cluster))
        {
            return UsageError($"--cluster-cidr: '{cidrText}' is not a network in CIDR notation");
        }
        var backend = flags.GetValueOrDefault("--backend", "vxlan") switch
        {
            "vxlan" => RoutingBackend.Vxlan,
            "host-gw" => RoutingBackend.HostGw,
            "bgp" => RoutingBackend.Bgp,
            var other => (RoutingBackend?)null,
        };
        if (backend is null)
        {
            return UsageError($"--backend: '{flags["--backend"]}' is not vxlan, host-gw or bgp");
        }
        var resync = TimeSpan.FromSeconds(10);
        if (flags.TryGetValue("--resync", out var r))
        {
            if (!r.EndsWith('s') || !double.TryParse(r[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double secs) || secs <= 0)
            {
                return UsageError($"--resync: '{r}' is not a duration like 10s");
            }
            resync = TimeSpan.FromSeconds(secs);
        }
        int? leaseLength = null;
        if (flags.TryGetValue("--lease-subnet-length", out var ll))
        {
            if (!int.TryParse(ll, NumberStyles.None, CultureInfo.InvariantCulture, out int len) || len <= cluster.PrefixLength || len > 30)
            {
                return UsageError($"--lease-subnet-length: '{ll}' must be longer than the cluster CIDR's prefix and at most 30");
            }
            leaseLength = len;
        }
        IPNetwork? prefer = null;
        if (flags.TryGetValue("--prefer-subnet", out var ps))
        {
            if (!IPNetwork.TryParse(ps, out var p))
            {
                return UsageError($"--prefer-subnet: '{ps}' is not a network in CIDR notation");
            }
            prefer = p;
        }
        string? template = null;
        if (flags.TryGetValue("--cni-template", out var tf))
        {
            if (!File.Exists(tf))
            {
                return UsageError($"--cni-template: {tf} does not exist");
            }
            template = File.ReadAllText(tf);
        }
        if (!TryCidrs(flags, "--service-cidr", out var serviceCidrs, out var bad) || !TryCidrs(flags, "--nodeport-addresses", out var nodePortCidrs, out bad))
        {
            return UsageError(bad!);
        }
        System.Net.IPEndPoint? metrics = null;
        if (flags.TryGetValue("--metrics", out var m) && !Metrics.MetricsServer.TryParseEndpoint(m, out metrics))
        {
            return UsageError($"--metrics: '{m}' is not ADDR:PORT (e.g. 0.0.0.0:9402)");
        }
        var options = new AgentOptions
        {
            Policy = noPolicy ? null : new Policy.PolicyOptions { Resync = resync },
            Metrics = metrics,
            Proxy = noProxy ? null : new Proxy.ProxyOptions
            {
                ClusterCidrs = [cluster],
                ServiceCidrs = serviceCidrs,
                MasqueradeAll = masqueradeAll,
                NodePortAddresses = nodePortCidrs,
            },
            LeaseSubnetLength = leaseLength,
            PreferSubnet = prefer,
            CniConfFile = flags.GetValueOrDefault("--cni-conf"),
            CniTemplate = template,
            Node = node,
            Underlay = flags.GetValueOrDefault("--underlay", "eth0"),
            Backend = backend.Value,
            DirectRouting = directRouting,
            ClusterCidr = cluster,
            Resync = resync,
            BgpStatusFile = flags.GetValueOrDefault("--bgp-status"),
        };
        using var stop = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        try
        {
            await using var store = ClusterStore.Open(url);
            await new NodeAgent(options, store, Console.Out).RunAsync(stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // SIGTERM: leave the kernel as it is; the next agent picks up from there.
        }
        catch (ArgumentException e)
        {
            return UsageError(e.Message);
        }
        return 0;
    }

    private static bool TryCidrs(Dictionary<string, string> flags, string flag, out List<IPNetwork> cidrs, out string? error)
    {
        cidrs = [];
        error = null;
        if (!flags.TryGetValue(flag, out var text))
        {
            return true;
        }
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part == "primary")
            {
                continue; // kube-proxy's keyword for the default: the node's primary addresses
            }
            if (!Trellis.Model.IPCidr.TryParse(part, out var c) || !c.Network.BaseAddress.Equals(c.Address))
            {
                error = $"{flag}: '{part}' is not a network in CIDR notation";
                return false;
            }
            cidrs.Add(c.Network);
        }
        return true;
    }

    private static int UsageError(string message)
    {
        Console.Error.WriteLine($"trellisd: {message}\n{Usage}");
        return 2;
    }
}
