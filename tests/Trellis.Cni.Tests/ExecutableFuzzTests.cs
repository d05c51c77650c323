using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;
using Trellis.Cni.Tests.Infrastructure;
using Trellis.Core.Cni;
using Trellis.IpamStore;
using Trellis.Netlink;

namespace Trellis.Cni.Tests;

/// <summary>
/// Mutated configurations and randomized environments fed to the real executable in a node
/// netns, four at a time. Per run: no crash (exit 0 or 1), stdout is JSON (or empty for a
/// successful DEL/CHECK/STATUS/GC), an error is the spec's object with a known code and a message,
/// and it is exactly the error the in-process parser gives for the same input; a successful ADD
/// returns an address from the config's first range set and is DELeted at once; a failed ADD
/// leaves neither a reservation nor a host veth. After the run nothing is left on the node.
/// </summary>
[Collection("kernel")]
public sealed class ExecutableFuzzTests
{
    private const ulong DefaultSeed = 0x7E11_15C0_FFEE_2026;
    private const int DefaultCases = 1200;
    private const int Workers = 4;

    private static readonly string[] s_strings =
    [
        "", " ", "0.0.0.0/0", "::/0", "10.90.0.0/24", "10.90.0.0/31", "10.90.0.0/32", "10.90.0.7", "10.90.0.255", "10.90.0.0",
        "10.90.0.300", "010.90.0.1", "0x0a.0.0.1", "10.1", "fd00::1", "fd00::/127", "fd00:90::/64", "::ffff:10.90.0.5", "10.90.0.5/24",
        "10.90.0.5/33", "0a:58:0a:5a:00:07", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "1.1.0", "1.0.0", "0.4.0", "0.3.1", "0.2.0",
        "1.1", "host-local", "dhcp", "trellis-cni", "trl0", "trl1", "lo", "eth0/x", "..", ".", "a b", "a:b", "relative/dir",
        "/tmp/trl-fuzz-never-used", "null", "true", "{}", "[]", "\\", "\"", "-net",
    ];

    // Multi-byte text, invisible and bidi characters, a BOM, NUL, and "à" (UTF-8 c3 a0: the kernel's
    // isspace() counts 0xa0 as space, so it refuses interface names containing it).
    private static readonly string[] s_unicode =
    [
        "\u00e9", "trl\u00e0", "\u540d\u524d", "\ud83d\ude00", "\u200b", "\u202etrl0", "e\u0301", "\u00a0", "\ufeff", "\uffff",
        "\u0000", "trl\u0000", new string('\u00fc', 20), "\u0130", "\u212a",
    ];

    private static readonly string[] s_numbers =
    [
        "0", "-1", "1", "67", "68", "1279", "1280", "1500", "9000", "65535", "65536", "4094", "4095", "2147483647", "2147483648",
        "-2147483649", "9223372036854775808", "1e308", "-0", "1.5", "1E2", "1e-400", "123456789012345678901234567890",
    ];

    private static readonly string[] s_keys =
    [
        "ipMasq", "vlan", "vlanTrunk", "macspoofchk", "promiscMode", "hairpinMode", "isGateway", "isDefaultGateway", "MTU", "mtu",
        "subnet", "rangeStart", "rangeEnd", "gateway", "ranges", "routes", "type", "prevResult", "cni.dev/valid-attachments",
        "runtimeConfig", "args", "dns", "ipam", "name", "NAME", "cniVersion", "bridge", "ips", "mac", "x",
    ];

    private static readonly string[] s_validIfNames = ["net1", "e", "eth012345678901", "eth\u00e9", "ens3"];

