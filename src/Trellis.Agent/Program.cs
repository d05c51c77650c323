namespace Trellis.Agent;

/// <summary>
/// trellisd, the node agent. The store loop (watch nodes, leases and pods; compile; reconcile on change and on
/// a periodic resync) is not wired yet; the reconcilers it will drive are <see cref="Routing.RoutingReconciler"/>
/// and <see cref="NodeFirewall.NodeFirewallReconciler"/>.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: trellisd --store URL --node NAME [--underlay eth0] [--backend vxlan|host-gw] [--direct-routing]

        The Trellis node agent: registers the node, leases its pod CIDR, writes the CNI config and keeps the
        node's cross-node routes (VXLAN device, routes, neighbours, FDB) and its nftables table
        (inet trellis-node) in line with the cluster store. Runs in the node's network namespace.
        (This build has the reconcilers only; the store loop is not wired yet.)
        """;

    private static int Main(string[] args)
    {
        if (args is ["--help"] or ["-h"])
        {
            Console.Out.WriteLine(Usage);
            return 0;
        }
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
