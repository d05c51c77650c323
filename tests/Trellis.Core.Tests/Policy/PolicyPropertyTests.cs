using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using CsCheck;
using Trellis.Core.Objects;
using Trellis.Core.Policies;

namespace Trellis.Core.Tests.Policies;

/// <summary>
/// Random clusters (namespaces, pods with labels and named ports on two nodes) and random policies (every
/// selector operator, peers of every kind, ipBlocks with except, numeric/named/ranged ports, policyTypes and
/// empty-versus-missing variants): for random packets, the verdict traced through the compiled rulesets equals
/// the reference evaluator's.
/// </summary>
public class PolicyPropertyTests
{
    private static readonly string[] s_labelKeys = ["app", "tier", "env"];
    private static readonly string[] s_labelValues = ["web", "db", "x"];

    private static readonly Gen<string> s_labels =
        Gen.Select(Gen.OneOf(s_labelKeys.Select(Gen.Const).ToArray()), Gen.OneOf(s_labelValues.Select(Gen.Const).ToArray()))
            .Select((k, v) => $"\"{k}\":\"{v}\"").Array[0, 3]
            .Select(kvs => "{" + string.Join(",", kvs.DistinctBy(kv => kv[..kv.IndexOf(':', StringComparison.Ordinal)])) + "}");

