using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Trellis.Model;

namespace Trellis.Core.NodeFirewall;

/// <summary>What the node's own nftables table is compiled from.</summary>
public sealed record NodeFirewallInput
{
    /// <summary>The cluster's pod networks (10.244.0.0/16; one per family when dual-stack).</summary>
    public IReadOnlyList<IPNetwork> ClusterCidrs { get; init; } = [];

    /// <summary>This node's pod subnets: the sources that are masqueraded when they leave the cluster. Empty until the lease is held.</summary>
    public IReadOnlyList<IPNetwork> PodCidrs { get; init; } = [];

    /// <summary>The underlay addresses of every registered node, this one included: the only VXLAN senders accepted.</summary>
    public IReadOnlyList<IPAddress> NodeIps { get; init; } = [];

    /// <summary>The VXLAN UDP port; null when this node has no VXLAN device (host-gw), and then no VXLAN rule.</summary>
    public int? VxlanPort { get; init; } = 8472;

    /// <summary>flannel's <c>--ip-masq</c>: SNAT pod traffic that leaves the cluster CIDR to the node's address.</summary>
    public bool Masquerade { get; init; } = true;
}

/// <summary>How the transaction takes over the table.</summary>
public enum NftApplyMode
{
    /// <summary>
    /// <c>add table</c>, <c>flush table</c>, <c>flush set</c> each set, then every definition again — the
    /// normal sync. Named objects (the drop counter) survive it.
    /// </summary>
    Refill,

    /// <summary>
    /// <c>add table</c> + <c>delete table</c> + every definition: for when a definition itself changed (a
    /// set's type or flags, a chain's hook or priority — after an upgrade), which <c>add</c> refuses
    /// with "File exists". Just as atomic; counters restart from zero.
    /// </summary>
    Recreate,
}

/// <summary>
/// Compiles the <c>inet trellis-node</c> table — VXLAN source filtering, forward accepts and pod
/// masquerade — into one <c>nft -f</c> transaction (DESIGN §7: one owned table, static chains, the
/// changing data in sets).
/// <para><b>Why a flush is safe here.</b> DESIGN §2 forbids flushing on agent start because state torn
/// down before the new state is written leaves a window in which packets meet nothing (or the wrong
/// thing). This transaction has no such window: <c>nft -f</c> sends the whole script as one netlink
/// batch, and nf_tables commits a batch as one new ruleset generation — every packet is evaluated
/// against either the complete old table or the complete new one, never the flushed one in between.
/// Established flows keep their conntrack entries and NAT bindings, which live outside the ruleset. And
/// because the table is owned exclusively, nothing of anyone else's is flushed. Flushing, rather than
/// diffing rules one by one, is what makes the result exactly the compiled text whatever drifted before
/// (flannel's nftables manager flushes its chains the same way, inside the transaction that refills them).</para>
/// <para><c>flush table</c> empties chains but, in nft 1.0.6 and this kernel (measured), not set elements,
/// so each set is flushed explicitly before its elements are added; otherwise a removed node would stay
/// in <c>@nodes</c>.</para>
/// </summary>
public static class NodeFirewallCompiler
{
    public const string Family = "inet";

    public const string TableName = "trellis-node";

    /// <summary>
    /// Named so it survives <see cref="NftApplyMode.Refill"/> (an anonymous rule counter would restart every
    /// sync): <c>nft list counter inet trellis-node vxlan-dropped</c>.
    /// </summary>
    public const string VxlanDropCounter = "vxlan-dropped";

    private const string Table = Family + " " + TableName;

