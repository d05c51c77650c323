using System.Text.Json.Nodes;
using Trellis.Core.Cluster;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Cluster;

/// <summary>One apply/delete problem, naming the document, the object and the field.</summary>
public sealed record AdmissionError(string Document, string Target, string Field, string Message)
{
    public override string ToString() => $"{Document}: {Target}: {Field}: {Message}";
}

/// <summary>How delete treats pods: kubectl's --grace-period and --force.</summary>
public sealed record DeleteOptions(int? GracePeriodSeconds = null, bool Force = false);

/// <summary>A pod left terminating by a graceful delete, for the caller to wait on.</summary>
public sealed record TerminatingPod(string Namespace, string Name, string Uid, int GracePeriodSeconds);

/// <summary>What delete did: outcomes, errors, and the pods now terminating (their kubelets remove them).</summary>
public sealed record DeleteResult(IReadOnlyList<ApplyOutcome> Done, IReadOnlyList<AdmissionError> Errors, IReadOnlyList<TerminatingPod> Terminating);

/// <summary>What apply did to one object, in kubectl's words.</summary>
public sealed record ApplyOutcome(string Target, string Verb)
{
    public override string ToString() => $"{Target} {Verb}";
}

/// <summary>
/// Admission on write, as the API server does it (DESIGN.md §4): every document is parsed,
/// defaulted and validated — including references (the namespace exists, a pod's node exists)
/// and immutable fields against what is stored — before anything is written, so a bad
/// manifest changes nothing. Then creates and compare-and-swap updates are written in order.
/// </summary>
public sealed class Admission(ObjectClient client, TimeProvider time)
{
    private ServiceAllocator? _allocator;

    /// <summary>The random source for ClusterIP and NodePort choice (tests fix it).</summary>
    public Random Random { get; init; } = Random.Shared;

    /// <summary>The allocator over the stored cluster network config, read once per Admission.</summary>
    private async Task<ServiceAllocator> AllocatorAsync(CancellationToken ct) =>
        _allocator ??= new ServiceAllocator(client.Store, await ClusterConfigStore.LoadAsync(client.Store, ct).ConfigureAwait(false), time, Random);

