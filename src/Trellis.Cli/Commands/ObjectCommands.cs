using System.CommandLine;
using System.Diagnostics;
using Trellis.Cli.Cluster;
using Trellis.Cli.Lab;
using Trellis.Cli.Workload;
using Trellis.Core.Lab;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Commands;

/// <summary>kubectl's verbs over the cluster store: apply, delete, get; and exec/probe inside pods.</summary>
internal static class ObjectCommands
{
    public static Option<string?> StoreOption { get; } = new("--store") { Description = "cluster store URL (else $TRELLIS_STORE, else the lab's)", Recursive = true };

    public static Option<string?> LabOption { get; } = new("--lab") { Description = "lab name (else $TRELLIS_LAB, else 'default')", Recursive = true };

    private static IClusterStore OpenStore(ParseResult pr) =>
        StoreLocator.Open(pr.GetValue(StoreOption), pr.GetValue(LabOption));

    public static Command Apply() => ManifestVerb("apply", "create or update objects from manifests (files, directories, - for stdin)", [],
        async (admission, docs, pr, ct) =>
        {
            var (done, errors) = await admission.ApplyAsync(docs, ct).ConfigureAwait(false);
            return (done, errors, null);
        });

    public static Command Delete()
    {
        var grace = new Option<int?>("--grace-period") { Description = "seconds a bound pod gets to terminate (-1: the pod's own terminationGracePeriodSeconds; 0 with --force: at once)" };
        var force = new Option<bool>("--force") { Description = "remove pods at once, without waiting for their kubelet" };
        var wait = new Option<bool>("--wait") { Description = "wait until deleted pods are gone (default true)", DefaultValueFactory = _ => true };
        return ManifestVerb("delete", "delete the objects named in manifests", [grace, force, wait], async (admission, docs, pr, ct) =>
        {
            int? g = pr.GetValue(grace);
            if (g is < -1)
            {
                throw new UsageException($"--grace-period: {g} must be -1 or more");
            }
            var result = await admission.DeleteAsync(docs, new DeleteOptions(g is -1 ? null : g, pr.GetValue(force)), ct).ConfigureAwait(false);
            Func<Task>? after = null;
            if (pr.GetValue(wait) && result.Terminating.Count > 0)
            {
                after = async () =>
                {
                    // kubectl's --wait: until the kubelets have removed them, at most the longest grace period and 15 s more.
                    var timeout = TimeSpan.FromSeconds(result.Terminating.Max(p => p.GracePeriodSeconds) + 15);
                    var left = await admission.WaitGoneAsync(result.Terminating, timeout, ct).ConfigureAwait(false);
                    foreach (var p in left)
                    {
                        await Console.Error.WriteLineAsync($"pod/{p.Name} (namespace {p.Namespace}) is still terminating after {timeout.TotalSeconds:0}s").ConfigureAwait(false);
                    }
                };
            }
            return (result.Done, result.Errors, after);
        });
    }

    private static Command ManifestVerb(string verb, string description, Option[] extra,
        Func<Admission, IReadOnlyList<ManifestDocument>, ParseResult, CancellationToken, Task<(IReadOnlyList<ApplyOutcome>, IReadOnlyList<AdmissionError>, Func<Task>?)>> run)
    {
        var files = new Option<string[]>("-f", "--filename") { Description = "FILE, DIR or -", Required = true, AllowMultipleArgumentsPerToken = true };
        var cmd = new Command(verb, description) { files };
        foreach (var o in extra)
        {
            cmd.Options.Add(o);
        }
        cmd.SetAction(async (pr, ct) =>
        {
            var docs = new List<ManifestDocument>();
            foreach (var (text, source) in ReadSources(pr.GetValue(files)!))
            {
                try
                {
                    docs.AddRange(Manifests.ParseDocuments(text, source));
                }
                catch (ManifestException e)
                {
                    await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                    return 1;
                }
            }
            if (docs.Count == 0)
            {
                await Console.Error.WriteLineAsync("error: no objects passed to " + verb).ConfigureAwait(false);
                return 1;
            }
            await using var store = OpenStore(pr);
            var (done, errors, after) = await run(new Admission(new ObjectClient(store), TimeProvider.System), docs, pr, ct).ConfigureAwait(false);
            foreach (var d in done)
            {
                Console.WriteLine(d);
            }
            foreach (var e in errors)
            {
                await Console.Error.WriteLineAsync("error: " + e).ConfigureAwait(false);
            }
            if (after is not null)
            {
                await Console.Out.FlushAsync(ct).ConfigureAwait(false);
                await after().ConfigureAwait(false);
            }
            return errors.Count == 0 ? 0 : 1;
        });
        return cmd;
    }