    public static IReadOnlyList<string> Validate(NodeFirewallInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var errors = new List<string>();
        if (input.VxlanPort is int port && port is < 1 or > 65535)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"vxlanPort: {port} is not a UDP port"));
        }
        foreach (var pod in input.PodCidrs)
        {
            // Also what keeps pod-to-pod traffic from ever being masqueraded: the rule masquerades pod
            // sources to destinations outside @cluster-cidrs, so a pod CIDR must lie inside one.
            if (!input.ClusterCidrs.Any(c => Covers(c, pod)))
            {
                errors.Add($"podCIDRs: {pod} is not inside any cluster CIDR ({string.Join(", ", input.ClusterCidrs)})");
            }
        }
        return errors;
    }

    /// <summary>The complete transaction for <c>nft -f -</c>.</summary>
    /// <exception cref="ArgumentException">The input fails <see cref="Validate"/>; the message lists why.</exception>
    public static string Compile(NodeFirewallInput input, NftApplyMode mode = NftApplyMode.Refill)
    {
        var errors = Validate(input);
        if (errors.Count > 0)
        {
            throw new ArgumentException("trellis-node firewall: " + string.Join("; ", errors), nameof(input));
        }

        var families = new List<FamilyPart>();
        foreach (var af in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
        {
            families.Add(new FamilyPart(af,
                Distinct(input.NodeIps.Where(ip => ip.AddressFamily == af)),
                Outermost(input.ClusterCidrs.Where(n => n.BaseAddress.AddressFamily == af)),
                Outermost(input.PodCidrs.Where(n => n.BaseAddress.AddressFamily == af))));
        }

        var w = new StringBuilder();
        w.Append("# trellis-node: owned by trellisd, replaced whole by this one atomic transaction (").Append(mode == NftApplyMode.Refill ? "refill" : "recreate").Append(")\n");
        w.Append("add table ").Append(Table).Append('\n');
        if (mode == NftApplyMode.Refill)
        {
            w.Append("flush table ").Append(Table).Append('\n');
        }
        else
        {
            w.Append("delete table ").Append(Table).Append('\n');
            w.Append("add table ").Append(Table).Append('\n');
        }

        // The table's objects — counter, sets of both families, chains — are the same whatever the input:
        // only set contents and rules vary. So a refill over any earlier table of this schema leaves exactly
        // this table, with nothing stale to delete (a set no longer declared would survive a flush, empty).
        w.Append("add counter ").Append(Table).Append(' ').Append(VxlanDropCounter).Append('\n');
        foreach (var f in families)
        {
            Set(w, mode, f.SetName("nodes"), f.AddrType, interval: false, f.NodeIps.Select(ip => ip.ToString()));
            Set(w, mode, f.SetName("cluster-cidrs"), f.AddrType, interval: true, f.ClusterCidrs.Select(n => n.ToString()));
            Set(w, mode, f.SetName("pod-cidrs"), f.AddrType, interval: true, f.PodCidrs.Select(n => n.ToString()));
        }

        // Rules name a family only when it is in use: an IPv4-only cluster's table has no ip6 rule (its
        // IPv6 sets stay empty), as kube-proxy and flannel only program families that are enabled.

        // input: only registered nodes may send to the VXLAN port. Otherwise anything that can reach the
        // node's UDP port — a pod included — could inject frames into the overlay, past every policy.
        // No VXLAN device (host-gw) means no socket to protect and no rule; the chain stays, so the
        // table has the same chains whichever backend wrote it.
        Chain(w, "input", "filter", "input", "filter");
        if (input.VxlanPort is int vxlanPort)
        {
            string port = vxlanPort.ToString(CultureInfo.InvariantCulture);
            foreach (var f in families.Where(f => f.NodeIps.Count > 0))
            {
                Rule(w, "input", $"udp dport {port} {f.Match} saddr @{f.SetName("nodes")} accept");
            }
            Rule(w, "input", $"udp dport {port} counter name \"{VxlanDropCounter}\" drop");
        }

        // forward: say explicitly that cluster traffic is forwarded (flannel's forward chain does the
        // same). Policy stays accept, as flannel insists: a drop policy here would cut the node off
        // from everything it forwards that is not pod traffic. (An accept in this table cannot override
        // a drop in another table's chain on the same hook; nftables evaluates every base chain.)
        Chain(w, "forward", "filter", "forward", "filter");
        Rule(w, "forward", "ct state established,related accept");
        foreach (var f in families.Where(f => f.ClusterCidrs.Count > 0))
        {
            Rule(w, "forward", $"{f.Match} saddr @{f.SetName("cluster-cidrs")} accept");
            Rule(w, "forward", $"{f.Match} daddr @{f.SetName("cluster-cidrs")} accept");
        }

        // postrouting: pods on this node talking to anything outside the cluster CIDR leave with the
        // node's address; pod-to-pod (any node) never matches. Multicast is left alone, as in flannel.
        // fully-random: the source port is picked at random, avoiding the SNAT port-reuse race kube-proxy
        // and flannel also turn it on for. A packet another table already NATed keeps that binding.
        Chain(w, "postrouting", "nat", "postrouting", "srcnat");
        if (input.Masquerade)
        {
            foreach (var f in families.Where(f => f.PodCidrs.Count > 0))
            {
                Rule(w, "postrouting",
                    $"{f.Match} saddr @{f.SetName("pod-cidrs")} {f.Match} daddr != @{f.SetName("cluster-cidrs")} {f.Match} daddr != {f.Multicast} masquerade fully-random");
            }
        }
        return w.ToString();
    }

    private static void Set(StringBuilder w, NftApplyMode mode, string name, string type, bool interval, IEnumerable<string> elements)
    {
        w.Append("add set ").Append(Table).Append(' ').Append(name).Append(" { type ").Append(type).Append(" ; ");
        if (interval)
        {
            w.Append("flags interval ; ");
        }
        w.Append("}\n");
        if (mode == NftApplyMode.Refill)
        {
            w.Append("flush set ").Append(Table).Append(' ').Append(name).Append('\n');
        }
        var list = elements.ToList();
        if (list.Count > 0)
        {
            // "elements = { }" and "add element … { }" are syntax errors: an empty set gets no line.
            w.Append("add element ").Append(Table).Append(' ').Append(name).Append(" { ").AppendJoin(", ", list).Append(" }\n");
        }
    }

    private static void Chain(StringBuilder w, string name, string type, string hook, string priority) =>
        w.Append("add chain ").Append(Table).Append(' ').Append(name)
            .Append(" { type ").Append(type).Append(" hook ").Append(hook).Append(" priority ").Append(priority).Append(" ; policy accept ; }\n");

    private static void Rule(StringBuilder w, string chain, string rule) =>
        w.Append("add rule ").Append(Table).Append(' ').Append(chain).Append(' ').Append(rule).Append('\n');

    private static List<IPAddress> Distinct(IEnumerable<IPAddress> ips) =>
        ips.DistinctBy(IPAddressMath.ToInteger).OrderBy(IPAddressMath.ToInteger).ToList();

    /// <summary>Sorted, without networks another one covers: nft refuses overlapping intervals in one set.</summary>
    private static List<IPNetwork> Outermost(IEnumerable<IPNetwork> networks)
    {
        var sorted = networks.Distinct()
            .OrderBy(n => IPAddressMath.ToInteger(n.BaseAddress)).ThenBy(n => n.PrefixLength).ToList();
        var result = new List<IPNetwork>();
        foreach (var n in sorted)
        {
            if (result.Count == 0 || !Covers(result[^1], n))
            {
                result.Add(n);
            }
        }
        return result;
    }

    private static bool Covers(IPNetwork outer, IPNetwork inner) =>
        outer.BaseAddress.AddressFamily == inner.BaseAddress.AddressFamily
        && outer.PrefixLength <= inner.PrefixLength
        && outer.Contains(inner.BaseAddress);

    private sealed record FamilyPart(AddressFamily Af, List<IPAddress> NodeIps, List<IPNetwork> ClusterCidrs, List<IPNetwork> PodCidrs)
    {
        public bool IsV4 => Af == AddressFamily.InterNetwork;

        public string Match => IsV4 ? "ip" : "ip6";

        public string AddrType => IsV4 ? "ipv4_addr" : "ipv6_addr";

        public string Multicast => IsV4 ? "224.0.0.0/4" : "ff00::/8";

        public string SetName(string baseName) => IsV4 ? baseName : baseName + "-v6";
    }
}