    public async Task<(IReadOnlyList<ApplyOutcome> Done, IReadOnlyList<AdmissionError> Errors)> ApplyAsync(IReadOnlyList<ManifestDocument> docs, CancellationToken ct = default)
    {
        var errors = new List<AdmissionError>();
        var plan = new List<(ManifestDocument Doc, KindInfo Kind, StoredObject? Existing, JsonObject Desired)>();
        var newNamespaces = new HashSet<string>();
        var newNodes = new HashSet<string>();
        var seenKeys = new HashSet<string>();
        foreach (var doc in docs)
        {
            string where = Where(doc);
            var kind = Kinds.Find(doc.Json);
            if (kind is null)
            {
                errors.Add(new(where, Describe(doc.Json), "kind", $"{doc.Json["apiVersion"]}/{doc.Json["kind"]} is not a supported kind ({string.Join(", ", Kinds.All.Select(k => k.Kind))})"));
                continue;
            }
            var defaulted = ObjectDefaults.WithDefaults((JsonObject)doc.Json.DeepClone());
            var view = new GenericView(defaulted);
            string name = view.Name;
            if (string.IsNullOrEmpty(name))
            {
                errors.Add(new(where, kind.Kind.ToLowerInvariant() + "/?", "metadata.name", "Required value"));
                continue;
            }
            string? ns = kind.Namespaced ? view.Namespace : null;
            string objName = $"{kind.Kind.ToLowerInvariant()}/{name}" + (ns is null ? "" : $" (namespace {ns})");
            if (!seenKeys.Add(kind.StoreKey(ns, name)))
            {
                errors.Add(new(where, objName, "metadata.name", "the same object appears twice in this apply"));
                continue;
            }
            var existing = await client.GetAsync(kind, ns, name, ct).ConfigureAwait(false);
            if (existing is not null && kind == Kinds.Pod && new PodView(existing.Json).IsTerminating)
            {
                // As the API server: the name stays taken until the kubelet has torn the pod down and removed it.
                errors.Add(new(where, objName, "metadata.deletionTimestamp", "object is being deleted: the pod is terminating; apply it again once it is gone"));
                continue;
            }
            var desired = existing is null
                ? ObjectDefaults.ForCreate((JsonObject)doc.Json.DeepClone(), Guid.NewGuid().ToString(), time.GetUtcNow())
                : ObjectDefaults.ForUpdate(existing.Json, (JsonObject)doc.Json.DeepClone());
            var fieldErrors = new List<FieldError>(ObjectValidator.Validate(desired));
            if (existing is not null)
            {
                fieldErrors.AddRange(ObjectValidator.ValidateUpdate(existing.Json, desired));
            }
            if (kind == Kinds.Service && fieldErrors.Count == 0)
            {
                // Range checks need the cluster config; the store is consulted only after every document passed.
                fieldErrors.AddRange(ServiceAllocationPlanner.Plan((await AllocatorAsync(ct).ConfigureAwait(false)).Config, desired).Errors);
            }
            foreach (var fe in fieldErrors)
            {
                errors.Add(new(where, objName, fe.Path, fe.Message));
            }
            if (kind == Kinds.Namespace)
            {
                newNamespaces.Add(name);
            }
            if (kind == Kinds.Node)
            {
                newNodes.Add(name);
            }
            plan.Add((doc, kind, existing, desired));
        }

        // References, checked against the store plus what this same apply creates earlier or later.
        foreach (var (doc, kind, existing, desired) in plan)
        {
            var view = new GenericView(desired);
            string objName = $"{kind.Kind.ToLowerInvariant()}/{view.Name}";
            if (kind.Namespaced && view.Namespace is { } ns && !newNamespaces.Contains(ns)
                && await client.GetAsync(Kinds.Namespace, null, ns, ct).ConfigureAwait(false) is null)
            {
                errors.Add(new(Where(doc), objName, "metadata.namespace", $"namespace \"{ns}\" not found"));
            }
            if (kind == Kinds.Pod && new PodView(desired).NodeName is { } node && !newNodes.Contains(node)
                && await client.GetAsync(Kinds.Node, null, node, ct).ConfigureAwait(false) is null)
            {
                errors.Add(new(Where(doc), objName, "spec.nodeName", $"node \"{node}\" not found"));
            }
        }
        if (errors.Count > 0)
        {
            return ([], errors);
        }

        // Allocation for every Service before any write: a clash refuses the whole apply with nothing written.
        var allocated = new List<(string Key, long Revision)>[plan.Count];
        ServiceAllocator? allocator = null;
        for (int i = 0; i < plan.Count; i++)
        {
            allocated[i] = [];
            var (doc, kind, _, desired) = plan[i];
            if (kind != Kinds.Service)
            {
                continue;
            }
            allocator = await AllocatorAsync(ct).ConfigureAwait(false);
            var result = await allocator.AllocateAsync(desired, ct).ConfigureAwait(false);
            allocated[i].AddRange(result.Created);
            foreach (var fe in result.Errors)
            {
                errors.Add(new(Where(doc), $"service/{new GenericView(desired).Name}", fe.Path, fe.Message));
            }
        }
        if (errors.Count > 0)
        {
            await allocator!.ReleaseCreatedAsync(allocated.SelectMany(a => a), CancellationToken.None).ConfigureAwait(false);
            return ([], errors);
        }

        var done = new List<ApplyOutcome>();
        int written = 0;
        try
        {
            for (; written < plan.Count; written++)
            {
                var (doc, kind, existing, desired) = plan[written];
                var view = new GenericView(desired);
                string objName = $"{kind.Kind.ToLowerInvariant()}/{view.Name}";
                try
                {
                    if (existing is null)
                    {
                        await client.CreateAsync(desired, ct).ConfigureAwait(false);
                        done.Add(new(objName, "created"));
                    }
                    else if (JsonNode.DeepEquals(Comparable(existing.Json), Comparable(desired)))
                    {
                        done.Add(new(objName, "unchanged"));
                    }
                    else
                    {
                        await client.UpdateAsync(existing, desired, ct).ConfigureAwait(false);
                        done.Add(new(objName, "configured"));
                        if (kind == Kinds.Service)
                        {
                            // What the update dropped (a type change, a removed port, ExternalName) is free again.
                            var config = (await AllocatorAsync(ct).ConfigureAwait(false)).Config;
                            var dropped = ServiceAllocationPlanner.Held(config, existing.Json).Except(ServiceAllocationPlanner.Held(config, desired));
                            await (await AllocatorAsync(ct).ConfigureAwait(false)).ReleaseAsync(dropped, ServiceAllocator.OwnerOf(existing.Json, time.GetUtcNow()), ct).ConfigureAwait(false);
                        }
                    }
                }
                catch (StoreException e) when (e is StoreConflictException or StoreNotFoundException)
                {
                    errors.Add(new(Where(doc), objName, "metadata.resourceVersion", $"changed by someone else while applying ({e.Message}); apply again"));
                    break;
                }
            }
        }
        finally
        {
            // Objects not written (a lost race, a store error, cancellation) must not keep what was allocated for them.
            if (written < plan.Count && allocator is not null)
            {
                await allocator.ReleaseCreatedAsync(allocated.Skip(written).SelectMany(a => a), CancellationToken.None).ConfigureAwait(false);
            }
        }
        return (done, errors);
    }