    private static readonly string[] s_badIfNames = [".", "..", "a/b", "a:b", "eth0123456789012", "", "et h0", "e\u00e0", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"];

    private static readonly string[] s_badContainerIds = ["-x", "a/b", "a b", "\u00e9", "", "x;y", ".hidden", "c" + new string('0', 249), "ok@host"];

    private static readonly string[] s_badCommands = ["add", "", "INIT", "ADD ", "del"];

    private sealed record FuzzCase(int Base, uint[] Ops, int CommandPick, int IdPick, int IfPick, int NetnsPick, int ArgsPick);

    private static readonly Gen<FuzzCase> s_gen = Gen.Select(
        Gen.Int[0, 4],
        // A third unmutated (so ADDs succeed and DEL/STATUS/GC see real state), the rest one to four edits deep.
        Gen.Frequency((3, Gen.Const(Array.Empty<uint>())), (4, Gen.UInt.Array[1]), (3, Gen.UInt.Array[2, 4])),
        Gen.Int[0, 99], Gen.Int[0, 99], Gen.Int[0, 99], Gen.Int[0, 99], Gen.Int[0, 99],
        (b, ops, cmd, id, ifn, ns, args) => new FuzzCase(b, ops, cmd, id, ifn, ns, args));

    [KernelFact]
    public async Task Mutated_inputs_never_crash_the_plugin_and_leave_nothing_behind()
    {
        ulong seed = Environment.GetEnvironmentVariable("TRELLIS_FUZZ_SEED") is { Length: > 0 } s
            ? ulong.Parse(s.StartsWith("0x", StringComparison.Ordinal) ? s[2..] : s, NumberStyles.HexNumber, CultureInfo.InvariantCulture)
            : DefaultSeed;
        int count = Environment.GetEnvironmentVariable("TRELLIS_FUZZ_CASES") is { Length: > 0 } n ? int.Parse(n, CultureInfo.InvariantCulture) : DefaultCases;
        string seedText = $"seed 0x{seed:X16} (rerun with TRELLIS_FUZZ_SEED=0x{seed:X16})";

        var pcg = new PCG(1, seed);
        var cases = Enumerable.Range(0, count).Select(_ => s_gen.Generate(pcg, null, out Size _)).ToArray();

        using var node = new PluginNode(subnet: "10.90.0.0/24");
        using var nodeNs = NetNs.Open(node.Node.Path);
        string notADir = Path.GetTempFileName();
        var violations = new ConcurrentBag<(string Kind, int Index, string Repro)>();
        var names = new ConcurrentDictionary<string, bool>(); // every network name a run used, for the final GC
        var stats = new ConcurrentDictionary<string, int>();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var workers = Enumerable.Range(0, Workers).Select(k => Task.Factory.StartNew(
                () =>
                {
                    var worker = new Worker(k, node, nodeNs, notADir, violations, names, stats);
                    for (int i = k; i < cases.Length; i += Workers)
                    {
                        worker.Run(i, cases[i]);
                    }
                },
                TaskCreationOptions.LongRunning)).ToArray();
            await Task.WhenAll(workers);
        }
        finally
        {
            File.Delete(notADir);
        }
        var elapsed = sw.Elapsed;

        // Nothing left once every ADD was followed by its DEL: first as found, then after GC.
        var veths = node.HostVethsSettled();
        if (veths.Count > 0)
        {
            violations.Add(("host veths left after the run", -1, string.Join(", ", veths)));
        }
        var leftover = CniExec.StoreFiles(node.DataDir, allowHints: true);
        if (leftover.Count > 0)
        {
            violations.Add(("IPAM files left after the run (before GC)", -1, string.Join(", ", leftover)));
        }
        foreach (var name in names.Keys.Where(n => n.Length < 256 && Directory.Exists(Path.Combine(node.DataDir, n))))
        {
            var gc = JsonNode.Parse(node.Config())!.AsObject();
            gc["name"] = name;
            gc["cni.dev/valid-attachments"] = new JsonArray();
            var run = node.Exec("GC", gc.ToJsonString(), PluginNode.Env(null, null, null));
            if (run.ExitCode != 0)
            {
                violations.Add(("final GC failed", -1, $"{name}: {run.Stdout} {run.Stderr}"));
            }
        }
        leftover = CniExec.StoreFiles(node.DataDir, allowHints: true);
        if (leftover.Count > 0)
        {
            violations.Add(("IPAM files left after GC", -1, string.Join(", ", leftover)));
        }

        string summary = $"{seedText}: {count} cases in {elapsed.TotalSeconds:0.0} s; "
            + string.Join(", ", stats.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
        if (!violations.IsEmpty)
        {
            var report = new StringBuilder($"{violations.Count} invariant violations; {summary}\n");
            foreach (var group in violations.GroupBy(v => v.Kind).OrderByDescending(g => g.Count()))
            {
                var first = group.OrderBy(v => v.Index).First();
                report.Append(CultureInfo.InvariantCulture, $"\n== {group.Key} ({group.Count()}x; cases {string.Join(",", group.Select(v => v.Index).Order().Take(12))})\n{first.Repro}\n");
            }
            Assert.Fail(report.ToString());
        }
        // The run must exercise both outcomes, or the invariants were never tested.
        Assert.True(stats.GetValueOrDefault("executed") >= 500, summary);
        Assert.True(stats.GetValueOrDefault("ADD ok") >= 50, summary);
        Assert.True(stats.GetValueOrDefault("refused by parser") >= 100, summary);
        Assert.True(stats.GetValueOrDefault("failed at run time") >= 10, summary);
    }

    private sealed class Worker(
        int k,
        PluginNode node,
        NetNs nodeNs,
        string notADir,
        ConcurrentBag<(string Kind, int Index, string Repro)> violations,
        ConcurrentDictionary<string, bool> names,
        ConcurrentDictionary<string, int> stats)
    {
        private readonly string _name = $"fuzz{k}";
        private readonly TestNetns _pod = node.NewPod();

        public void Run(int index, FuzzCase c)
        {
            string baseConfig = Base(c.Base);
            names.TryAdd(_name, true);
            byte[] stdin = Mutate(baseConfig, c.Ops);
            var env = Env(index, c);
            string command = env["CNI_COMMAND"] ?? "";
            string Repro(PluginRun? run) =>
                $"  env: {string.Join(" ", env.Where(kv => kv.Key != "CNI_PATH" && kv.Value is not null).Select(kv => $"{kv.Key}={Quote(kv.Value!)}"))}\n"
                + $"  stdin ({stdin.Length} bytes): {Shorten(CniExec.Show(stdin), 1500)}\n"
                + (run is null ? "" : $"  got: {Shorten(run.ToString(), 1500)}");
            void Violation(string kind, PluginRun? run) => violations.Add((kind, index, Repro(run)));

            // The in-process parsers are the oracle for refusals: the executable must give the very same error.
            CniException? expected = null;
            CniEnvironment? parsedEnv = null;
            NetConf? conf = null;
            try
            {
                parsedEnv = CniEnvironment.Parse(v => env.GetValueOrDefault(v));
                if (parsedEnv.Command != CniCommand.Version)
                {
                    conf = NetConf.Parse(stdin, parsedEnv.Command);
                }
            }
            catch (CniException e)
            {
                expected = e;
            }

            if (conf is not null && conf.Ipam.DataDir != node.DataDir)
            {
                // A mutation moved the IPAM store: never let the plugin write outside the test's dir.
                Count("skipped (dataDir moved)");
                return;
            }
            if (conf is not null)
            {
                names.TryAdd(conf.Name, true);
            }

            var run = CniExec.Run(nodeNs, stdin, env);
            Count("executed");
            if (run.ExitCode is not (0 or 1))
            {
                Violation($"crash or signal: exit {run.ExitCode} ({Generic(FirstLine(run.Stderr))})", run);
                return;
            }
            if (expected is not null)
            {
                Count("refused by parser");
                if (run.ExitCode != 1 || !CniError.TryParse(run.Stdout, out var got, out _) || got!.Code != expected.Code || !SameMessage(got.Msg, expected.Message))
                {
                    Violation($"differs from the in-process parser (expected code {expected.Code}, {Generic(FirstLine(expected.Message))})", run);
                }
                return;
            }
            if (run.ExitCode == 1)
            {
                Count("failed at run time");
                if (!CniError.TryParse(run.Stdout, out var error, out var why))
                {
                    Violation($"exit 1 without an error object ({why})", run);
                }
                else if (!CniError.KnownCodes.Contains(error!.Code) || string.IsNullOrWhiteSpace(error.Msg))
                {
                    Violation($"error object with code {error.Code} or an empty msg", run);
                }
                if (parsedEnv!.Command == CniCommand.Add)
                {
                    CheckAddUndone(conf!, parsedEnv, Violation, run);
                }
                return;
            }

            // exit 0
            if (parsedEnv!.Command is CniCommand.Add or CniCommand.Version || run.Stdout.Trim().Length > 0)
            {
                try
                {
                    using var doc = JsonDocument.Parse(run.Stdout);
                    if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    {
                        Violation("success output is not a JSON object", run);
                        return;
                    }
                }
                catch (JsonException e)
                {
                    Violation($"success output is not JSON ({e.Message})", run);
                    return;
                }
            }
            if (parsedEnv.Command == CniCommand.Add)
            {
                Count("ADD ok");
                CheckAddResult(conf!, run, Violation);
                var del = CniExec.Run(nodeNs, stdin, new Dictionary<string, string?>(env) { ["CNI_COMMAND"] = "DEL" });
                if (del.ExitCode != 0 || del.Stdout.Trim().Length > 0)
                {
                    Violation("DEL right after a successful ADD failed", del);
                }
                WaitForPodClean(Violation);
            }
            else
            {
                Count($"{command} ok");
            }
        }

        private static void CheckAddResult(NetConf conf, PluginRun run, Action<string, PluginRun?> violation)
        {
            try
            {
                var result = JsonNode.Parse(run.Stdout)!.AsObject();
                if (result["cniVersion"]?.GetValue<string>() != conf.CniVersion)
                {
                    violation("ADD result does not echo the config's cniVersion", run);
                }
                var address = result["ips"]![0]!["address"]!.GetValue<string>();
                var ip = IPAddress.Parse(address.Split('/')[0]);
                int prefix = int.Parse(address.Split('/')[1], CultureInfo.InvariantCulture);
                var range = conf.Ipam.Ranges[0].RangeFor(ip);
                if (range is null || !range.Subnet.Contains(ip) || range.Subnet.PrefixLength != prefix)
                {
                    violation("ADD result's first IP is not in the config's first range set", run);
                }
            }
            catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
            {
                violation($"ADD result is not a result ({e.GetType().Name})", run);
            }
        }

        private void CheckAddUndone(NetConf conf, CniEnvironment env, Action<string, PluginRun?> violation, PluginRun run)
        {
            IReadOnlyList<IPAddress> held;
            try
            {
                held = new IpamDiskStore(conf.Ipam.DataDir, conf.Name).GetByAttachment(env.ContainerId!, env.IfName!);
            }
            catch (PathTooLongException)
            {
                held = []; // a network name over NAME_MAX: the plugin could not have stored anything either
            }
            if (held.Count > 0)
            {
                violation("failed ADD kept its reservation", run);
            }
            string alias = $"trellis-cni {conf.Name} {env.ContainerId} {env.IfName}";
            if (CniExec.Links(node.Node.Path).Any(l => l.Alias == alias))
            {
                violation("failed ADD left its host veth", run);
            }
            WaitForPodClean(violation);
        }

        private void WaitForPodClean(Action<string, PluginRun?> violation)
        {
            // DEL's reaper unregisters the link just after DEL returns; the pod end goes with it.
            var deadline = DateTime.UtcNow.AddSeconds(5);
            IReadOnlyList<string> links;
            while ((links = CniExec.LinkNames(_pod.Path)).Count > 1 && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(5);
            }
            if (links.Count > 1)
            {
                violation($"pod netns not clean: {string.Join(", ", links)}", null);
                foreach (var l in links.Where(l => l != "lo"))
                {
                    _pod.TryExec("ip", "link", "del", l);
                }
            }
        }

        private Dictionary<string, string?> Env(int index, FuzzCase c)
        {
            string? command = c.CommandPick switch
            {
                < 40 => "ADD",
                < 52 => "DEL",
                < 62 => "CHECK",
                < 74 => "STATUS",
                < 84 => "GC",
                < 94 => "VERSION",
                _ => s_badCommands[c.CommandPick % s_badCommands.Length],
            };
            string? id = c.IdPick switch
            {
                < 92 => $"fz-{index:D4}",
                < 98 => s_badContainerIds[c.IdPick % s_badContainerIds.Length],
                _ => null,
            };
            string? ifName = c.IfPick switch
            {
                < 80 => "eth0",
                < 91 => s_validIfNames[c.IfPick % s_validIfNames.Length],
                < 99 => s_badIfNames[c.IfPick % s_badIfNames.Length],
                _ => null,
            };
            string? netns = c.NetnsPick switch
            {
                < 90 => _pod.Path,
                < 93 => "/var/run/netns/trl-fuzz-no-such-netns",
                < 95 => "",
                < 96 => null,
                < 97 => "relative/netns",
                < 99 => notADir + "/netns",
                _ => "/var/run/netns/trl-" + new string('n', 300),
            };
            string? args = c.ArgsPick switch
            {
                < 65 => null,
                < 77 => "IgnoreUnknown=1;K8S_POD_NAMESPACE=fuzz;K8S_POD_NAME=pod-" + index.ToString(CultureInfo.InvariantCulture),
                < 84 => $"IgnoreUnknown=1;IP=10.90.{k}.{100 + (index % 50)}",
                < 87 => "IgnoreUnknown=1;IP=10.255.0.1",
                < 93 => "IgnoreUnknown=1;MAC=0a:58:0a:5a:00:42",
                < 95 => "FOO",
                < 97 => "IP=1.2.3",
                < 98 => "IgnoreUnknown=maybe",
                _ => "IgnoreUnknown=1;IP=",
            };
            return new Dictionary<string, string?>
            {
                ["CNI_COMMAND"] = command,
                ["CNI_CONTAINERID"] = id,
                ["CNI_NETNS"] = netns,
                ["CNI_IFNAME"] = ifName,
                ["CNI_ARGS"] = args,
                ["CNI_PATH"] = Repo.BinDir,
            };
        }

        private string Base(int i)
        {
            string net = $"10.90.{k}";
            string d = JsonEncodedText.Encode(node.DataDir).ToString();
            return i switch
            {
                0 => $$$"""{"cniVersion":"1.1.0","name":"{{{_name}}}","type":"trellis-cni","bridge":"trl0","isGateway":true,"isDefaultGateway":false,"mtu":1500,"hairpinMode":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"{{{net}}}.0/24","rangeStart":"{{{net}}}.10","rangeEnd":"{{{net}}}.250","gateway":"{{{net}}}.1"}]],"routes":[{"dst":"0.0.0.0/0"},{"dst":"10.96.0.0/12"}],"dataDir":"{{{d}}}"},"dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"],"options":["ndots:5"]}}""",
                1 => $$$"""{"cniVersion":"0.3.1","name":"{{{_name}}}","type":"bridge","bridge":"trl0","isDefaultGateway":true,"ipam":{"type":"host-local","subnet":"{{{net}}}.0/24","rangeStart":"{{{net}}}.20","rangeEnd":"{{{net}}}.60","gateway":"{{{net}}}.1","dataDir":"{{{d}}}"}}""",
                2 => $$$$"""{"cniVersion":"1.0.0","name":"{{{{_name}}}}","type":"trellis-cni","bridge":"trl0","isGateway":true,"mtu":1400,"ipam":{"ranges":[[{"subnet":"{{{{net}}}}.0/24"}]],"dataDir":"{{{{d}}}}"},"runtimeConfig":{"mac":"0a:58:0a:5a:00:07","ips":["{{{{net}}}}.77/24"]},"args":{"cni":{"mac":"0a:58:0a:5a:00:08"}}}""",
                3 => $$$"""{"cniVersion":"1.1.0","name":"{{{_name}}}","type":"trellis-cni","bridge":"trl0","isGateway":true,"ipam":{"ranges":[[{"subnet":"{{{net}}}.0/24"}],[{"subnet":"fd00:90:{{{k}}}::/64"}]],"routes":[{"dst":"::/0"}],"dataDir":"{{{d}}}"},"cni.dev/valid-attachments":[]}""",
                _ => $$$"""{"cniVersion":"0.4.0","name":"{{{_name}}}","type":"trellis-cni","bridge":"trl0","ipam":{"ranges":[[{"subnet":"{{{net}}}.0/24"}]],"dataDir":"{{{d}}}"},"prevResult":{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}],"ips":[{"version":"4","address":"{{{net}}}.5/24","interface":0}]}}""",
            };
        }

        private void Count(string what) => stats.AddOrUpdate(what, 1, (_, v) => v + 1);
    }

    private static readonly JsonDocumentOptions s_readDeep = new() { MaxDepth = 1024 };
    private static readonly JsonSerializerOptions s_writeDeep = new() { MaxDepth = 1024 };
    private const string NestMarker = "@@trellis-nest@@";

    /// <summary>Applies each op in turn: edits on the JSON tree while it still parses, byte edits always.</summary>
    private static byte[] Mutate(string json, uint[] ops)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        foreach (uint op in ops)
        {
            var rnd = new Random((int)(op >> 1));
            int kind = (int)(op % 14);
            if (kind is >= 9 and <= 12)
            {
                bytes = MutateBytes(bytes, kind, rnd);
                continue;
            }
            try
            {
                var root = JsonNode.Parse(bytes, documentOptions: s_readDeep);
                if (root is not null)
                {
                    bytes = Encoding.UTF8.GetBytes(MutateTree(root, kind, rnd));
                }
            }
            catch (JsonException)
            {
                continue; // an earlier byte edit broke the JSON; tree edits no longer apply
            }
            catch (ArgumentException)
            {
                continue; // duplicate keys from an earlier edit (JsonObject refuses them when first enumerated)
            }
            catch (InvalidOperationException)
            {
                continue;
            }
        }
        return bytes;
    }

