using System.Net;
using Trellis.Core.Objects;

namespace Trellis.Core.Proxy;

/// <summary>Builds the chains, sets and maps of the table; one instance per compile.</summary>
internal sealed class TableBuilder
{
    // Chain names of kube-proxy's table (pkg/proxy/nftables/proxier.go), kept so its docs and tests read across.
    internal const string Services = "services";
    internal const string Masquerading = "masquerading";
    internal const string MarkForMasquerade = "mark-for-masquerade";
    internal const string FirewallCheck = "firewall-check";
    internal const string ServiceEndpointsCheck = "service-endpoints-check";
    internal const string NodePortEndpointsCheck = "nodeport-endpoints-check";
    internal const string ClusterIPsCheck = "cluster-ips-check";
    internal const string RejectChain = "reject-chain";

    internal const string ServiceIPsMap = "service-ips";
    internal const string ServiceNodePortsMap = "service-nodeports";
    internal const string NoEndpointServicesMap = "no-endpoint-services";
    internal const string NoEndpointNodePortsMap = "no-endpoint-nodeports";
    internal const string FirewallIPsMap = "firewall-ips";
    internal const string ClusterIPsSet = "cluster-ips";
    internal const string NodePortIPsSet = "nodeport-ips";

    private const string AddrProtoPortMap = "{ type ipv4_addr . inet_proto . inet_service : verdict ; }";
    private const string ProtoPortMap = "{ type inet_proto . inet_service : verdict ; }";
    private const string AddrSet = "{ type ipv4_addr ; }";
    private const string Mark = ProxyNames.MasqueradeMark;

    // Filter chains run before DNAT (-100) so they see the service address, not the endpoint; the post-DNAT
    // output chain sees what DNAT did not rewrite (a ClusterIP port with no service behind it). The no-endpoint
    // check of locally generated traffic is post-DNAT too, as in kube-proxy (filter-output at priority 0): the
    // node's own connection to an eTP:Local external address is short-circuited to every endpoint by nat-output,
    // so a pre-DNAT check would drop it when this node has no local endpoint (kube-proxy's
    // TestInternalExternalMasquerade "node to LB with eTP:Local").
    internal static readonly IReadOnlyList<ProxyChain> BaseChains =
    [
        new("filter-prerouting", new("filter", "prerouting", -110), ["ct state new jump " + FirewallCheck]),
        new("filter-input", new("filter", "input", -110), ["ct state new jump " + NodePortEndpointsCheck, "ct state new jump " + ServiceEndpointsCheck]),
        new("filter-forward", new("filter", "forward", -110), ["ct state new jump " + ServiceEndpointsCheck, "ct state new jump " + ClusterIPsCheck]),
        new("filter-output", new("filter", "output", -110), ["ct state new jump " + FirewallCheck]),
        new("filter-output-post-dnat", new("filter", "output", -90), ["ct state new jump " + ServiceEndpointsCheck, "ct state new jump " + ClusterIPsCheck]),
        new("nat-prerouting", new("nat", "prerouting", -100), ["jump " + Services]),
        new("nat-output", new("nat", "output", -100), ["jump " + Services]),
        new("nat-postrouting", new("nat", "postrouting", 100), ["jump " + Masquerading]),
    ];

    private readonly ProxyInput _input;

    /// <summary>Fragment mode (one Service at a time): every map/set element claimed, in claim order.</summary>
    internal List<ProxyClaim>? Claims { get; init; }

    /// <summary>Fragment mode: per-port problems in order, a claim's conflict left to the merge.</summary>
    internal List<ProxyProblemItem>? Items { get; init; }

    internal IReadOnlyDictionary<string, List<string>> ChainRules => _chains;

    internal IEnumerable<(string Name, bool IsMap, string Declaration)> SetDeclarations =>
        _sets.Select(kv => (kv.Key, kv.Value.IsMap, kv.Value.Declaration));
    private readonly Dictionary<string, List<string>> _chains = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SetBuilder> _sets = new(StringComparer.Ordinal);
    private readonly string? _ifLocal;
    private readonly string? _ifNotLocal;
    private readonly IPAddress? _primaryNodeIP;

