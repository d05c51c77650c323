using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Cluster;

/// <summary>One apply/delete problem, naming the document, the object and the field.</summary>
public sealed record AdmissionError(string Document, string Target, string Field, string Message)
{
    public override string ToString() => $"{Document}: {Target}: {Field}: {Message}";
}

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
            var desired = existing is null
                ? ObjectDefaults.ForCreate((JsonObject)doc.Json.DeepClone(), Guid.NewGuid().ToString(), time.GetUtcNow())
                : ObjectDefaults.ForUpdate(existing.Json, (JsonObject)doc.Json.DeepClone());
            var fieldErrors = new List<FieldError>(ObjectValidator.Validate(desired));
            if (existing is not null)
            {
                fieldErrors.AddRange(ObjectValidator.ValidateUpdate(existing.Json, desired));
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

        var done = new List<ApplyOutcome>();
        foreach (var (doc, kind, existing, desired) in plan)
        {
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
                }
            }
            catch (StoreException e) when (e is StoreConflictException or StoreNotFoundException)
            {
                errors.Add(new(Where(doc), objName, "metadata.resourceVersion", $"changed by someone else while applying ({e.Message}); apply again"));
                break;
            }
        }
        return (done, errors);
    }

    public async Task<(IReadOnlyList<ApplyOutcome> Done, IReadOnlyList<AdmissionError> Errors)> DeleteAsync(IReadOnlyList<ManifestDocument> docs, CancellationToken ct = default)
    {
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
            return ([], errors);
        }
        var done = new List<ApplyOutcome>();
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
                // The namespace controller's job, done inline: everything in the namespace goes with it.
                foreach (var k in Kinds.All.Where(k => k.Namespaced))
                {
                    var (items, _) = await client.ListAsync(k, name, ct).ConfigureAwait(false);
                    foreach (var item in items)
                    {
                        await DeleteIgnoringGoneAsync(item, ct).ConfigureAwait(false);
                        cascaded.Add(item.Key);
                    }
                }
            }
            await DeleteIgnoringGoneAsync(existing, ct).ConfigureAwait(false);
            done.Add(new(objName, "deleted"));
        }
        return (done, errors);
    }

    private async Task DeleteIgnoringGoneAsync(StoredObject obj, CancellationToken ct)
    {
        try
        {
            await client.Store.DeleteAsync(obj.Key, 0, ct).ConfigureAwait(false);
        }
        catch (StoreNotFoundException)
        {
        }
    }

    /// <summary>Status and server-set metadata do not make an apply "configured".</summary>
    private static JsonObject Comparable(JsonObject o)
    {
        var c = (JsonObject)o.DeepClone();
        c.Remove("status");
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