    private static string MutateTree(JsonNode root, int kind, Random rnd)
    {
        var slots = new List<(JsonNode Parent, string? Key, int Index)>();
        Collect(root, slots);
        if (slots.Count == 0)
        {
            return root.ToJsonString(s_writeDeep);
        }
        var (parent, key, index) = slots[rnd.Next(slots.Count)];
        string? nested = null;
        switch (kind)
        {
            case 0: // drop a key or element
                if (key is not null)
                {
                    parent.AsObject().Remove(key);
                }
                else
                {
                    parent.AsArray().RemoveAt(index);
                }
                break;
            case 1: // duplicate a key (text level: JsonObject cannot hold two)
                if (key is not null)
                {
                    string text = root.ToJsonString(s_writeDeep);
                    string needle = JsonSerializer.Serialize(key) + ":";
                    int at = text.IndexOf(needle, StringComparison.Ordinal);
                    string dup = needle + (RandomValue(rnd, 0)?.ToJsonString() ?? "null") + ",";
                    return at < 0 ? text : text.Insert(at, dup);
                }
                break;
            case 2: // change the type
            case 3:
                Replace(parent, key, index, RandomValue(rnd, 0));
                break;
            case 4: // a tricky string
                Replace(parent, key, index, JsonValue.Create(s_strings[rnd.Next(s_strings.Length)]));
                break;
            case 5: // an extreme number
                Replace(parent, key, index, JsonNode.Parse(s_numbers[rnd.Next(s_numbers.Length)]));
                break;
            case 6: // deep nesting, often deeper than the plugin's 64
                nested = new string('[', rnd.Next(1, 100));
                nested += "0" + new string(']', nested.Length);
                Replace(parent, key, index, JsonValue.Create(NestMarker));
                break;
            case 7: // add a (known or unknown) key to some object
                var objects = slots.Select(s => Get(s.Parent, s.Key, s.Index)).OfType<JsonObject>().Append(root as JsonObject).OfType<JsonObject>().ToList();
                if (objects.Count > 0)
                {
                    var target = objects[rnd.Next(objects.Count)];
                    target[s_keys[rnd.Next(s_keys.Length)]] = RandomValue(rnd, 0);
                }
                break;
            case 8: // unicode
                Replace(parent, key, index, JsonValue.Create(s_unicode[rnd.Next(s_unicode.Length)]));
                break;
            default: // huge: a long string or a long array
                Replace(parent, key, index, rnd.Next(2) == 0
                    ? JsonValue.Create(new string('x', rnd.Next(256, 20_000)))
                    : new JsonArray(Enumerable.Range(0, rnd.Next(100, 3000)).Select(i => (JsonNode?)JsonValue.Create(i)).ToArray()));
                break;
        }
        string result = root.ToJsonString(s_writeDeep);
        return nested is null ? result : result.Replace(JsonSerializer.Serialize(NestMarker), nested, StringComparison.Ordinal);
    }