    public TableBuilder(ProxyInput input)
    {
        _input = input;
        _primaryNodeIP = input.NodeIPs.FirstOrDefault(ProxyCompiler.IsIPv4);
        var podCidrs = Outermost(input.ClusterCidrs.Where(c => ProxyCompiler.IsIPv4(c.BaseAddress)));
        if (podCidrs.Count > 0)
        {
            string match = AnonymousSet(podCidrs.Select(c => c.ToString()));
            _ifLocal = "ip saddr " + match;
            _ifNotLocal = "ip saddr != " + match;
        }

        foreach (var name in (string[])[Services, Masquerading, MarkForMasquerade, FirewallCheck, ServiceEndpointsCheck, NodePortEndpointsCheck, ClusterIPsCheck, RejectChain])
        {
            _chains[name] = [];
        }
        Rule(MarkForMasquerade, $"meta mark set meta mark | {Mark}");
        Rule(Masquerading, $"meta mark & {Mark} == 0x0 return");
        Rule(Masquerading, $"meta mark set meta mark ^ {Mark}");
        Rule(Masquerading, "masquerade fully-random");
        Rule(ClusterIPsCheck, $"ip daddr @{ClusterIPsSet} reject comment \"Reject traffic to invalid ports of ClusterIPs\"");
        var serviceCidrs = Outermost(input.ServiceCidrs.Where(c => ProxyCompiler.IsIPv4(c.BaseAddress)));
        if (serviceCidrs.Count > 0)
        {
            Rule(ClusterIPsCheck, $"ip daddr {AnonymousSet(serviceCidrs.Select(c => c.ToString()))} drop comment \"Drop traffic to unallocated ClusterIPs\"");
        }
        Rule(RejectChain, "reject");
        Rule(ServiceEndpointsCheck, $"ip daddr . meta l4proto . th dport vmap @{NoEndpointServicesMap}");
        Rule(NodePortEndpointsCheck, $"ip daddr @{NodePortIPsSet} meta l4proto . th dport vmap @{NoEndpointNodePortsMap}");
        Rule(FirewallCheck, $"ip daddr . meta l4proto . th dport vmap @{FirewallIPsMap}");
        Rule(Services, $"ip daddr . meta l4proto . th dport vmap @{ServiceIPsMap}");
        Rule(Services, $"ip daddr @{NodePortIPsSet} meta l4proto . th dport vmap @{ServiceNodePortsMap}");

        Set(ClusterIPsSet, false, AddrSet);
        Set(NodePortIPsSet, false, AddrSet);
        Set(ServiceIPsMap, true, AddrProtoPortMap);
        Set(ServiceNodePortsMap, true, ProtoPortMap);
        Set(NoEndpointServicesMap, true, AddrProtoPortMap);
        Set(NoEndpointNodePortsMap, true, ProtoPortMap);
        Set(FirewallIPsMap, true, AddrProtoPortMap);

        // kube-proxy's --nodeport-addresses "primary": the node's own addresses; loopback NodePorts are not supported.
        var nodePortIPs = (input.NodePortAddresses.Count > 0 ? input.NodePortAddresses : input.NodeIPs)
            .Where(ip => ProxyCompiler.IsIPv4(ip) && !IPAddress.IsLoopback(ip));
        foreach (var ip in nodePortIPs)
        {
            _sets[NodePortIPsSet].TryAdd(ip.ToString(), null, "");
        }
    }