    private static readonly Gen<string> s_requirement = Gen.Select(
        Gen.OneOf(s_labelKeys.Append(NamespaceView.NameLabel).Select(Gen.Const).ToArray()),
        Gen.OneOf(Gen.Const("In"), Gen.Const("NotIn"), Gen.Const("Exists"), Gen.Const("DoesNotExist")),
        Gen.OneOf(s_labelValues.Concat(["ns1", "ns2"]).Select(Gen.Const).ToArray()).Array[1, 2])
        .Select((k, op, vs) => op is "In" or "NotIn"
            ? $"{{\"key\":\"{k}\",\"operator\":\"{op}\",\"values\":[{string.Join(",", vs.Distinct().Select(v => $"\"{v}\""))}]}}"
            : $"{{\"key\":\"{k}\",\"operator\":\"{op}\"}}");

    private static readonly Gen<string> s_selector = Gen.OneOf(
        Gen.Const("{}"),
        s_labels.Select(l => $"{{\"matchLabels\":{l}}}"),
        s_requirement.Array[1, 2].Select(r => $"{{\"matchExpressions\":[{string.Join(",", r)}]}}"),
        Gen.Select(s_labels, s_requirement).Select((l, r) => $"{{\"matchLabels\":{l},\"matchExpressions\":[{r}]}}"));

    private static readonly string[] s_cidrs = ["10.244.0.0/16", "10.244.1.0/24", "10.244.2.0/25", "10.244.1.8/29", "0.0.0.0/0", "192.168.7.0/24", "10.244.2.5/32"];
    private static readonly string[] s_excepts = ["10.244.1.0/28", "10.244.2.0/24", "10.244.1.16/30", "10.244.2.5/32", "192.168.7.7/32"];

    private static readonly Gen<string> s_ipBlock = Gen.Select(Gen.OneOf(s_cidrs.Select(Gen.Const).ToArray()), Gen.Bool.Array[s_excepts.Length])
        .Select((cidr, pick) =>
        {
            var outer = Ipv4Interval.ParseCidr(cidr)!.Value;
            // Validation requires excepts inside the cidr (and strictly smaller).
            var ex = s_excepts.Where((e, i) => pick[i] && Ipv4Interval.ParseCidr(e) is { } x && outer.Lo <= x.Lo && x.Hi <= outer.Hi && x != outer).ToList();
            return ex.Count == 0 ? $"{{\"ipBlock\":{{\"cidr\":\"{cidr}\"}}}}"
                : $"{{\"ipBlock\":{{\"cidr\":\"{cidr}\",\"except\":[{string.Join(",", ex.Select(e => $"\"{e}\""))}]}}}}";
        });

    private static readonly Gen<string> s_peer = Gen.OneOf(
        s_selector.Select(s => $"{{\"podSelector\":{s}}}"),
        s_selector.Select(s => $"{{\"namespaceSelector\":{s}}}"),
        Gen.Select(s_selector, s_selector).Select((p, n) => $"{{\"podSelector\":{p},\"namespaceSelector\":{n}}}"),
        s_ipBlock);

    private static readonly Gen<string> s_port = Gen.OneOf(
        Gen.Const("{}"),
        Gen.Const("{\"protocol\":\"UDP\"}"),
        Gen.Const("{\"port\":80}"),
        Gen.Const("{\"protocol\":\"UDP\",\"port\":53}"),
        Gen.Const("{\"port\":80,\"endPort\":82}"),
        Gen.Const("{\"protocol\":\"SCTP\",\"port\":81}"),
        Gen.Const("{\"port\":\"http\"}"),
        Gen.Const("{\"protocol\":\"UDP\",\"port\":\"dns\"}"),
        Gen.Const("{\"protocol\":\"UDP\",\"port\":\"http\"}"));

    // null = key missing; [] = empty list.
    private static Gen<string?> Optional(Gen<string> item, int max) => Gen.OneOf(
        Gen.Const((string?)null),
        Gen.Const((string?)"[]"),
        item.Array[1, max].Select(a => (string?)("[" + string.Join(",", a) + "]")));

    private static Gen<string> Rule(string peersKey) => Gen.Select(Optional(s_peer, 2), Optional(s_port, 2))
        .Select((peers, ports) => "{" + string.Join(",", new[] { peers is null ? null : $"\"{peersKey}\":{peers}", ports is null ? null : $"\"ports\":{ports}" }.OfType<string>()) + "}");

    private static readonly Gen<string> s_policy = Gen.Select(
        Gen.Int[1, 2], s_selector,
        Gen.OneOf(Gen.Const((string?)null), Gen.Const((string?)"[\"Ingress\"]"), Gen.Const((string?)"[\"Egress\"]"), Gen.Const((string?)"[\"Ingress\",\"Egress\"]")),
        Optional(Rule("from"), 2), Optional(Rule("to"), 2))
        .Select((ns, sel, types, ingress, egress) =>
        {
            var parts = new List<string> { $"\"podSelector\":{sel}" };
            if (types is not null)
            {
                parts.Add($"\"policyTypes\":{types}");
            }
            if (ingress is not null)
            {
                parts.Add($"\"ingress\":{ingress}");
            }
            if (egress is not null)
            {
                parts.Add($"\"egress\":{egress}");
            }
            return $"{{\"ns\":\"ns{ns}\",\"spec\":{{{string.Join(",", parts)}}}}}";
        });

    private static readonly string[] s_portSets = ["http:80/TCP", "http:81/TCP", "dns:53/UDP", "http:82/UDP", "s:81/SCTP"];

    // A pod: namespace, node, host number, labels, ports.
    private static readonly Gen<(int Ns, int Node, int Host, string Labels, bool[] Ports)> s_pod =
        Gen.Select(Gen.Int[1, 2], Gen.Int[1, 2], Gen.Int[2, 20], s_labels, Gen.Bool.Array[s_portSets.Length]);

    private static readonly Gen<(int Ns, int Node, int Host, string Labels, bool[] Ports)[]> s_pods = s_pod.Array[2, 7];

    private static readonly Gen<(int Src, int Dst, int Proto, int Port)[]> s_packets =
        Gen.Select(Gen.Int[0, 20], Gen.Int[0, 20], Gen.Int[0, 3], Gen.OneOf(Gen.Const(53), Gen.Const(80), Gen.Const(81), Gen.Const(82), Gen.Const(8080))).Array[20, 40];

    private static readonly string[] s_protocols = ["tcp", "udp", "sctp", "icmp"];

    [Fact]
    public void Traced_verdicts_equal_the_evaluator()
    {
        Gen.Select(s_labels, s_labels, s_pods, s_policy.Array[1, 4], s_packets)
            .Sample((ns1, ns2, pods, policies, packets) =>
            {
                var (h, ips) = Build(ns1, ns2, pods, policies);
                foreach (var (s, d, proto, port) in packets)
                {
                    var src = ips[s % ips.Count];
                    var dst = ips[d % ips.Count];
                    if (src.Equals(dst))
                    {
                        continue;
                    }
                    var packet = new PolicyPacket(src, dst, s_protocols[proto], port);
                    bool evaluated = h.Evaluate(packet);
                    var (traced, why) = h.Trace(packet);
                    if (evaluated != traced)
                    {
                        throw new InvalidOperationException(
                            $"{packet}: evaluator {(evaluated ? "allows" : "denies")}, tracer {(traced ? "accepts" : "drops")}\n{why}\n"
                            + PolicyEvaluator.Evaluate(h.Index, packet.Src, packet.Dst, packet.Protocol, packet.Port).Explain()
                            + "\npolicies:\n" + string.Join("\n", policies));
                    }
                }
            }, iter: 400);
    }

    private static (PolicyHarness Harness, List<IPAddress> Ips) Build(string ns1, string ns2, (int Ns, int Node, int Host, string Labels, bool[] Ports)[] pods, string[] policies)
    {
        var nodes = new List<NodeView> { PolicyHarness.Node("node-1", "10.244.1.0/24"), PolicyHarness.Node("node-2", "10.244.2.0/24") };
        var namespaces = new List<NamespaceView>
        {
            PolicyHarness.Namespace("ns1", Labels(ns1)),
            PolicyHarness.Namespace("ns2", Labels(ns2)),
        };
        var podViews = new List<PodView>();
        var used = new HashSet<string>();
        int n = 0;
        foreach (var p in pods)
        {
            string ip = $"10.244.{p.Node}.{p.Host}";
            if (!used.Add(ip))
            {
                continue;
            }
            podViews.Add(PolicyHarness.Pod($"ns{p.Ns}", $"p{n++}", ip, $"node-{p.Node}", Labels(p.Labels),
                s_portSets.Where((_, i) => p.Ports[i]).DistinctBy(s => s.Split(':')[0] + s.Split('/')[1]).ToArray()));
        }
        var policyViews = new List<NetworkPolicyView>();
        int k = 0;
        foreach (var text in policies)
        {
            var o = (JsonObject)JsonNode.Parse(text)!;
            policyViews.Add(new NetworkPolicyView(new JsonObject
            {
                ["apiVersion"] = "networking.k8s.io/v1",
                ["kind"] = "NetworkPolicy",
                ["metadata"] = new JsonObject { ["name"] = "np" + (k++).ToString(CultureInfo.InvariantCulture), ["namespace"] = (string)o["ns"]! },
                ["spec"] = o["spec"]!.DeepClone(),
            }));
        }
        var snapshot = new PolicySnapshot { Nodes = nodes, Namespaces = namespaces, Pods = podViews, Policies = policyViews };
        var h = new PolicyHarness(snapshot);
        var ips = h.Index.Pods.Select(p => p.Ip).Concat([IPAddress.Parse("192.168.7.7"), IPAddress.Parse("10.244.2.30"), IPAddress.Parse("8.8.8.8")]).ToList();
        return (h, ips);
    }

    private static Dictionary<string, string> Labels(string json) =>
        ((JsonObject)JsonNode.Parse(json)!).ToDictionary(kv => kv.Key, kv => (string)kv.Value!);
}