    private static IEnumerable<(string Text, string Source)> ReadSources(IEnumerable<string> paths)
    {
        foreach (var p in paths)
        {
            if (p == "-")
            {
                yield return (Console.In.ReadToEnd(), "stdin");
            }
            else if (Directory.Exists(p))
            {
                foreach (var f in Directory.EnumerateFiles(p).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
                {
                    yield return (File.ReadAllText(f), f);
                }
            }
            else if (File.Exists(p))
            {
                yield return (File.ReadAllText(p), p);
            }
            else
            {
                throw new UsageException($"-f: {p} does not exist");
            }
        }
    }

    public static Command Get()
    {
        var kind = new Argument<string>("KIND");
        var name = new Argument<string?>("NAME") { Arity = ArgumentArity.ZeroOrOne };
        var ns = new Option<string?>("-n", "--namespace") { Description = "namespace (default: default)" };
        var all = new Option<bool>("-A", "--all-namespaces") { Description = "every namespace" };
        var selector = new Option<string?>("-l", "--selector") { Description = "label selector, e.g. app=web,tier!=db" };
        var output = new Option<string?>("-o", "--output") { Description = "wide | json | yaml" };
        var cmd = new Command("get", "list or show objects like kubectl get") { kind, name, ns, all, selector, output };
        cmd.SetAction(async (pr, ct) =>
        {
            if (!Kinds.TryResolve(pr.GetValue(kind), out var k))
            {
                throw new UsageException($"KIND: '{pr.GetValue(kind)}' is not a known kind ({string.Join(", ", Kinds.All.Select(x => x.Plural))})");
            }
            OutputFormat format = OutputFormat.Table;
            if (pr.GetValue(output) is { } o && !ObjectPrinter.TryParseFormat(o, out format))
            {
                throw new UsageException($"-o: '{o}' is not wide, json or yaml");
            }
            LabelSelector? sel = null;
            if (pr.GetValue(selector) is { } s && !LabelSelector.TryParse(s, out sel, out string? err))
            {
                throw new UsageException($"-l: {err}");
            }
            bool allNs = pr.GetValue(all);
            string? namespaceFilter = k.Namespaced && !allNs ? pr.GetValue(ns) ?? ObjectDefaults.DefaultNamespace : null;
            await using var store = OpenStore(pr);
            var client = new ObjectClient(store);
            List<System.Text.Json.Nodes.JsonObject> objects;
            string? one = pr.GetValue(name);
            if (one is not null)
            {
                var got = await client.GetAsync(k, namespaceFilter, one, ct).ConfigureAwait(false);
                if (got is null)
                {
                    await Console.Error.WriteLineAsync($"Error from server (NotFound): {k.Plural} \"{one}\" not found").ConfigureAwait(false);
                    return 1;
                }
                objects = [got.Json];
            }
            else
            {
                var (items, _) = await client.ListAsync(k, namespaceFilter, ct).ConfigureAwait(false);
                objects = items.Select(i => i.Json).Where(j => sel is null || sel.Matches(new GenericView(j).Metadata.Labels)).ToList();
                if (objects.Count == 0 && format is OutputFormat.Table or OutputFormat.Wide)
                {
                    await Console.Error.WriteLineAsync(TablePrinter.NoResourcesMessage(namespaceFilter)).ConfigureAwait(false);
                    return 0;
                }
            }
            Console.Write(ObjectPrinter.Print(k, objects, format, DateTimeOffset.UtcNow, allNs && k.Namespaced, byName: one is not null));
            return 0;
        });
        return cmd;
    }

    public static Command Exec()
    {
        var target = new Argument<string>("NS/POD");
        var command = new Argument<string[]>("CMD") { Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("exec", "run a command inside a pod's network namespace, with its resolv.conf") { target, command };
        cmd.SetAction(async (pr, ct) =>
        {
            string t = pr.GetValue(target)!;
            int slash = t.IndexOf('/', StringComparison.Ordinal);
            string ns = slash > 0 ? t[..slash] : ObjectDefaults.DefaultNamespace;
            string podName = slash > 0 ? t[(slash + 1)..] : t;
            var lab = StoreLocator.ResolveLab(pr.GetValue(LabOption));
            await using var store = OpenStore(pr);
            var pod = await new ObjectClient(store).GetAsync(Kinds.Pod, ns, podName, ct).ConfigureAwait(false)
                ?? throw new UsageException($"NS/POD: pod {ns}/{podName} not found");
            var view = new PodView(pod.Json);
            string netns = LabNames.PodNetns(lab.Name, ns, podName, view.Metadata.Uid ?? "");
            if (!File.Exists(LabNetwork.NetnsPath(netns)))
            {
                await Console.Error.WriteLineAsync($"exec: pod {ns}/{podName} has no network namespace yet (phase {view.Phase ?? "Pending"})").ConfigureAwait(false);
                return 1;
            }
            // ip netns exec also bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf, as a pod sees it.
            var psi = new ProcessStartInfo("ip", ["netns", "exec", netns, .. pr.GetValue(command)!]);
            using var p = Process.Start(psi)!;
            await p.WaitForExitAsync(ct).ConfigureAwait(false);
            return p.ExitCode;
        });
        return cmd;
    }

    public static Command ProbeCommand()
    {
        var ns = new Option<string?>("-n", "--namespace") { Description = "namespaces, comma-separated (default: all but kube-system)" };
        var port = new Option<int>("--port") { DefaultValueFactory = _ => 80 };
        var protocol = new Option<string>("--protocol") { DefaultValueFactory = _ => "tcp" };
        var toService = new Option<bool>("--to-service") { Description = "connect to the ClusterIP of the first Service selecting the destination" };
        var output = new Option<string?>("-o", "--output") { Description = "json" };
        var cmd = new Command("probe", "the all-pairs connectivity matrix between Ready pods") { ns, port, protocol, toService, output };
        cmd.SetAction(async (pr, ct) =>
        {
            string proto = pr.GetValue(protocol)!.ToLowerInvariant();
            if (proto is not ("tcp" or "udp" or "sctp"))
            {
                throw new UsageException($"--protocol: '{proto}' is not tcp, udp or sctp");
            }
            if (pr.GetValue(port) is < 1 or > 65535)
            {
                throw new UsageException($"--port: {pr.GetValue(port)} is not 1-65535");
            }
            if (pr.GetValue(output) is { } o && o != "json")
            {
                throw new UsageException($"-o: '{o}' is not supported here (json)");
            }
            var lab = StoreLocator.ResolveLab(pr.GetValue(LabOption));
            await using var store = OpenStore(pr);
            var namespaces = pr.GetValue(ns)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            IReadOnlyList<ProbeResult> results;
            if (proto == "sctp")
            {
                // DESIGN.md §7: this kernel has no SCTP sockets; every pair is reported, none can connect.
                results = (await Probe.RunAsync(lab, new ObjectClient(store), namespaces, pr.GetValue(port), "tcp", pr.GetValue(toService), TimeSpan.Zero, ct).ConfigureAwait(false))
                    .Select(r => r with { Connected = false, Answer = null, Error = "SCTP sockets are not available on this kernel" }).ToList();
            }
            else
            {
                results = await Probe.RunAsync(lab, new ObjectClient(store), namespaces, pr.GetValue(port), proto, pr.GetValue(toService), TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            }
            Console.Write(pr.GetValue(output) == "json"
                ? Probe.ToJson(results, pr.GetValue(port), proto) + "\n"
                : Probe.ToTable(results, pr.GetValue(port), proto, !Console.IsOutputRedirected));
            return 0;
        });
        return cmd;
    }
}
