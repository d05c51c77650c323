using System.Globalization;
using System.Net;
using Trellis.Core.Proxy;

namespace Trellis.Agent.Proxy;

/// <summary>One <c>conntrack -D</c> filter: UDP entries to a service address (or any address, for a NodePort) and port, optionally only those DNATed to one endpoint.</summary>
public sealed record ConntrackDeletion(IPAddress? OrigDst, int OrigDstPort, IPAddress? DnatTo)
{
    public IReadOnlyList<string> ToArgs()
    {
        var args = new List<string> { "-D", "-p", "udp" };
        if (OrigDst is not null)
        {
            args.AddRange(["--orig-dst", OrigDst.ToString()]);
        }
        args.AddRange(["--orig-port-dst", OrigDstPort.ToString(CultureInfo.InvariantCulture)]);
        if (DnatTo is not null)
        {
            args.AddRange(["--dst-nat", DnatTo.ToString()]);
        }
        return args;
    }

    public override string ToString() => "conntrack " + string.Join(' ', ToArgs());
}

/// <summary>
/// Which UDP conntrack entries a sync made stale — kube-proxy's cleanup after every sync. UDP has no
/// connection end, so a client that keeps sending from the same source port (a DNS resolver does) keeps
/// hitting the conntrack entry — and its NAT to an endpoint that is gone — forever, unless it is deleted:
/// <list type="bullet">
/// <item>an endpoint that a UDP service port used before this sync and uses no longer: entries to each of the
/// port's service addresses (and its NodePort) DNATed to that endpoint;</item>
/// <item>a UDP service port that had no usable endpoint and now has one: entries to its addresses, which were
/// made while packets were rejected or went nowhere, and would keep going nowhere.</item>
/// </list>
/// TCP needs nothing: its entries end with the connection, and a new connection is NATed afresh.
/// </summary>
public static class StaleConntrack
{
    public static IReadOnlyList<ConntrackDeletion> Find(IReadOnlyList<ProxyServicePort> before, IReadOnlyList<ProxyServicePort> after)
    {
        var now = after.Where(p => p.Protocol == "UDP").ToDictionary(Key);
        var deletions = new List<ConntrackDeletion>();
        foreach (var old in before.Where(p => p.Protocol == "UDP"))
        {
            var current = now.GetValueOrDefault(Key(old));
            var stillUsed = current is null ? [] : Used(current).ToHashSet();
            foreach (var ep in Used(old).Where(e => !stillUsed.Contains(e)).Distinct())
            {
                foreach (var addr in Addresses(old))
                {
                    deletions.Add(new ConntrackDeletion(addr, old.Port, ep));
                }
                if (old.NodePort is int np)
                {
                    deletions.Add(new ConntrackDeletion(null, np, ep));
                }
            }
        }
        var previous = before.Where(p => p.Protocol == "UDP").ToDictionary(Key);
        foreach (var cur in now.Values)
        {
            bool hadNone = !previous.TryGetValue(Key(cur), out var old) || !Used(old).Any();
            if (hadNone && Used(cur).Any())
            {
                foreach (var addr in Addresses(cur))
                {
                    deletions.Add(new ConntrackDeletion(addr, cur.Port, null));
                }
                if (cur.NodePort is int np)
                {
                    deletions.Add(new ConntrackDeletion(null, np, null));
                }
            }
        }
        return deletions.Distinct().ToList();
    }

    private static string Key(ProxyServicePort p) => $"{p.Namespace}/{p.Name}/{p.PortName}/{p.Protocol}";

    private static IEnumerable<IPAddress> Used(ProxyServicePort p) =>
        p.ClusterEndpoints.Concat(p.LocalEndpoints).Select(e => e.Ip);

    private static IEnumerable<IPAddress> Addresses(ProxyServicePort p) =>
        p.ClusterIPs.Concat(p.ExternalIPs).Concat(p.LoadBalancerIPs).Distinct();
}
