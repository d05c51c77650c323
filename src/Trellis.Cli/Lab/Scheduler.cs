using System.Globalization;
using System.Text.Json.Nodes;
using Trellis.Cli.Cluster;
using Trellis.Core.Objects;
using Trellis.Store;

namespace Trellis.Cli.Lab;

/// <summary>
/// The lab's scheduler: binds every pod without spec.nodeName to the Ready node running the
/// fewest pods (ties by name), the way kube-scheduler's spreading behaves on an empty cluster.
/// A pod naming its node is left alone (admission has already checked that the node exists).
/// </summary>
public sealed class Scheduler(ObjectClient client, TextWriter log)
{
    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var (pods, rev) = await client.ListAsync(Kinds.Pod, null, ct).ConfigureAwait(false);
                foreach (var p in pods.Where(p => new PodView(p.Json).NodeName is null))
                {
                    await BindAsync(p, ct).ConfigureAwait(false);
                }
                await foreach (var e in client.WatchAsync(Kinds.Pod, rev, ct).ConfigureAwait(false))
                {
                    if (e.Type == WatchEventType.Put && new PodView(e.Stored.Json).NodeName is null)
                    {
                        await BindAsync(e.Stored, ct).ConfigureAwait(false);
                    }
                }
            }
            catch (StoreCompactedException)
            {
                // relist
            }
            catch (StoreException e) when (!ct.IsCancellationRequested)
            {
                log.WriteLine($"scheduler: store: {e.Message}; retrying");
                await Task.Delay(500, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task BindAsync(StoredObject stored, CancellationToken ct)
    {
        var pod = new PodView(stored.Json);
        var (nodes, _) = await client.ListAsync(Kinds.Node, null, ct).ConfigureAwait(false);
        var (pods, _) = await client.ListAsync(Kinds.Pod, null, ct).ConfigureAwait(false);
        var ready = nodes.Select(n => new NodeView(n.Json))
            .Where(n => n.Json["status"]?["conditions"] is JsonArray conds && conds.Any(c => c?["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True"))
            .Select(n => n.Name)
            .ToList();
        if (ready.Count == 0)
        {
            return; // no Ready node yet: the pod stays Pending, and is bound when the next pod event comes
        }
        var load = pods.Select(p => new PodView(p.Json).NodeName).Where(n => n is not null).GroupBy(n => n!).ToDictionary(g => g.Key, g => g.Count());
        string target = ready.OrderBy(n => load.GetValueOrDefault(n)).ThenBy(n => n, StringComparer.Ordinal).First();
        bool bound = await client.UpdateLoopAsync(Kinds.Pod, pod.Namespace, pod.Name, json =>
        {
            if (json["metadata"]?["uid"]?.GetValue<string>() != pod.Metadata.Uid || json["spec"]?["nodeName"] is not null)
            {
                return false;
            }
            json["spec"]!["nodeName"] = target;
            return true;
        }, ct).ConfigureAwait(false);
        if (bound)
        {
            log.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} scheduler: bound {pod} to {target}");
        }
    }
}