    public ProxyServicePort AddServicePort(ServicePortSpec sp, IReadOnlyList<ProxyEndpoint> all, List<string> problems)
    {
        string portBase = ProxyChainNames.ServicePortBase(sp.Namespace, sp.Name, sp.Proto, sp.PortName);
        string clusterPolicyChain = "service-" + portBase;
        string localPolicyChain = "local-" + portBase;
        string externalChain = "external-" + portBase;
        string firewallChain = "firewall-" + portBase;

        var (clusterEps, localEps, reachable, hasEndpoints) = Categorize(all, sp);

        bool usesClusterPolicyChain = clusterEps.Count > 0 && sp.UsesClusterEndpoints;
        bool usesLocalPolicyChain = localEps.Count > 0 && sp.UsesLocalEndpoints;
        string internalChain = sp.InternalPolicyLocal ? localPolicyChain : clusterPolicyChain;
        bool hasInternal = hasEndpoints && !(sp.InternalPolicyLocal && localEps.Count == 0);
        string externalPolicyChain = sp.ExternalPolicyLocal ? localPolicyChain : clusterPolicyChain;
        bool hasExternal = hasEndpoints && !(sp.ExternalPolicyLocal && localEps.Count == 0);
        // Even with no endpoint usable for external traffic, the external chain carries the short-circuit
        // rules for pods and the node itself, which may use cluster-wide endpoints.
        bool usesExternalChain = hasEndpoints && sp.ExternallyAccessible;
        bool usesFirewallChain = sp.LoadBalancerIPs.Count > 0 && sp.HasSourceRanges;

        var endpointChains = new Dictionary<ProxyEndpoint, (string Chain, string Affinity)>();
        foreach (var ep in reachable)
        {
            string epBase = ProxyChainNames.EndpointBase(sp.Namespace, sp.Name, sp.Proto, sp.PortName, ep);
            endpointChains[ep] = ("endpoint-" + epBase, "affinity-" + epBase);
            EnsureChain("endpoint-" + epBase);
        }
        if (usesClusterPolicyChain)
        {
            EnsureChain(clusterPolicyChain);
        }
        if (usesLocalPolicyChain)
        {
            EnsureChain(localPolicyChain);
        }
        if (usesExternalChain)
        {
            EnsureChain(externalChain);
        }
        if (usesFirewallChain)
        {
            EnsureChain(firewallChain);
        }

        // No endpoints anywhere: refuse the connection (reject); endpoints, but none this policy may use: drop,
        // as kube-proxy does, so a client retries rather than concluding the service is down.
        string internalFilter = hasEndpoints ? "drop" : "goto " + RejectChain;
        string externalFilter = internalFilter;
        string port = ProxyCompiler.I(sp.Port);
        string Key(IPAddress ip) => $"{ip} . {sp.Proto} . {port}";

        var map = (string mapName, string key, string verdict) => Element(mapName, key, verdict, sp, problems);

        if (Claims is not null)
        {
            Claims.Add(new ProxyClaim(ClusterIPsSet, sp.ClusterIP.ToString(), sp.ClusterIP.ToString(), sp.Display));
        }
        _sets[ClusterIPsSet].TryAdd(sp.ClusterIP.ToString(), null, "");
        if (hasInternal)
        {
            map(ServiceIPsMap, Key(sp.ClusterIP), "goto " + internalChain);
        }
        else
        {
            map(NoEndpointServicesMap, Key(sp.ClusterIP), internalFilter);
        }

        foreach (var ip in sp.ExternalIPs)
        {
            if (hasEndpoints)
            {
                map(ServiceIPsMap, Key(ip), "goto " + externalChain);
            }
            if (!hasExternal)
            {
                map(NoEndpointServicesMap, Key(ip), externalFilter);
            }
        }
        foreach (var ip in sp.LoadBalancerIPs)
        {
            if (hasEndpoints)
            {
                map(ServiceIPsMap, Key(ip), "goto " + externalChain);
            }
            if (usesFirewallChain)
            {
                map(FirewallIPsMap, Key(ip), "goto " + firewallChain);
            }
            if (!hasExternal)
            {
                map(NoEndpointServicesMap, Key(ip), externalFilter);
            }
        }
        if (sp.NodePort is int nodePort)
        {
            string npKey = $"{sp.Proto} . {ProxyCompiler.I(nodePort)}";
            // NodePorts are not subject to loadBalancerSourceRanges (kube-proxy: "for better or for worse").
            if (hasEndpoints)
            {
                map(ServiceNodePortsMap, npKey, "goto " + externalChain);
            }
            if (!hasExternal)
            {
                map(NoEndpointNodePortsMap, npKey, externalFilter);
            }
        }

        if (hasInternal)
        {
            if (_input.MasqueradeAll)
            {
                Rule(internalChain, $"ip daddr {sp.ClusterIP} {sp.Proto} dport {port} jump {MarkForMasquerade}");
            }
            else if (_ifNotLocal is not null)
            {
                // Off-cluster sources reaching a ClusterIP (a route to the service range via some node) may be
                // answered through another node: masquerade so replies come back this way.
                Rule(internalChain, $"ip daddr {sp.ClusterIP} {sp.Proto} dport {port} {_ifNotLocal} jump {MarkForMasquerade}");
            }
        }

        if (usesExternalChain)
        {
            if (!sp.ExternalPolicyLocal)
            {
                // The endpoint may be on another node: masquerade so the reply returns through this one.
                Rule(externalChain, $"jump {MarkForMasquerade}");
            }
            else
            {
                if (_ifLocal is not null)
                {
                    // A pod reaching an external address of its own cluster behaves as if it had gone out to the
                    // load balancer and come back in: neither traffic policy applies.
                    Rule(externalChain, $"{_ifLocal} goto {clusterPolicyChain} comment \"short-circuit pod traffic\"");
                }
                // From the node itself the source would be a local address (often the VIP): masquerade it, and
                // let it use any endpoint.
                Rule(externalChain, $"fib saddr type local jump {MarkForMasquerade} comment \"masquerade local traffic\"");
                Rule(externalChain, $"fib saddr type local goto {clusterPolicyChain} comment \"short-circuit local traffic\"");
            }
            if (hasExternal)
            {
                Rule(externalChain, $"goto {externalPolicyChain}");
            }
        }

        if (usesFirewallChain)
        {
            var sources = new List<IPNetwork>(sp.SourceRanges);
            if (_primaryNodeIP is not null && sources.Any(r => r.Contains(_primaryNodeIP)))
            {
                // VIP-style load balancers put the VIP on the node: a request from the node to the VIP loops back
                // with the VIP as its source and must not be dropped.
                sources.AddRange(sp.LoadBalancerIPs.Select(ip => new IPNetwork(ip, 32)));
            }
            var allowed = Outermost(sources);
            // Ranges given but none usable for IPv4: the owner asked for a restriction, so allow nobody.
            Rule(firewallChain, allowed.Count == 0 ? "drop" : $"ip saddr != {AnonymousSet(allowed.Select(Cidr))} drop");
        }

        if (sp.AffinityTimeoutSeconds is int timeout)
        {
            foreach (var ep in reachable)
            {
                // "dynamic" as kube-proxy: the kernel adds it to a set that "update" fills, and a later "add"
                // without it would then differ from the existing set.
                Set(endpointChains[ep].Affinity, false, $"{{ type ipv4_addr ; flags dynamic,timeout ; timeout {ProxyCompiler.I(timeout)}s ; }}");
            }
        }
        if (usesClusterPolicyChain)
        {
            WriteDispatch(clusterPolicyChain, clusterEps, endpointChains, sp);
        }
        if (usesLocalPolicyChain)
        {
            WriteDispatch(localPolicyChain, localEps, endpointChains, sp);
        }
        foreach (var ep in reachable)
        {
            var (chain, affinity) = endpointChains[ep];
            // Hairpin: a pod reaching itself through the service must see the node as the source, or its reply
            // would bypass the DNAT.
            Rule(chain, $"ip saddr {ep.Ip} jump {MarkForMasquerade}");
            if (sp.AffinityTimeoutSeconds is not null)
            {
                Rule(chain, $"update @{affinity} {{ ip saddr }}");
            }
            Rule(chain, $"meta l4proto {sp.Proto} dnat to {ep}");
        }

        return new ProxyServicePort(sp.Namespace, sp.Name, sp.PortName, sp.Protocol, [sp.ClusterIP], sp.Port, sp.NodePort,
            sp.ExternalIPs, sp.LoadBalancerIPs, all, clusterEps, localEps, sp.ExternalPolicyLocal, sp.InternalPolicyLocal,
            sp.HealthCheckNodePort);
    }