    private static byte[] MutateBytes(byte[] bytes, int kind, Random rnd)
    {
        if (bytes.Length == 0)
        {
            return bytes;
        }
        switch (kind)
        {
            case 9: // truncate
                return bytes[..rnd.Next(bytes.Length)];
            case 10: // flip bits
                var flipped = (byte[])bytes.Clone();
                for (int i = rnd.Next(1, 4); i > 0; i--)
                {
                    flipped[rnd.Next(flipped.Length)] ^= (byte)(1 << rnd.Next(8));
                }
                return flipped;
            case 11: // insert random bytes
                var insert = new byte[rnd.Next(1, 6)];
                rnd.NextBytes(insert);
                int at = rnd.Next(bytes.Length);
                return [.. bytes[..at], .. insert, .. bytes[at..]];
            default: // nudge the last octet of some dotted quad
                var text = Encoding.UTF8.GetString(bytes);
                var m = System.Text.RegularExpressions.Regex.Matches(text, @"\d+\.\d+\.\d+\.(\d+)");
                if (m.Count == 0)
                {
                    return bytes;
                }
                var g = m[rnd.Next(m.Count)].Groups[1];
                return Encoding.UTF8.GetBytes(text[..g.Index] + rnd.Next(0, 300).ToString(CultureInfo.InvariantCulture) + text[(g.Index + g.Length)..]);
        }
    }

