using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Trellis.Core.Nft;
using Trellis.Core.Objects;
using Trellis.Core.Policies;

namespace Trellis.Core.Tests.Policies;

/// <summary>One packet of a verdict table: IPs, protocol (tcp/udp/sctp/icmp) and destination port.</summary>
internal sealed record PolicyPacket(IPAddress Src, IPAddress Dst, string Protocol, int Port)
{
    public override string ToString() => $"{Src} -> {Dst} {Protocol}/{Port}";
}

/// <summary>
/// Compiles a snapshot for every node, loads each ruleset into an <see cref="NftModel"/> and traces packets through
/// the node(s) a packet crosses: the source pod's node (egress) and the destination pod's node (ingress). A node
/// is found from the pod's nodeName, or from the pod CIDR an address falls in.
/// </summary>
internal sealed class PolicyHarness
{
    private readonly Dictionary<string, NftTracer> _tracers = new(StringComparer.Ordinal);

    public PolicyHarness(PolicySnapshot snapshot)
    {
        Snapshot = snapshot;
        Index = new PolicyIndex(snapshot);
        foreach (var node in snapshot.Nodes)
        {
            var ruleset = PolicyCompiler.Compile(Index, node.Name);
            Rulesets[node.Name] = ruleset;
            var model = new NftModel();
            model.Apply(ruleset.Dump());
            var local = Index.NodePodCidrs[node.Name].Select(c => Ipv4Interval.ToAddress(Ipv4Interval.ToUInt(c.BaseAddress) + 1)).ToList();
            _tracers[node.Name] = new NftTracer(model, local);
        }
    }

    public PolicySnapshot Snapshot { get; }

    public PolicyIndex Index { get; }

    public Dictionary<string, PolicyRuleset> Rulesets { get; } = new(StringComparer.Ordinal);

    public bool Evaluate(PolicyPacket p) => PolicyEvaluator.Evaluate(Index, p.Src, p.Dst, p.Protocol, p.Port).Allowed;

    /// <summary>Accepted by every node on the way; the steps of the first node that dropped it otherwise.</summary>
    public (bool Allowed, string Why) Trace(PolicyPacket p)
    {
        var nodes = new[] { NodeOf(p.Src), NodeOf(p.Dst) }.OfType<string>().Distinct().ToList();
        foreach (var n in nodes)
        {
            var result = _tracers[n].Trace(new TracePacket(p.Src, p.Dst, p.Protocol, 40000, p.Protocol == "icmp" ? 0 : p.Port, TraceOrigin.Forwarded));
            var o = result.Outcomes.Single();
            if (o.Verdict != TraceVerdict.Accept)
            {
                return (false, $"{n}: {o}\n" + string.Join("\n", o.Steps));
            }
        }
        return (true, "accepted by " + string.Join(", ", nodes));
    }

    public string? NodeOf(IPAddress ip) => Index.PodsByIp.TryGetValue(ip, out var pod) && pod.Node is not null ? pod.Node : Index.NodeOfPodCidr(ip);

    /// <summary>Every ordered pair of distinct pods on every protocol and on ports 80, 81 and 8080, plus outside addresses and an unprogrammed one.</summary>
    public IEnumerable<PolicyPacket> AllPackets()
    {
        var ips = Index.Pods.Select(p => p.Ip).Concat([IPAddress.Parse("192.168.7.7"), IPAddress.Parse("10.244.1.99")]).ToList();
        foreach (var s in ips)
        {
            foreach (var d in ips.Where(d => !d.Equals(s)))
            {
                foreach (var proto in (string[])["tcp", "udp", "sctp"])
                {
                    foreach (var port in (int[])[80, 81, 8080])
                    {
                        yield return new PolicyPacket(s, d, proto, port);
                    }
                }
                yield return new PolicyPacket(s, d, "icmp", 0);
            }
        }
    }

    // ---- test input (golden cases and hand-written tests) ----

    /// <summary>
    /// A case file: a <c>PolicyTestInput</c> document (<c>nodeName</c>; <c>model: upstream</c> for the e2e suite's
    /// namespaces x, y, z with pods a, b, c; or explicit <c>nodes</c>, <c>namespaces</c>, <c>pods</c>; <c>expect</c>
    /// lines "x/a -> y/b tcp/80: allow|deny"), then NetworkPolicy manifests (and optionally Pods/Namespaces).
    /// </summary>
    public static (PolicySnapshot Snapshot, string NodeName, List<string> Expect) ParseCase(string yaml, string source)
    {
        var docs = Manifests.Parse(yaml, source);
        var opts = docs.Single(d => (string?)d["kind"] == "PolicyTestInput");
        var nodes = new List<NodeView>();
        var namespaces = new List<NamespaceView>();
        var pods = new List<PodView>();
        if ((string?)opts["model"] == "upstream")
        {
            Upstream(nodes, namespaces, pods);
        }
        if (opts["nodes"] is JsonObject ns)
        {
            foreach (var (name, cidr) in ns)
            {
                nodes.Add(Node(name, (string)cidr!));
            }
        }
        if (opts["namespaces"] is JsonObject nss)
        {
            foreach (var (name, labels) in nss)
            {
                namespaces.Add(Namespace(name, ((JsonObject?)labels ?? []).ToDictionary(kv => kv.Key, kv => (string)kv.Value!)));
            }
        }
        if (opts["pods"] is JsonArray ps)
        {
            foreach (var p in ps.OfType<JsonObject>())
            {
                string[] key = ((string)p["name"]!).Split('/');
                pods.Add(Pod(key[0], key[1], (string?)p["ip"], (string)p["node"]!,
                    ((JsonObject?)p["labels"] ?? []).ToDictionary(kv => kv.Key, kv => (string)kv.Value!),
                    ((JsonArray?)p["ports"] ?? []).Select(n => (string)n!).ToArray()));
            }
        }
        namespaces.AddRange(docs.Where(d => (string?)d["kind"] == "Namespace").Select(d => new NamespaceView(d)));
        pods.AddRange(docs.Where(d => (string?)d["kind"] == "Pod").Select(d => new PodView(d)));
        var snapshot = new PolicySnapshot
        {
            Nodes = nodes,
            Namespaces = namespaces,
            Pods = pods,
            Policies = docs.Where(d => (string?)d["kind"] == "NetworkPolicy").Select(d => new NetworkPolicyView(d)).ToList(),
        };
        var expect = ((JsonArray?)opts["expect"] ?? []).Select(n => (string)n!).ToList();
        return (snapshot, (string?)opts["nodeName"] ?? "node-1", expect);
    }