    public ProxyRuleset Build(List<ProxyServicePort> servicePorts, List<string> problems)
    {
        var chains = new List<ProxyChain>(BaseChains.Count + _chains.Count);
        chains.AddRange(BaseChains);
        chains.AddRange(_chains.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new ProxyChain(kv.Key, null, kv.Value)));
        var sets = _sets.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value.Build(kv.Key)).ToList();
        return new ProxyRuleset(chains, sets, servicePorts, problems);
    }

    /// <summary>
    /// kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go) without topology hints: Cluster policy uses the
    /// ready endpoints, or if none is ready anywhere the serving+terminating ones; Local policy the same among
    /// this node's endpoints.
    /// </summary>
    internal static (List<ProxyEndpoint> Cluster, List<ProxyEndpoint> Local, List<ProxyEndpoint> Reachable, bool HasAny) Categorize(
        IReadOnlyList<ProxyEndpoint> all, ServicePortSpec sp)
    {
        var cluster = new List<ProxyEndpoint>();
        bool hasAny = false;
        if (sp.UsesClusterEndpoints)
        {
            cluster = all.Where(e => e.Ready).ToList();
            if (cluster.Count == 0)
            {
                cluster = all.Where(e => e.Serving && e.Terminating).ToList();
            }
            hasAny = cluster.Count > 0;
        }
        if (!sp.UsesLocalEndpoints)
        {
            return (cluster, [], cluster, hasAny);
        }
        bool localReady = false, localServingTerminating = false;
        foreach (var e in all)
        {
            if (e.Ready)
            {
                hasAny = true;
                localReady |= e.IsLocal;
            }
            else if (e.Serving && e.Terminating)
            {
                hasAny = true;
                localServingTerminating |= e.IsLocal;
            }
        }
        var local = localReady ? all.Where(e => e.IsLocal && e.Ready).ToList()
            : localServingTerminating ? all.Where(e => e.IsLocal && e.Serving && e.Terminating).ToList()
            : [];
        if (!sp.UsesClusterEndpoints)
        {
            return (cluster, local, local, hasAny);
        }
        var reachable = cluster.Union(local).ToList();
        reachable.Sort(static (a, b) =>
        {
            int c = EndpointIndex.CompareIp(a.Ip, b.Ip);
            return c != 0 ? c : a.Port.CompareTo(b.Port);
        });
        return (cluster, local, reachable, hasAny);
    }

    private void WriteDispatch(string chain, List<ProxyEndpoint> endpoints, Dictionary<ProxyEndpoint, (string Chain, string Affinity)> names, ServicePortSpec sp)
    {
        if (sp.AffinityTimeoutSeconds is not null)
        {
            foreach (var ep in endpoints)
            {
                Rule(chain, $"ip saddr @{names[ep].Affinity} goto {names[ep].Chain}");
            }
        }
        var arms = endpoints.Select((ep, i) => $"{ProxyCompiler.I(i)} : goto {names[ep].Chain}");
        Rule(chain, $"numgen random mod {ProxyCompiler.I(endpoints.Count)} vmap {{ {string.Join(", ", arms)} }}");
    }

    private void Element(string mapName, string key, string verdict, ServicePortSpec sp, List<string> problems)
    {
        if (Claims is not null && Items is not null)
        {
            // Fragment mode: who wins a key is decided when fragments are merged (IncrementalProxyCompiler).
            Items.Add(new ProxyProblemItem(null, Claims.Count));
            Claims.Add(new ProxyClaim(mapName, key, key + " : " + verdict, sp.Display));
            _sets[mapName].TryAdd(key, verdict, sp.Display);
            return;
        }
        if (!_sets[mapName].TryAdd(key, verdict, sp.Display))
        {
            var owner = _sets[mapName].Owner(key);
            problems.Add($"Service {sp.Namespace}/{sp.Name}: {mapName} {key} is already taken by {owner}; this destination of {sp.Display} is not programmed");
        }
    }

    private void EnsureChain(string name) => _chains.TryAdd(name, []);

    private void Rule(string chain, string rule) => _chains[chain].Add(rule);

    private void Set(string name, bool isMap, string declaration) => _sets.TryAdd(name, new SetBuilder(isMap, declaration));

    private static string Cidr(IPNetwork n) => n.PrefixLength == 32 ? n.BaseAddress.ToString() : n.ToString();

    private static string AnonymousSet(IEnumerable<string> items)
    {
        var list = items.ToList();
        return list.Count == 1 ? list[0] : "{ " + string.Join(", ", list) + " }";
    }

    /// <summary>
    /// Distinct networks with those inside another removed, in their given order: an anonymous interval set
    /// refuses overlapping elements, and a covered range adds nothing.
    /// </summary>
    internal static List<IPNetwork> Outermost(IEnumerable<IPNetwork> networks)
    {
        var list = networks.Distinct().ToList();
        return list.Where((n, i) => !list.Where((o, j) => j != i && o.PrefixLength <= n.PrefixLength && o.Contains(n.BaseAddress)
            && (o.PrefixLength < n.PrefixLength || j < i)).Any()).ToList();
    }

    private sealed class SetBuilder(bool isMap, string declaration)
    {
        public bool IsMap => isMap;

        public string Declaration => declaration;

        private readonly Dictionary<string, (string Element, string Owner)> _elements = new(StringComparer.Ordinal);

        public bool TryAdd(string key, string? verdict, string owner)
        {
            string element = verdict is null ? key : key + " : " + verdict;
            if (_elements.TryGetValue(key, out var existing))
            {
                return existing.Element == element;
            }
            _elements[key] = (element, owner);
            return true;
        }

        public string Owner(string key) => _elements[key].Owner;

        public ProxySet Build(string name)
        {
            var elements = _elements.Values.Select(e => e.Element).ToList();
            elements.Sort(StringComparer.Ordinal);
            return new ProxySet(name, isMap, declaration, elements);
        }
    }
}
