using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Trellis.Lab.Tests.NetworkPolicy;

/// <summary>
/// One connectivity test of the upstream e2e suite (kubernetes/kubernetes test/e2e/network/netpol/network_policy.go),
/// as data: steps of changes, each followed by the expected truth tables. See Cases/README.md for the format.
/// </summary>
public sealed record NetpolCase(string File, string Suite, string Name, IReadOnlyList<NetpolStep> Steps)
{
    /// <summary>The upstream Describe context the test lives in: tcp ("between server and client"), udp, sctp.</summary>
    public static readonly string[] Suites = ["tcp", "udp", "sctp"];

    /// <summary>The theory row name: suite and upstream test name.</summary>
    public string Id => $"[{Suite}] {Name}";

    public IEnumerable<(int Port, string Protocol)> Probes =>
        Steps.SelectMany(s => s.Expect).SelectMany(e => e.Protocols.Select(p => (e.Port, p))).Distinct();

    public static string CasesDir => Path.Combine(Trellis.Cni.Tests.Infrastructure.Repo.Root, "tests", "Trellis.Lab.Tests", "NetworkPolicy", "Cases");

    private static readonly Lazy<IReadOnlyList<NetpolCase>> s_all = new(() =>
        Directory.EnumerateFiles(CasesDir, "*.yaml").Order(StringComparer.Ordinal).Select(Load).ToList());

    public static IReadOnlyList<NetpolCase> All => s_all.Value;

    public static NetpolCase ById(string id) => All.Single(c => c.Id == id);

    public static NetpolCase Load(string path) => Parse(System.IO.File.ReadAllText(path), Path.GetFileName(path));

    /// <summary>Reads one case; every problem names the file and the field.</summary>
    public static NetpolCase Parse(string yaml, string file)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new InvalidDataException($"{file}: not YAML: {e.Message}", e);
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new InvalidDataException($"{file}: must be one YAML mapping");
        }
        var r = new Reader(file);
        r.OnlyKeys(root, "", "name", "suite", "steps");
        string name = r.Str(root, "name");
        string suite = r.Str(root, "suite");
        if (!Suites.Contains(suite))
        {
            throw r.Error("suite", $"'{suite}' is not one of {string.Join(", ", Suites)}");
        }
        var steps = r.Seq(root, "steps").Select((n, i) => ParseStep(r, n, $"steps[{i}]")).ToList();
        if (steps.Count == 0)
        {
            throw r.Error("steps", "must have at least one step");
        }
        return new NetpolCase(file, suite, name, steps);
    }

    private static NetpolStep ParseStep(Reader r, YamlNode node, string path)
    {
        var m = r.Map(node, path);
        r.OnlyKeys(m, path, "note", "apply", "deleteAllPolicies", "labelPod", "labelNamespace", "expect");
        var step = new NetpolStep(
            r.OptStr(m, "note", path),
            r.OptStr(m, "apply", path),
            r.OptStr(m, "deleteAllPolicies", path) is { } d && bool.Parse(d),
            r.Labels(m, "labelPod", path, key => Peer.Parse(key) is { Namespace: not null, Pod: not null }),
            r.Labels(m, "labelNamespace", path, key => TruthTable.Namespaces.Contains(key)),
            r.Seq(m, "expect", path).Select((e, i) => ParseExpect(r, e, $"{path}.expect[{i}]")).ToList());
        if (step.Expect.Count == 0)
        {
            throw r.Error(path + ".expect", "a step must check at least one truth table");
        }
        return step;
    }

    private static NetpolExpect ParseExpect(Reader r, YamlNode node, string path)
    {
        var m = r.Map(node, path);
        r.OnlyKeys(m, path, "note", "port", "protocols", "reach", "extra");
        string portText = r.Str(m, "port", path);
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is not (80 or 81))
        {
            throw r.Error(path + ".port", $"'{portText}' is not a served port (80 or 81)");
        }
        var protocols = r.Seq(m, "protocols", path).Select((p, i) => r.Scalar(p, $"{path}.protocols[{i}]")).ToList();
        foreach (var p in protocols.Where(p => p is not ("TCP" or "UDP" or "SCTP")))
        {
            throw r.Error(path + ".protocols", $"'{p}' is not TCP, UDP or SCTP");
        }
        if (protocols.Count == 0)
        {
            throw r.Error(path + ".protocols", "must name at least one protocol");
        }
        var reach = new List<ReachRule>();
        var rules = r.Seq(m, "reach", path);
        for (int i = 0; i < rules.Count; i++)
        {
            string text = r.Scalar(rules[i], $"{path}.reach[{i}]");
            reach.Add(ReachRule.Parse(text) ?? throw r.Error($"{path}.reach[{i}]", $"'{text}' is not 'allow|deny FROM -> TO' (peers: *, NS, NS/POD, */POD)"));
        }
        return new NetpolExpect(port, protocols, reach, r.OptStr(m, "extra", path) is { } x && bool.Parse(x), r.OptStr(m, "note", path));
    }

    /// <summary>Field access with errors that name the file and the field path.</summary>
    private sealed class Reader(string file)
    {
        public InvalidDataException Error(string field, string message) => new($"{file}: {field}: {message}");

        public YamlMappingNode Map(YamlNode node, string path) =>
            node as YamlMappingNode ?? throw Error(path, "must be a mapping");

        public string Scalar(YamlNode node, string path) =>
            (node as YamlScalarNode)?.Value ?? throw Error(path, "must be a string");

        public void OnlyKeys(YamlMappingNode m, string path, params string[] keys)
        {
            foreach (var k in m.Children.Keys.Select(k => Scalar(k, path)).Where(k => !keys.Contains(k)))
            {
                throw Error(Join(path, k), $"unknown field (known: {string.Join(", ", keys)})");
            }
        }

        public string? OptStr(YamlMappingNode m, string key, string path = "") =>
            m.Children.TryGetValue(new YamlScalarNode(key), out var v) ? Scalar(v, Join(path, key)) : null;

        public string Str(YamlMappingNode m, string key, string path = "") =>
            OptStr(m, key, path) is { Length: > 0 } s ? s : throw Error(Join(path, key), "required");

        public List<YamlNode> Seq(YamlMappingNode m, string key, string path = "") =>
            m.Children.TryGetValue(new YamlScalarNode(key), out var v)
                ? (v as YamlSequenceNode)?.Children.ToList() ?? throw Error(Join(path, key), "must be a list")
                : throw Error(Join(path, key), "required");

        public Dictionary<string, IReadOnlyDictionary<string, string>> Labels(YamlMappingNode m, string key, string path, Func<string, bool> validTarget)
        {
            var result = new Dictionary<string, IReadOnlyDictionary<string, string>>();
            if (!m.Children.TryGetValue(new YamlScalarNode(key), out var v))
            {
                return result;
            }
            foreach (var (target, labels) in Map(v, Join(path, key)).Children)
            {
                string t = Scalar(target, Join(path, key));
                if (!validTarget(t))
                {
                    throw Error($"{Join(path, key)}.{t}", "is not a pod (NS/POD) or namespace of the model");
                }
                result[t] = Map(labels, $"{Join(path, key)}.{t}").Children.ToDictionary(
                    kv => Scalar(kv.Key, $"{Join(path, key)}.{t}"), kv => Scalar(kv.Value, $"{Join(path, key)}.{t}"));
            }
            return result;
        }

        private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
    }
}