    /// <summary>The e2e suite's model: namespaces x, y, z; pods a, b, c serving 80 and 81 on TCP, UDP and SCTP (named serve-PORT-PROTO).</summary>
    public static void Upstream(List<NodeView> nodes, List<NamespaceView> namespaces, List<PodView> pods)
    {
        nodes.Add(Node("node-1", "10.244.1.0/24"));
        nodes.Add(Node("node-2", "10.244.2.0/24"));
        string[] ports = ["serve-80-tcp:80/TCP", "serve-81-tcp:81/TCP", "serve-80-udp:80/UDP", "serve-81-udp:81/UDP", "serve-80-sctp:80/SCTP", "serve-81-sctp:81/SCTP"];
        int n = 0;
        foreach (var ns in (string[])["x", "y", "z"])
        {
            namespaces.Add(Namespace(ns, new() { ["ns"] = ns }));
            foreach (var pod in (string[])["a", "b", "c"])
            {
                int node = n % 2 + 1;
                pods.Add(Pod(ns, pod, $"10.244.{node}.{10 + n}", $"node-{node}", new() { ["pod"] = pod }, ports));
                n++;
            }
        }
    }

    public static NodeView Node(string name, string cidr) => new(new JsonObject
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Node",
        ["metadata"] = new JsonObject { ["name"] = name },
        ["spec"] = new JsonObject { ["podCIDR"] = cidr, ["podCIDRs"] = new JsonArray(cidr) },
    });

    public static NamespaceView Namespace(string name, Dictionary<string, string> labels)
    {
        var l = new JsonObject { [NamespaceView.NameLabel] = name };
        foreach (var (k, v) in labels)
        {
            l[k] = v;
        }
        return new(new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = l } });
    }

    /// <summary>A pod; ports as "name:80/TCP" or "80/UDP".</summary>
    public static PodView Pod(string ns, string name, string? ip, string node, Dictionary<string, string> labels, string[] ports)
    {
        var cports = new JsonArray();
        foreach (var p in ports)
        {
            string rest = p;
            var port = new JsonObject();
            int colon = p.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0)
            {
                port["name"] = p[..colon];
                rest = p[(colon + 1)..];
            }
            var parts = rest.Split('/');
            port["containerPort"] = int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
            port["protocol"] = parts.Length > 1 ? parts[1] : "TCP";
            cports.Add((JsonNode)port);
        }
        var l = new JsonObject();
        foreach (var (k, v) in labels)
        {
            l[k] = v;
        }
        var status = new JsonObject { ["phase"] = "Running" };
        if (ip is not null)
        {
            status["podIP"] = ip;
        }
        return new(new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["labels"] = l },
            ["spec"] = new JsonObject
            {
                ["nodeName"] = node,
                ["containers"] = new JsonArray(new JsonObject { ["name"] = "c", ["image"] = "agnhost", ["ports"] = cports }),
            },
            ["status"] = status,
        });
    }

    /// <summary>"x/a -> 192.168.7.7 udp/81: deny" → packet and expectation (pods by namespace/name, or literal IPs).</summary>
    public (PolicyPacket Packet, bool Allowed) ParseExpect(string line)
    {
        var colon = line.LastIndexOf(':');
        string verdict = line[(colon + 1)..].Trim();
        var parts = line[..colon].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var pp = parts[3].Split('/');
        var packet = new PolicyPacket(Address(parts[0]), Address(parts[2]), pp[0], pp.Length > 1 ? int.Parse(pp[1], System.Globalization.CultureInfo.InvariantCulture) : 0);
        return (packet, verdict switch
        {
            "allow" => true,
            "deny" => false,
            _ => throw new FormatException($"expect line '{line}': verdict must be allow or deny"),
        });
    }

    private IPAddress Address(string text) =>
        IPAddress.TryParse(text, out var ip) ? ip : Index.Pods.Single(p => p.Key == text).Ip;

    public static string Root => FindRoot();

    public static List<string> CaseNames() =>
        [.. Directory.GetDirectories(Root).Order(StringComparer.Ordinal).Select(d => Path.GetFileName(d))];

    private static string FindRoot([CallerFilePath] string thisFile = "")
    {
        string fromSource = Path.Combine(Path.GetDirectoryName(thisFile) ?? "", "golden");
        if (Directory.Exists(fromSource))
        {
            return fromSource;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "Trellis.Core.Tests", "Policy", "golden");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new DirectoryNotFoundException($"Policy/golden not found from {thisFile} or {AppContext.BaseDirectory}");
    }
}
