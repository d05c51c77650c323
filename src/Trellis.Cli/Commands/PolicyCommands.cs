using System.CommandLine;
using System.Net;
using System.Text.Json.Nodes;
using Trellis.Cli.Cluster;
using Trellis.Cli.Workload;
using Trellis.Core.Objects;
using Trellis.Core.Policies;

namespace Trellis.Cli.Commands;

/// <summary>
/// <c>trellis policy explain FROM TO --port P --protocol X</c>: whether NetworkPolicy lets FROM open a connection
/// to TO, and which policies and rules decided it — answered by the reference evaluator
/// (<see cref="PolicyEvaluator"/>) over the objects in the store, the same semantics the compiled
/// <c>inet trellis-policy</c> tables enforce (the two are checked against each other by a property test).
/// FROM and TO are NS/POD or an IP address (a peer outside the cluster).
/// </summary>
internal static class PolicyCommands
{
    public static Command Create()
    {
        var policy = new Command("policy", "NetworkPolicy tools");
        var from = new Argument<string>("FROM") { Description = "NS/POD or an IP address" };
        var to = new Argument<string>("TO") { Description = "NS/POD or an IP address" };
        var port = new Option<int>("--port") { Description = "destination port", DefaultValueFactory = _ => 80 };
        var protocol = new Option<string>("--protocol") { Description = "tcp, udp or sctp", DefaultValueFactory = _ => "tcp" };
        var output = new Option<string?>("-o", "--output") { Description = "json" };
        var explain = new Command("explain", "allowed or denied, and which policies and rules decided it") { from, to, port, protocol, output };
        explain.SetAction(async (pr, ct) =>
        {
            string proto = pr.GetValue(protocol)!.ToUpperInvariant();
            if (proto is not ("TCP" or "UDP" or "SCTP"))
            {
                throw new UsageException($"--protocol: '{pr.GetValue(protocol)}' is not tcp, udp or sctp");
            }
            int p = pr.GetValue(port);
            if (p is < 1 or > 65535)
            {
                throw new UsageException($"--port: {p} is not a port number 1-65535");
            }
            await using var store = StoreLocator.Open(pr.GetValue(ObjectCommands.StoreOption), pr.GetValue(ObjectCommands.LabOption));
            var client = new ObjectClient(store);
            var (pods, _) = await client.ListAsync(Kinds.Pod, null, ct).ConfigureAwait(false);
            var (namespaces, _) = await client.ListAsync(Kinds.Namespace, null, ct).ConfigureAwait(false);
            var (policies, _) = await client.ListAsync(Kinds.NetworkPolicy, null, ct).ConfigureAwait(false);
            var (nodes, _) = await client.ListAsync(Kinds.Node, null, ct).ConfigureAwait(false);
            var snapshot = new PolicySnapshot
            {
                Pods = pods.Select(x => new PodView(x.Json)).ToList(),
                Namespaces = namespaces.Select(x => new NamespaceView(x.Json)).ToList(),
                Policies = policies.Select(x => new NetworkPolicyView(x.Json)).ToList(),
                Nodes = nodes.Select(x => new NodeView(x.Json)).ToList(),
            };
            var src = Resolve(snapshot, pr.GetValue(from)!, "FROM");
            var dst = Resolve(snapshot, pr.GetValue(to)!, "TO");
            var decision = PolicyEvaluator.Evaluate(snapshot, src, dst, proto, p);
            if (pr.GetValue(output) == "json")
            {
                var o = new JsonObject
                {
                    ["from"] = pr.GetValue(from),
                    ["to"] = pr.GetValue(to),
                    ["port"] = p,
                    ["protocol"] = proto.ToLowerInvariant(),
                    ["allowed"] = decision.Allowed,
                    ["egress"] = Verdict(decision.Egress),
                    ["ingress"] = Verdict(decision.Ingress),
                };
                if (decision.Unprogrammed is { } u)
                {
                    o["unprogrammed"] = u;
                }
                Console.Out.WriteLine(o.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true, TypeInfoResolver = System.Text.Json.Serialization.Metadata.JsonTypeInfoResolver.Combine() }));
            }
            else
            {
                Console.Out.Write($"{pr.GetValue(from)} ({src}) -> {pr.GetValue(to)} ({dst}) {p}/{proto.ToLowerInvariant()}: {decision.Explain()}");
            }
            return 0;
        });
        policy.Subcommands.Add(explain);
        return policy;
    }

    private static JsonObject Verdict(DirectionVerdict v) => new()
    {
        ["outcome"] = v.Outcome.ToString(),
        ["reason"] = v.Reason,
        ["deciding"] = new JsonArray([.. v.Deciding.Select(d => (JsonNode)JsonValue.Create(d.ToString()))]),
    };

    /// <summary>NS/POD → the pod's IP (it must have one); anything else must be an IP address.</summary>
    private static IPAddress Resolve(PolicySnapshot snapshot, string text, string what)
    {
        if (IPAddress.TryParse(text, out var ip))
        {
            return ip;
        }
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == text.Length - 1)
        {
            throw new UsageException($"{what}: '{text}' is not NS/POD or an IP address");
        }
        string ns = text[..slash], name = text[(slash + 1)..];
        var pod = snapshot.Pods.FirstOrDefault(p => p.Namespace == ns && p.Name == name)
            ?? throw new UsageException($"{what}: pod {text} not found");
        return pod.PodIP is { } s && IPAddress.TryParse(s, out var podIp)
            ? podIp
            : throw new UsageException($"{what}: pod {text} has no IP yet (status.podIP)");
    }
}