/// <summary>
/// What one step changes (in this order: apply, delete all policies, pod labels, namespace labels) and the
/// truth tables expected afterwards. Labels are merged into the current ones, as upstream's AddPodLabels does.
/// </summary>
public sealed record NetpolStep(
    string? Note,
    string? Apply,
    bool DeleteAllPolicies,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> LabelPod,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> LabelNamespace,
    IReadOnlyList<NetpolExpect> Expect);

/// <summary>
/// One expected truth table on a port, for each listed protocol: everything allowed, then the rules in order
/// (upstream's NewReachability(..., true) followed by Expect/ExpectPeer/ExpectAllIngress/ExpectAllEgress).
/// <paramref name="Extra"/> marks a check upstream does not make (the same policies on another protocol or port).
/// </summary>
public sealed record NetpolExpect(int Port, IReadOnlyList<string> Protocols, IReadOnlyList<ReachRule> Reach, bool Extra, string? Note)
{
    public TruthTable Table() => TruthTable.Expected(Reach);
}

/// <summary>A set of model pods: "*" (all), "x" (a namespace), "*/a" (pod a in every namespace), "x/a".</summary>
public sealed record Peer(string? Namespace, string? Pod)
{
    public bool Matches(string podId)
    {
        int slash = podId.IndexOf('/', StringComparison.Ordinal);
        return (Namespace is null || Namespace == podId[..slash]) && (Pod is null || Pod == podId[(slash + 1)..]);
    }

    public static Peer? Parse(string text)
    {
        string[] parts = text.Split('/');
        string? ns = parts[0] == "*" ? null : parts[0];
        string? pod = parts.Length == 2 && parts[1] != "*" ? parts[1] : null;
        if (parts.Length > 2 || (ns is not null && !TruthTable.Namespaces.Contains(ns)) || (pod is not null && !TruthTable.PodNames.Contains(pod))
            || (parts.Length == 1 && parts[0] != "*" && ns is null))
        {
            return null;
        }
        return new Peer(ns, pod);
    }

    public override string ToString() => $"{Namespace ?? "*"}/{Pod ?? "*"}";
}

/// <summary>"allow|deny FROM -> TO".</summary>
public sealed record ReachRule(bool Allow, Peer From, Peer To)
{
    public static ReachRule? Parse(string text)
    {
        string[] w = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (w.Length != 4 || w[0] is not ("allow" or "deny") || w[2] != "->" || Peer.Parse(w[1]) is not { } from || Peer.Parse(w[3]) is not { } to)
        {
            return null;
        }
        return new ReachRule(w[0] == "allow", from, to);
    }

    public override string ToString() => $"{(Allow ? "allow" : "deny")} {From} -> {To}";
}
