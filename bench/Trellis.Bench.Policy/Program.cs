using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Core.Policies;
using Trellis.Netlink;
using Trellis.Nftables;
using Trellis.Store;

// NetworkPolicy benchmarks, same run, same machine (root; throwaway netns trl-nb-*; never the host's firewall):
//  c. compile + apply of 1,000 policies over 1,000 pods (4 nodes, node-1's table): PolicyCompiler + one `nft -f`,
//     against Calico's iptables dataplane layout for the same policies on the same node (ipsets per selector and
//     named port, cali-pi-/cali-po- chains per policy, cali-tw-/cali-fw- chains per local pod; `ipset restore`
//     + `iptables-restore`); the peer's time is kernel programming only (Felix's own computation is not in it);
//  b. TCP connection setup time through a node netns that forwards client pod -> server pod, with no table, with
//     the policy table for 0 policies and for 1,000 policies selecting the server's namespace, back to back;
//  a. programming latency in a real lab: `trellis apply` of a deny policy (and `trellis delete` of it) until a
//     probe connection from another pod sees it enforced, p50/p99 over --applies rounds.
// Rows are printed as they are measured. Usage (root, after ./scripts/build.sh):
//   dotnet run -c Release --project bench/Trellis.Bench.Policy -- [--parts c,b,a] [--applies 20] [--connects 1000]
//        [--policies 1000] [--pods 1000] [--trellis artifacts/bin/trellis]
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var parts = OptS("--parts", "c,b,a").Split(',').ToHashSet();
int applies = Opt("--applies", 20);
int connects = Opt("--connects", 1000);
int nPolicies = Opt("--policies", 1000);
int nPods = Opt("--pods", 1000);
string trellis = OptS("--trellis", Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../artifacts/bin/trellis")));
string id = Guid.NewGuid().ToString("N")[..6];
Out($"NetworkPolicy, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z; load at start: {Uptime()}");

if (parts.Contains("c"))
{
    PartCompileApply();
}
if (parts.Contains("b"))
{
    PartConnect();
}
if (parts.Contains("a"))
{
    await PartLabAsync();
}
return 0;

// ---------------------------------------------------------------- c. compile + apply, Calico-style peer
void PartCompileApply()
{
    string ns = $"trl-nb-{id}-c";
    try
    {
        Sh("ip", "netns", "add", ns);
        var nft = new NftClient(new NftClientOptions { NetnsPath = "/run/netns/" + ns });
        var snapshot = ScaleSnapshot(nPods, nPolicies);
        // Warm-up (JIT, first transaction in a fresh netns), untimed.
        nft.Apply(PolicyCompiler.Compile(ScaleSnapshot(40, 10), "node-1").Dump());
        Sh("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "trellis-policy");
        var (calicoSets, calicoRules, calicoStats) = CalicoLayout(snapshot, "node-1");
        RunCalico(ns, calicoSets, calicoRules);
        CalicoClean(ns);
        Out("");
        Out($"Compile + apply, {nPolicies:N0} policies over {nPods:N0} pods on 4 nodes (node-1's rules), 3 rounds alternating, medians");
        Out("");
        Out("| round | Calico iptables layout (ipset restore + iptables-restore) | trellis (index + compile + text + nft -f) | of which nft -f | trellis / Calico | load |");
        Out("|---|---|---|---|---|---|");
        var tr = new List<(double Total, double Nft)>();
        var ca = new List<double>();
        int bytes = 0, elements = 0, chains = 0;
        for (int round = 0; round < 3; round++)
        {
            var sw = Stopwatch.StartNew();
            var index = new PolicyIndex(snapshot);
            var ruleset = PolicyCompiler.Compile(index, "node-1");
            string text = ruleset.Dump();
            double compile = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            nft.Apply(text);
            double apply = sw.Elapsed.TotalMilliseconds;
            tr.Add((compile + apply, apply));
            bytes = text.Length;
            elements = ruleset.Sets.Values.Sum(s => s.Elements.Count);
            chains = ruleset.Chains.Count;
            Sh("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "trellis-policy");
            double calico = RunCalico(ns, calicoSets, calicoRules);
            ca.Add(calico);
            CalicoClean(ns);
            Out($"| {round + 1} | {Ms(calico)} | {Ms(compile + apply)} (compile {Ms(compile)}) | {Ms(apply)} | {(compile + apply) / calico:0.00} | {Load1()} |");
        }
        double tMed = Median(tr.Select(t => t.Total).ToList()), nMed = Median(tr.Select(t => t.Nft).ToList()), cMed = Median(ca);
        Out($"| median | {Ms(cMed)} | {Ms(tMed)} | {Ms(nMed)} | {tMed / cMed:0.00} (nft -f alone: {nMed / cMed:0.00}) | |");
        Out("");
        Out($"- trellis: one transaction of {bytes / 1024} KiB, {elements:N0} set/map elements, {chains} chains. Calico layout: {calicoStats}.");
    }
    finally
    {
        ShQuiet("ip", "netns", "delete", ns);
    }
}

double RunCalico(string ns, string sets, string rules)
{
    var sw = Stopwatch.StartNew();
    Pipe(["ip", "netns", "exec", ns, "ipset", "restore"], sets);
    Pipe(["ip", "netns", "exec", ns, "iptables-restore", "--noflush"], rules);
    return sw.Elapsed.TotalMilliseconds;
}

void CalicoClean(string ns)
{
    Sh("ip", "netns", "exec", ns, "iptables", "-t", "filter", "-F");
    Sh("ip", "netns", "exec", ns, "iptables", "-t", "filter", "-X");
    Sh("ip", "netns", "exec", ns, "ipset", "destroy");
}

// Calico's iptables dataplane (felix/rules): policies render to cali-pi-<hash> (ingress) / cali-po-<hash> (egress)
// chains whose rules set the accept mark 0x10000 and return; selectors and named ports become ipsets; each local
// workload gets cali-tw-<if> / cali-fw-<if> chains that clear the mark, jump to every policy selecting it in order,
// return on the mark and drop otherwise, reached from cali-FORWARD through the dispatch chains (Calico dispatches
// by interface name; with no interfaces here, by pod address — the same one rule per local workload).
(string Sets, string Rules, string Stats) CalicoLayout(PolicySnapshot snapshot, string node)
{
    var pods = snapshot.Pods.Select(p => (Ns: p.Namespace ?? "", Labels: p.Metadata.Labels, Ip: (string?)p.Json["status"]?["podIP"]?.GetValue<string>() ?? "",
        Node: p.NodeName, Http: (int?)p.Json["spec"]!["containers"]![0]!["ports"]![0]!["containerPort"]!.GetValue<int>() ?? 0)).ToList();
    var nsLabels = snapshot.Namespaces.ToDictionary(n => n.Name, n => n.Metadata.Labels);
    var sets = new StringBuilder();
    var setNames = new Dictionary<string, string>(StringComparer.Ordinal);
    string Set(string key, string type, IEnumerable<string> members)
    {
        if (setNames.TryGetValue(key, out var name))
        {
            return name;
        }
        name = "cali40" + Hash(key, 16);
        setNames[key] = name;
        sets.Append($"create {name} {type} family inet hashsize 1024 maxelem 1048576\n");
        foreach (var m in members)
        {
            sets.Append($"add {name} {m}\n");
        }
        return name;
    }
    static bool Match(IReadOnlyDictionary<string, string> labels, JsonNode? sel) =>
        sel?["matchLabels"] is not JsonObject ml || ml.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value!.GetValue<string>());
    var head = new StringBuilder("*filter\n:cali-FORWARD - [0:0]\n:cali-to-wl-dispatch - [0:0]\n:cali-from-wl-dispatch - [0:0]\n");
    var body = new StringBuilder();
    body.Append("-A FORWARD -m comment --comment \"cali:wUHhoiAYhphO9Mso\" -j cali-FORWARD\n");
    body.Append("-A cali-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A cali-FORWARD -m conntrack --ctstate INVALID -j DROP\n");
    body.Append("-A cali-FORWARD -j cali-from-wl-dispatch\n-A cali-FORWARD -j cali-to-wl-dispatch\n-A cali-FORWARD -j ACCEPT\n");
    var local = pods.Where(p => p.Node == node).ToList();
    var policyChains = new Dictionary<string, string>(StringComparer.Ordinal);
    var perPodIn = local.ToDictionary(p => p.Ip, _ => new List<string>());
    var perPodOut = local.ToDictionary(p => p.Ip, _ => new List<string>());
    int rules = 0;
    foreach (var pol in snapshot.Policies)
    {
        string pns = pol.Namespace ?? "";
        var spec = pol.Json["spec"]!;
        var selected = local.Where(p => p.Ns == pns && Match(p.Labels, spec["podSelector"])).ToList();
        if (selected.Count == 0)
        {
            continue; // Felix renders only the policies that select a local workload
        }
        foreach (var (dir, key, prefix) in new[] { (true, "ingress", "cali-pi-"), (false, "egress", "cali-po-") })
        {
            if (spec[key] is not JsonArray ruleList)
            {
                continue;
            }
            string chain = prefix + Hash(pns + "/" + pol.Name + key, 16);
            head.Append($":{chain} - [0:0]\n");
            foreach (var p in selected)
            {
                (dir ? perPodIn : perPodOut)[p.Ip].Add(chain);
            }
            foreach (var rule in ruleList)
            {
                var peers = rule![dir ? "from" : "to"] as JsonArray;
                var matches = new List<string>();
                foreach (var peer in peers!)
                {
                    if (peer!["ipBlock"] is { } block)
                    {
                        string cidr = block["cidr"]!.GetValue<string>();
                        var except = (block["except"] as JsonArray)?.Select(e => e!.GetValue<string>()).ToList() ?? [];
                        string net = Set("net:" + cidr, "hash:net", [cidr]);
                        string ex = except.Count > 0 ? " -m set ! --match-set " + Set("net:" + string.Join(",", except), "hash:net", except) + (dir ? " src" : " dst") : "";
                        matches.Add($"-m set --match-set {net} {(dir ? "src" : "dst")}{ex}");
                        continue;
                    }
                    var nsSel = peer["namespaceSelector"];
                    var podSel = peer["podSelector"];
                    var ips = pods.Where(p => (nsSel is null ? p.Ns == pns : Match(nsLabels[p.Ns], nsSel)) && Match(p.Labels, podSel)).Select(p => p.Ip);
                    string selKey = "sel:" + (nsSel?.ToJsonString() ?? "ns=" + pns) + "|" + (podSel?.ToJsonString() ?? "");
                    matches.Add($"-m set --match-set {Set(selKey, "hash:ip", ips)} {(dir ? "src" : "dst")}");
                }
                foreach (var port in (rule["ports"] as JsonArray) ?? [])
                {
                    string proto = port!["protocol"]?.GetValue<string>().ToLowerInvariant() ?? "tcp";
                    string portMatch;
                    if (port["port"] is JsonValue v && v.TryGetValue<string>(out var named))
                    {
                        // Named port: Calico's ipset of ip,proto:port over the pods that resolve it (the selected pods
                        // for ingress, the peers for egress — here all pods carry "http").
                        // Felix shares one set per (selector, port name): the policy's selected pods for ingress,
                        // the rule's peer pods for egress.
                        var ownerSel = dir ? spec["podSelector"] : (peers.FirstOrDefault()?["podSelector"]);
                        var owners = (dir ? selected : pods.Where(p => p.Ns == pns && Match(p.Labels, ownerSel))).Select(p => (p.Ip, p.Http));
                        string ownerKey = $"np:{dir}:{pns}:{ownerSel?.ToJsonString()}:{named}:{proto}";
                        portMatch = $"-m set --match-set {Set(ownerKey, "hash:ip,port", owners.Select(o => $"{o.Ip},{proto}:{o.Http}"))} dst,dst";
                    }
                    else
                    {
                        int p0 = port["port"]!.GetValue<int>();
                        portMatch = port["endPort"] is { } end ? $"-m multiport --dports {p0}:{end.GetValue<int>()}" : $"-m multiport --dports {p0}";
                    }
                    foreach (var m in matches)
                    {
                        body.Append($"-A {chain} -p {proto} {m} {portMatch} -j MARK --set-xmark 0x10000/0x10000\n");
                        rules++;
                    }
                }
                body.Append($"-A {chain} -m mark --mark 0x10000/0x10000 -j RETURN\n");
                rules++;
            }
        }
    }
    foreach (var (ip, dir, chains) in perPodIn.Select(kv => (Ip: kv.Key, Dir: true, Chains: kv.Value)).Concat(perPodOut.Select(kv => (Ip: kv.Key, Dir: false, Chains: kv.Value))))
    {
        if (chains.Count == 0)
        {
            continue;
        }
        string wl = (dir ? "cali-tw-" : "cali-fw-") + Hash(ip, 11);
        head.Append($":{wl} - [0:0]\n");
        body.Append($"-A {(dir ? "cali-to-wl-dispatch" : "cali-from-wl-dispatch")} {(dir ? "-d" : "-s")} {ip}/32 -g {wl}\n");
        body.Append($"-A {wl} -j MARK --set-xmark 0x0/0x10000\n");
        foreach (var c in chains)
        {
            body.Append($"-A {wl} -m mark --mark 0x0/0x10000 -j {c}\n");
            body.Append($"-A {wl} -m mark --mark 0x10000/0x10000 -j RETURN\n");
        }
        body.Append($"-A {wl} -m comment --comment \"cali:Drop if no policies passed packet\" -j DROP\n");
        rules += 3 + 2 * chains.Count;
    }
    string stats = $"{setNames.Count} ipsets, {rules:N0} rules in {head.ToString().Count(c => c == '\n') - 1} chains, {(sets.Length + head.Length + body.Length) / 1024} KiB of restore input";
    return (sets.ToString(), head.Append(body).Append("COMMIT\n").ToString(), stats);
}

// ---------------------------------------------------------------- b. connection setup through the table
void PartConnect()
{
    string nodeNs = $"trl-nb-{id}-n", cliNs = $"trl-nb-{id}-a", srvNs = $"trl-nb-{id}-b";
    Socket? listener = null;
    try
    {
        foreach (var n in new[] { nodeNs, cliNs, srvNs })
        {
            Sh("ip", "netns", "add", n);
            Sh("ip", "-n", n, "link", "set", "lo", "up");
        }
        // client 10.244.1.10 -- node (forwards) -- server 10.244.1.20; the node's table filters the forward hook.
        foreach (var (peerNs, dev, ip) in new[] { (cliNs, "c0", "10.244.1.10"), (srvNs, "s0", "10.244.1.20") })
        {
            Sh("ip", "-n", nodeNs, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", peerNs);
            Sh("ip", "-n", nodeNs, "addr", "add", "10.244.1.1/32", "dev", dev);
            Sh("ip", "-n", nodeNs, "link", "set", dev, "up");
            Sh("ip", "-n", nodeNs, "route", "add", ip + "/32", "dev", dev);
            Sh("ip", "-n", peerNs, "addr", "add", ip + "/32", "dev", "eth0");
            Sh("ip", "-n", peerNs, "link", "set", "eth0", "up");
            Sh("ip", "-n", peerNs, "route", "add", "10.244.1.1/32", "dev", "eth0");
            Sh("ip", "-n", peerNs, "route", "add", "default", "via", "10.244.1.1");
        }
        Sh("ip", "netns", "exec", nodeNs, "sysctl", "-qw", "net.ipv4.ip_forward=1");
        using (var srv = NetNs.Open("/run/netns/" + srvNs))
        {
            listener = srv.Run(() =>
            {
                var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                l.Bind(new IPEndPoint(IPAddress.Any, 8080));
                l.Listen(4096);
                return l;
            });
        }
        var accept = listener;
        _ = Task.Run(() =>
        {
            try
            {
                while (true)
                {
                    using var c = accept.Accept();
                }
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        });
        var nft = new NftClient(new NftClientOptions { NetnsPath = "/run/netns/" + nodeNs });
        var none = ConnectSnapshot(0);
        var many = ConnectSnapshot(nPolicies);
        var rs0 = PolicyCompiler.Compile(none, "node-1");
        var rsN = PolicyCompiler.Compile(many, "node-1");
        using var cli = NetNs.Open("/run/netns/" + cliNs);
        var target = new IPEndPoint(IPAddress.Parse("10.244.1.20"), 8080);
        Out("");
        Out($"Connection setup through the node's forward hook (client pod -> server pod), p50 (p90) of {connects} connects; conditions back to back, 3 rounds");
        Out("");
        Out($"| condition | connect p50 (p90) | / 0 policies (same round) | load |");
        Out("|---|---|---|---|");
        var ratios = new List<double>();
        var p50s = new Dictionary<string, List<double>> { ["none"] = [], ["0"] = [], ["N"] = [] };
        for (int round = 0; round < 3; round++)
        {
            ShQuiet("ip", "netns", "exec", nodeNs, "nft", "delete", "table", "inet", "trellis-policy");
            var tNone = Connects(cli, target, connects);
            nft.Apply(PolicyTransaction.Full(rs0, PolicyObjectNames.Empty));
            var t0 = Connects(cli, target, connects);
            nft.Apply(PolicyTransaction.Full(rsN, PolicyObjectNames.FromListing(nft.ListTable("inet", "trellis-policy", stateless: true)!)));
            var tN = Connects(cli, target, connects);
            // Prove the 1,000-policy table is in the path: the server is isolated, and a port no policy allows is dropped.
            if (!TimesOut(cli, new IPEndPoint(IPAddress.Parse("10.244.1.20"), 9999)))
            {
                throw new InvalidOperationException("port 9999 was not dropped with the policies applied: the table is not in the path");
            }
            p50s["none"].Add(tNone.P50);
            p50s["0"].Add(t0.P50);
            p50s["N"].Add(tN.P50);
            ratios.Add(tN.P50 / t0.P50);
            Out($"| round {round + 1}: no policy table | {Us(tNone)} | {tNone.P50 / t0.P50:0.00} | {Load1()} |");
            Out($"| round {round + 1}: table, 0 policies | {Us(t0)} | 1.00 | |");
            Out($"| round {round + 1}: table, {nPolicies:N0} policies selecting the server's namespace | {Us(tN)} | {tN.P50 / t0.P50:0.00} | |");
        }
        Out($"| median {nPolicies:N0} / 0 policies | | {Median(ratios):0.00} | |");
        Out($"- {nPolicies:N0}-policy table: {rsN.Sets.Values.Sum(s => s.Elements.Count):N0} set/map elements, {rsN.Chains.Count} chains; the server pod is isolated and allowed by one policy (from namespace src, port 8080); port 9999 checked dropped.");
    }
    finally
    {
        listener?.Dispose();
        foreach (var n in new[] { nodeNs, cliNs, srvNs })
        {
            ShQuiet("ip", "netns", "delete", n);
        }
    }
}

// Pods: client src/client (node-1), server dst/server (node-1), `pods` fillers in dst on nodes 2-4. Policies in dst,
// each selecting every pod of the namespace (so the server too), allowing its own peers and port; one of them allows
// the client's namespace on 8080.
PolicySnapshot ConnectSnapshot(int policies)
{
    var nodes = Enumerable.Range(1, 4).Select(i => new NodeView(Obj("v1", "Node", $"node-{i}", null, null, new JsonObject { ["podCIDR"] = $"10.244.{i}.0/24" }, null))).ToList();
    var namespaces = new[] { "src", "dst" }.Select(n => new NamespaceView(Obj("v1", "Namespace", n, null, new JsonObject { [NamespaceView.NameLabel] = n }, null, null))).ToList();
    var pods = new List<PodView>
    {
        PodObj("client", "src", "node-1", "10.244.1.10", "client"),
        PodObj("server", "dst", "node-1", "10.244.1.20", "server"),
    };
    for (int i = 0; i < nPods; i++)
    {
        pods.Add(PodObj($"f{i}", "dst", $"node-{2 + i % 3}", $"10.244.{2 + i % 3}.{2 + i / 3 % 250}", $"a{i % 50}"));
    }
    var pols = new List<NetworkPolicyView>();
    for (int i = 0; i < policies; i++)
    {
        var spec = JsonNode.Parse("""
            {"podSelector": {}, "policyTypes": ["Ingress"],
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a@1@"}}}, {"ipBlock": {"cidr": "172.16.@2@.0/24"}}],
                          "ports": [{"port": @3@}]}]}
            """.Replace("@1@", $"{(i + 1) % 50}").Replace("@2@", $"{i % 250}").Replace("@3@", $"{80 + i % 20}"))!.AsObject();
        if (i == 0)
        {
            spec["ingress"]!.AsArray().Add(JsonNode.Parse("""{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "src"}}}], "ports": [{"port": 8080}]}"""));
        }
        pols.Add(new NetworkPolicyView(Obj("networking.k8s.io/v1", "NetworkPolicy", $"np{i}", "dst", null, spec, null)));
    }
    return new PolicySnapshot { Nodes = nodes, Namespaces = namespaces, Pods = pods, Policies = pols };
}

static PodView PodObj(string name, string ns, string node, string ip, string app) =>
    new(Obj("v1", "Pod", name, ns, new JsonObject { ["app"] = app },
        new JsonObject { ["nodeName"] = node, ["containers"] = new JsonArray(new JsonObject { ["name"] = "c", ["ports"] = new JsonArray(new JsonObject { ["name"] = "http", ["containerPort"] = 8080 }) }) },
        new JsonObject { ["phase"] = "Running", ["podIP"] = ip }));

static (double P50, double P90) Connects(NetNs ns, IPEndPoint ep, int n)
{
    var xs = new List<double>();
    ns.Run(() =>
    {
        for (int i = 0; i < 50; i++)
        {
            Connect(ep);
        }
        for (int i = 0; i < n; i++)
        {
            xs.Add(Connect(ep));
        }
    });
    var o = xs.Order().ToList();
    return (o[o.Count / 2], o[o.Count * 9 / 10]);
}

static double Connect(IPEndPoint ep)
{
    using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    s.LingerState = new LingerOption(true, 0); // RST on close: no TIME_WAIT pile-up
    long t0 = Stopwatch.GetTimestamp();
    s.Connect(ep);
    return Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
}

static bool TimesOut(NetNs ns, IPEndPoint ep) => ns.Run(() => TryConnect(ep, 300) == false);

// true connected, false timed out (SYN dropped), null refused/unreachable.
static bool? TryConnect(IPEndPoint ep, int timeoutMs)
{
    using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    s.LingerState = new LingerOption(true, 0);
    try
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        s.ConnectAsync(ep, cts.Token).AsTask().GetAwaiter().GetResult();
        return true;
    }
    catch (OperationCanceledException)
    {
        return false;
    }
    catch (SocketException)
    {
        return null;
    }
}

// ---------------------------------------------------------------- a. programming latency in a lab
async Task PartLabAsync()
{
    string lab = "nb" + id;
    Thread? poller = null;
    var stop = new CancellationTokenSource();
    try
    {
        Trellis(null, "lab", "up", "--name", lab, "--nodes", "2");
        Trellis("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: pl}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: server, namespace: pl, labels: {app: server}}
            spec: {containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: client, namespace: pl, labels: {app: client}}
            spec: {containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}
            """, "apply", "-f", "-", "--lab", lab);
        var (serverIp, clientNetns, sameNode) = await WaitPodsAsync(lab);
        string deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-server, namespace: pl}\nspec: {podSelector: {matchLabels: {app: server}}, policyTypes: [Ingress]}\n";
        var ep = new IPEndPoint(IPAddress.Parse(serverIp), 80);
        // The probe: a thread in the client pod's netns connecting in a loop; each attempt's start time and outcome
        // (a dropped SYN shows as a 25 ms timeout) is the latest observation.
        long lastStart = 0;
        int lastState = -1; // 1 connected, 0 timed out, 2 refused
        var gate = new Lock();
        using var cliNs = NetNs.Open("/run/netns/" + clientNetns);
        poller = new Thread(() => cliNs.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                long t = Stopwatch.GetTimestamp();
                bool? r = TryConnect(ep, 25);
                lock (gate)
                {
                    lastStart = t;
                    lastState = r switch { true => 1, false => 0, null => 2 };
                }
                if (r != false)
                {
                    Thread.Sleep(1); // no tight spin on a 2-core machine; a blocked attempt already waits 25 ms
                }
            }
        }))
        { IsBackground = true };
        poller.Start();
        double Wait(long since, int state)
        {
            var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 30;
            while (Stopwatch.GetTimestamp() < deadline)
            {
                lock (gate)
                {
                    if (lastStart > since && lastState == state)
                    {
                        return Stopwatch.GetElapsedTime(since, lastStart).TotalMilliseconds;
                    }
                }
                Thread.Sleep(1);
            }
            throw new TimeoutException($"the probe did not see state {state} within 30 s");
        }
        Wait(Stopwatch.GetTimestamp(), 1); // reachable before the first policy
        var block = new List<double>();
        var unblock = new List<double>();
        var applyProc = new List<double>();
        for (int i = 0; i < applies; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Trellis(deny, "apply", "-f", "-", "--lab", lab);
            applyProc.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            block.Add(Wait(t0, 0));
            Thread.Sleep(200);
            long t1 = Stopwatch.GetTimestamp();
            Trellis(deny, "delete", "-f", "-", "--lab", lab);
            unblock.Add(Wait(t1, 1));
            Thread.Sleep(200);
        }
        Out("");
        Out($"Programming latency in a lab (2 nodes, client and server pods on {(sameNode ? "the same node" : "different nodes")}), {applies} rounds; load at the end: {Uptime()}");
        Out("");
        Out("| measure | p50 | p99 (max) | the `trellis` process itself, p50 |");
        Out("|---|---|---|---|");
        Out($"| `trellis apply` deny policy → probe blocked | {Ms(Pct(block, 50))} | {Ms(Pct(block, 99))} | {Ms(Pct(applyProc, 50))} |");
        Out($"| `trellis delete` of it → probe connects | {Ms(Pct(unblock, 50))} | {Ms(Pct(unblock, 99))} | |");
        Out($"- block samples (ms): {string.Join(" ", block.Select(b => b.ToString("0")))}");
        Out($"- unblock samples (ms): {string.Join(" ", unblock.Select(b => b.ToString("0")))}");
    }
    finally
    {
        stop.Cancel();
        poller?.Join(2000);
        Trellis(null, "lab", "down", "--name", lab);
    }
}

async Task<(string ServerIp, string ClientNetns, bool SameNode)> WaitPodsAsync(string lab)
{
    await using var store = ClusterStore.Open($"sqlite:///var/lib/trellis/{lab}/store.db");
    var deadline = DateTime.UtcNow.AddMinutes(2);
    while (DateTime.UtcNow < deadline)
    {
        var list = await store.ListAsync(Kinds.Pod.StorePrefix("pl"));
        var pods = list.Items.Select(i => new PodView((JsonObject)JsonNode.Parse(i.Value)!)).Where(p => p.IsReady).ToDictionary(p => p.Name);
        if (pods.TryGetValue("server", out var s) && pods.TryGetValue("client", out var c))
        {
            string ip = s.Json["status"]!["podIP"]!.GetValue<string>();
            string prefix = $"trl-{lab}-p-pl-client-";
            string netns = Directory.GetFiles("/run/netns").Select(Path.GetFileName).Single(n => n!.StartsWith(prefix, StringComparison.Ordinal))!;
            return (ip, netns, s.NodeName == c.NodeName);
        }
        await Task.Delay(50);
    }
    throw new TimeoutException("pods pl/server and pl/client not Ready within 2 min");
}

void Trellis(string? stdin, params string[] a)
{
    var psi = new ProcessStartInfo(trellis, a) { RedirectStandardInput = stdin is not null, RedirectStandardOutput = true, RedirectStandardError = true };
    using var p = Process.Start(psi)!;
    if (stdin is not null)
    {
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
    }
    var err = p.StandardError.ReadToEndAsync();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0)
    {
        throw new InvalidOperationException($"trellis {string.Join(' ', a)}: {err.Result}");
    }
}

// ---------------------------------------------------------------- the 1,000 × 1,000 snapshot (as PolicyRulesetKernelTests)
static PolicySnapshot ScaleSnapshot(int pods, int policies)
{
    var nodes = Enumerable.Range(1, 4).Select(i => Obj("v1", "Node", $"node-{i}", null, null, new JsonObject { ["podCIDR"] = $"10.244.{i}.0/24" }, null)).Select(o => new NodeView(o)).ToList();
    var namespaces = Enumerable.Range(0, 10).Select(i => new NamespaceView(Obj("v1", "Namespace", $"ns{i}", null,
        new JsonObject { [NamespaceView.NameLabel] = $"ns{i}", ["team"] = $"t{i % 3}" }, null, null))).ToList();
    var podViews = new List<PodView>();
    for (int i = 0; i < pods; i++)
    {
        int node = i % 4 + 1;
        var spec = new JsonObject
        {
            ["nodeName"] = $"node-{node}",
            ["containers"] = new JsonArray(new JsonObject { ["name"] = "c", ["ports"] = new JsonArray(new JsonObject { ["name"] = "http", ["containerPort"] = 8000 + i % 7 }) }),
        };
        podViews.Add(new PodView(Obj("v1", "Pod", $"p{i}", $"ns{i % 10}", new JsonObject { ["app"] = $"app{i % 50}" }, spec,
            new JsonObject { ["phase"] = "Running", ["podIP"] = $"10.244.{node}.{2 + i / 4}" })));
    }
    return new PolicySnapshot { Nodes = nodes, Namespaces = namespaces, Pods = podViews, Policies = Enumerable.Range(0, policies).Select(i => ScalePolicy(i, policies)).ToList() };
}

static NetworkPolicyView ScalePolicy(int i, int total)
{
    string json = """
        {"podSelector": {"matchLabels": {"app": "app@0@"}},
         "ingress": [
           {"from": [{"podSelector": {"matchLabels": {"app": "app@1@"}}}, {"namespaceSelector": {"matchLabels": {"team": "t@2@"}}, "podSelector": {"matchLabels": {"app": "app@3@"}}}],
            "ports": [{"port": @4@ }, {"port": "http"}, {"protocol": "UDP", "port": 5000, "endPort": 5010}]},
           {"from": [{"ipBlock": {"cidr": "172.16.@5@.0/24", "except": ["172.16.@5@.128/25"]}}]}],
         "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]},
                    {"to": [{"podSelector": {"matchLabels": {"app": "app@7@"}}}], "ports": [{"port": "http"}]}]}
        """.Replace("@0@", $"{i % 50}").Replace("@1@", $"{(i + 1) % 50}").Replace("@2@", $"{i % 3}").Replace("@3@", $"{(i + 2) % 50}")
        .Replace("@4@", $"{80 + i % 5}").Replace("@5@", $"{i % 200}").Replace("@7@", $"{(i + 3) % 50}");
    _ = total;
    return new NetworkPolicyView(Obj("networking.k8s.io/v1", "NetworkPolicy", $"np{i}", $"ns{i % 10}", null, JsonNode.Parse(json)!.AsObject(), null));
}

static JsonObject Obj(string apiVersion, string kind, string name, string? ns, JsonObject? labels, JsonObject? spec, JsonObject? status)
{
    var meta = new JsonObject { ["name"] = name };
    if (ns is not null)
    {
        meta["namespace"] = ns;
    }
    if (labels is not null)
    {
        meta["labels"] = labels;
    }
    var o = new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind, ["metadata"] = meta };
    if (spec is not null)
    {
        o["spec"] = spec;
    }
    if (status is not null)
    {
        o["status"] = status;
    }
    return o;
}

// ---------------------------------------------------------------- helpers
static string Hash(string s, int n) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(s)))[..n].ToLowerInvariant();

static void Out(string line)
{
    Console.WriteLine(line);
    Console.Out.Flush();
}

static string Ms(double ms) => double.IsNaN(ms) ? "n/a" : ms.ToString(ms < 10 ? "0.00" : "0.0") + " ms";

static string Us((double P50, double P90) t) => $"{t.P50:0} µs ({t.P90:0})";

static double Median(List<double> xs) => xs.Count == 0 ? double.NaN : xs.Order().ElementAt(xs.Count / 2);

static double Pct(List<double> xs, int p)
{
    var o = xs.Order().ToList();
    return o[Math.Min(o.Count - 1, (int)Math.Ceiling(o.Count * p / 100.0) - 1)];
}

static string Uptime() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

static string Load1() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

static void Pipe(string[] argv, string stdin)
{
    var psi = new ProcessStartInfo(argv[0], argv[1..]) { RedirectStandardInput = true, RedirectStandardError = true, RedirectStandardOutput = true };
    using var p = Process.Start(psi)!;
    var err = p.StandardError.ReadToEndAsync();
    p.StandardInput.Write(stdin);
    p.StandardInput.Close();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0)
    {
        throw new InvalidOperationException($"{string.Join(' ', argv)}: exit {p.ExitCode}: {err.Result[..Math.Min(err.Result.Length, 2000)]}");
    }
}

static void Sh(params string[] argv) => Exec(true, argv);

static void ShQuiet(params string[] argv) => Exec(false, argv);

static void Exec(bool check, string[] argv)
{
    var psi = new ProcessStartInfo(argv[0], argv[1..]) { RedirectStandardError = true, RedirectStandardOutput = true };
    using var p = Process.Start(psi)!;
    string err = p.StandardError.ReadToEnd();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (check && p.ExitCode != 0)
    {
        throw new InvalidOperationException($"{string.Join(' ', argv)}: exit {p.ExitCode}: {err}");
    }
}

int Opt(string name, int dflt) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : dflt;

string OptS(string name, string dflt) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? dflt;