    private static JsonNode? RandomValue(Random rnd, int depth) => rnd.Next(depth > 2 ? 6 : 8) switch
    {
        0 => null,
        1 => JsonValue.Create(rnd.Next(2) == 0),
        2 => JsonNode.Parse(s_numbers[rnd.Next(s_numbers.Length)]),
        3 => JsonValue.Create(s_strings[rnd.Next(s_strings.Length)]),
        4 => JsonValue.Create(s_unicode[rnd.Next(s_unicode.Length)]),
        5 => JsonValue.Create(rnd.Next(-5, 70_000)),
        6 => new JsonArray(Enumerable.Range(0, rnd.Next(3)).Select(_ => RandomValue(rnd, depth + 1)).ToArray()),
        _ => new JsonObject(Enumerable.Range(0, rnd.Next(3)).Select(_ => KeyValuePair.Create(s_keys[rnd.Next(s_keys.Length)], RandomValue(rnd, depth + 1))).DistinctBy(kv => kv.Key)),
    };

    private static void Collect(JsonNode node, List<(JsonNode, string?, int)> slots)
    {
        if (node is JsonObject o)
        {
            foreach (var (k, v) in o.ToList())
            {
                slots.Add((o, k, -1));
                if (v is not null)
                {
                    Collect(v, slots);
                }
            }
        }
        else if (node is JsonArray a)
        {
            for (int i = 0; i < a.Count; i++)
            {
                slots.Add((a, null, i));
                if (a[i] is JsonNode child)
                {
                    Collect(child, slots);
                }
            }
        }
    }

