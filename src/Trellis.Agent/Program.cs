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
        usage: trellisd --store URL --node NAME --cluster-cidr CIDR [--underlay eth0] [--backend vxlan|host-gw]
                        [--direct-routing] [--resync 10s]

        The Trellis node agent: keeps the node's cross-node routes (VXLAN device, routes, neighbours, FDB)
        and its nftables table (inet trellis-node: masquerade to the outside, VXLAN only from nodes) in line
        with the cluster's Node objects. Runs in the node's network namespace.
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
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--direct-routing")
            {
                directRouting = true;
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
            var other => (RoutingBackend?)null,
        };
        if (backend is null)
        {
            return UsageError($"--backend: '{flags["--backend"]}' is not vxlan or host-gw");
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
        var options = new AgentOptions
        {
            Node = node,
            Underlay = flags.GetValueOrDefault("--underlay", "eth0"),
            Backend = backend.Value,
            DirectRouting = directRouting,
            ClusterCidr = cluster,
            Resync = resync,
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

    private static int UsageError(string message)
    {
        Console.Error.WriteLine($"trellisd: {message}\n{Usage}");
        return 2;
    }
}