    public async Task<(IReadOnlyList<ApplyOutcome> Done, IReadOnlyList<AdmissionError> Errors)> DeleteAsync(IReadOnlyList<ManifestDocument> docs, CancellationToken ct = default)
    {
        var r = await DeleteAsync(docs, new DeleteOptions(), ct).ConfigureAwait(false);
        return (r.Done, r.Errors);
    }

    /// <summary>
    /// Deletes what the manifests name. A Pod bound to a node is deleted gracefully (as the API server does):
    /// it gets <c>metadata.deletionTimestamp</c> and <c>deletionGracePeriodSeconds</c> and its kubelet removes
    /// it once torn down; <see cref="DeleteOptions.Force"/> or a grace period of 0 removes it at once, as does
    /// having no node. A Service's allocations are released with it.
    /// </summary>
    public async Task<DeleteResult> DeleteAsync(IReadOnlyList<ManifestDocument> docs, DeleteOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<AdmissionError>();
        var targets = new List<(KindInfo Kind, string? Ns, string Name, string Where)>();
        foreach (var doc in docs)
        {
            var kind = Kinds.Find(doc.Json);
            var view = new GenericView(doc.Json);
            if (kind is null)
            {
                errors.Add(new(Where(doc), Describe(doc.Json), "kind", "not a supported kind"));
            }
            else if (string.IsNullOrEmpty(view.Name))
            {
                errors.Add(new(Where(doc), kind.Kind.ToLowerInvariant() + "/?", "metadata.name", "Required value"));
            }
            else
            {
                targets.Add((kind, kind.Namespaced ? view.Namespace ?? ObjectDefaults.DefaultNamespace : null, view.Name, Where(doc)));
            }
        }
        if (errors.Count > 0)
        {
            return new DeleteResult([], errors, []);
        }
        var done = new List<ApplyOutcome>();
        var terminating = new List<TerminatingPod>();
        var cascaded = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (kind, ns, name, where) in targets)
        {
            string objName = $"{kind.Kind.ToLowerInvariant()}/{name}";
            var existing = await client.GetAsync(kind, ns, name, ct).ConfigureAwait(false);
            if (existing is null)
            {
                if (cascaded.Contains(kind.StoreKey(ns, name)))
                {
                    done.Add(new(objName, "deleted")); // went with its namespace earlier in this delete
                }
                else
                {
                    errors.Add(new(where, objName, "metadata.name", "not found"));
                }
                continue;
            }
            if (kind == Kinds.Namespace)
            {
                // The namespace controller's job, done inline: everything in the namespace goes with it
                // (pods at once: there is no one left to wait for).
                foreach (var k in Kinds.All.Where(k => k.Namespaced))
                {
                    var (items, _) = await client.ListAsync(k, name, ct).ConfigureAwait(false);
                    foreach (var item in items)
                    {
                        await DeleteIgnoringGoneAsync(k, item, ct).ConfigureAwait(false);
                        cascaded.Add(item.Key);
                    }
                }
            }
            if (kind == Kinds.Pod && !options.Force && await MarkTerminatingAsync(existing, options.GracePeriodSeconds, ct).ConfigureAwait(false) is { } pod)
            {
                terminating.Add(pod);
                done.Add(new(objName, "deleted"));
                continue;
            }
            await DeleteIgnoringGoneAsync(kind, existing, ct).ConfigureAwait(false);
            done.Add(new(objName, "deleted"));
        }
        return new DeleteResult(done, errors, terminating);
    }

    /// <summary>
    /// Graceful deletion of a bound pod: sets deletionTimestamp and deletionGracePeriodSeconds (the flag, else
    /// spec.terminationGracePeriodSeconds, else 30). Null when it should go at once instead (no node, grace 0).
    /// A pod already terminating stays so (a shorter grace period shortens it, as the API server allows).
    /// </summary>
    private async Task<TerminatingPod?> MarkTerminatingAsync(StoredObject pod, int? gracePeriod, CancellationToken ct)
    {
        var view = new PodView(pod.Json);
        if (string.IsNullOrEmpty(view.NodeName))
        {
            return null;
        }
        long grace = gracePeriod ?? (view.TerminationGracePeriodSeconds is long g and >= 0 ? g : 30);
        if (grace == 0)
        {
            return null;
        }
        string now = Timestamps.Format(time.GetUtcNow());
        long effective = grace;
        bool exists = await client.UpdateLoopAsync(Kinds.Pod, view.Namespace, view.Name, o =>
        {
            if (o["metadata"] is not JsonObject meta)
            {
                return false;
            }
            if (meta["deletionTimestamp"] is not null)
            {
                long current = new PodView(o).DeletionGracePeriodSeconds ?? long.MaxValue;
                if (grace >= current)
                {
                    effective = current;
                    return false; // already terminating, no sooner: nothing to change
                }
            }
            else
            {
                meta["deletionTimestamp"] = now;
            }
            meta["deletionGracePeriodSeconds"] = grace;
            return true;
        }, ct).ConfigureAwait(false);
        if (!exists && await client.GetAsync(Kinds.Pod, view.Namespace, view.Name, ct).ConfigureAwait(false) is null)
        {
            return null; // gone meanwhile: the delete below finds nothing to do
        }
        return new TerminatingPod(view.Namespace ?? ObjectDefaults.DefaultNamespace, view.Name, view.Metadata.Uid ?? "", (int)Math.Min(effective, int.MaxValue));
    }

    /// <summary>
    /// Waits until every pod in <paramref name="pods"/> is gone (or replaced by a new pod of the same name),
    /// at most <paramref name="timeout"/>; returns those still there.
    /// </summary>
    public async Task<IReadOnlyList<TerminatingPod>> WaitGoneAsync(IReadOnlyList<TerminatingPod> pods, TimeSpan timeout, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(pods);
        var left = pods.ToList();
        var deadline = time.GetUtcNow() + timeout;
        while (left.Count > 0)
        {
            var still = new List<TerminatingPod>();
            foreach (var p in left)
            {
                var got = await client.GetAsync(Kinds.Pod, p.Namespace, p.Name, ct).ConfigureAwait(false);
                if (got is not null && new GenericView(got.Json).Metadata.Uid == p.Uid)
                {
                    still.Add(p);
                }
            }
            left = still;
            if (left.Count == 0 || time.GetUtcNow() >= deadline)
            {
                break;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(200), time, ct).ConfigureAwait(false);
        }
        return left;
    }

    private async Task DeleteIgnoringGoneAsync(KindInfo kind, StoredObject obj, CancellationToken ct)
    {
        try
        {
            await client.Store.DeleteAsync(obj.Key, 0, ct).ConfigureAwait(false);
        }
        catch (StoreNotFoundException)
        {
            return;
        }
        if (kind == Kinds.Service)
        {
            var allocator = await AllocatorAsync(ct).ConfigureAwait(false);
            await allocator.ReleaseAsync(ServiceAllocationPlanner.Held(allocator.Config, obj.Json), ServiceAllocator.OwnerOf(obj.Json, time.GetUtcNow()), ct).ConfigureAwait(false);
        }
    }

    /// <summary>Status and server-set metadata do not make an apply "configured".</summary>
    private static JsonObject Comparable(JsonObject o)
    {
        var c = (JsonObject)o.DeepClone();
        if (Kinds.Find(c) != Kinds.Service)
        {
            // A Service's status.loadBalancer comes from the manifest (or the pool): a change to it is a change.
            c.Remove("status");
        }
        if (c["metadata"] is JsonObject m)
        {
            m.Remove("resourceVersion");
        }
        return c;
    }

    private static string Where(ManifestDocument doc) =>
        $"{doc.SourceName}: document {doc.Document}" + (doc.Item is int i ? $" item {i + 1}" : "");

    private static string Describe(JsonObject o) =>
        $"{o["kind"]?.ToString() ?? "?"}/{o["metadata"]?["name"]?.ToString() ?? "?"}";
}