    private static JsonNode? Get(JsonNode parent, string? key, int index) => key is not null ? parent[key] : parent[index];

    private static void Replace(JsonNode parent, string? key, int index, JsonNode? value)
    {
        if (key is not null)
        {
            parent[key] = value;
        }
        else
        {
            parent[index] = value;
        }
    }

    /// <summary>
    /// Exactly equal, except System.Text.Json's own reader messages: NativeAOT strips the resource
    /// strings (UseSystemResourceKeys), so the executable says "ArrayDepthTooLarge, 64" where the JIT
    /// says "The maximum configured depth of 64 has been exceeded". The plugin's part must match.
    /// </summary>
    private static bool SameMessage(string got, string expected)
    {
        const string Json = "network configuration: not valid JSON:";
        return expected.StartsWith(Json, StringComparison.Ordinal)
            ? got.StartsWith(Json, StringComparison.Ordinal)
            : got == expected;
    }

    private static string Quote(string s) => s.Length == 0 || s.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c > 126) ? JsonSerializer.Serialize(s) : s;

    private static string Shorten(string s, int max) => s.Length <= max ? s : s[..max] + $"… ({s.Length} chars)";

    private static string FirstLine(string s)
    {
        string line = s.Split('\n', 2)[0].Trim();
        return line.Length > 160 ? line[..160] + "…" : line;
    }

    /// <summary>Quoted values blanked, so violations of one kind group together.</summary>
    private static string Generic(string s) => System.Text.RegularExpressions.Regex.Replace(s, "'[^']*'|\"[^\"]*\"", "'…'");
}
