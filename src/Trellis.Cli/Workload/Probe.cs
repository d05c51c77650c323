using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Trellis.Cli.Cluster;
using Trellis.Cli.Lab;
using Trellis.Core.Lab;
using Trellis.Core.Objects;
using Trellis.Netlink;

namespace Trellis.Cli.Workload;

/// <summary>One probed pair.</summary>
public sealed record ProbeResult(string From, string To, string? FromNode, string? ToNode, bool Connected, string? Answer, string? Error, double Ms);

/// <summary>
/// The all-pairs connectivity matrix (DESIGN.md §6): a fresh connection from every Ready pod to
/// every other, 1 s timeout, all pairs in parallel. No process per probe: for each source pod a
/// thread enters its netns just long enough to open the sockets (a socket keeps the netns it was
/// made in), and the connects then run concurrently from anywhere.
/// </summary>
public static class Probe
{
    public static async Task<IReadOnlyList<ProbeResult>> RunAsync(LabState lab, ObjectClient client, IReadOnlyList<string>? namespaces, int port, string protocol, bool toService, TimeSpan timeout, CancellationToken ct)
    {
        var (pods, _) = await client.ListAsync(Kinds.Pod, null, ct).ConfigureAwait(false);
        var ready = pods.Select(p => new PodView(p.Json))
            .Where(p => p.IsReady && p.PodIP is not null)
            .Where(p => namespaces is { Count: > 0 } ? namespaces.Contains(p.Namespace ?? "") : p.Namespace != "kube-system")
            .OrderBy(p => p.Namespace, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal)
            .ToList();
        Dictionary<string, string>? serviceIp = null;
        if (toService)
        {
            serviceIp = await ServiceTargetsAsync(client, ready, ct).ConfigureAwait(false);
        }
        var tasks = new List<Task<ProbeResult>>();
        foreach (var from in ready)
        {
            string netns = LabNames.PodNetns(lab.Name, from.Namespace ?? "default", from.Name, from.Metadata.Uid ?? "");
            var targets = ready.Where(t => t != from).ToList();
            List<Socket> sockets;
            try
            {
                using var ns = NetNs.Open(LabNetwork.NetnsPath(netns));
                sockets = ns.Run(() => targets.Select(_ => new Socket(AddressFamily.InterNetwork, protocol == "udp" ? SocketType.Dgram : SocketType.Stream, protocol == "udp" ? ProtocolType.Udp : ProtocolType.Tcp)).ToList());
            }
            catch (NetlinkException e)
            {
                tasks.AddRange(targets.Select(t => Task.FromResult(new ProbeResult(Id(from), Id(t), from.NodeName, t.NodeName, false, null, e.Message, 0))));
                continue;
            }
            for (int i = 0; i < targets.Count; i++)
            {
                var to = targets[i];
                string? ip = toService ? serviceIp!.GetValueOrDefault(Id(to)) : to.PodIP;
                if (ip is null)
                {
                    sockets[i].Dispose();
                    tasks.Add(Task.FromResult(new ProbeResult(Id(from), Id(to), from.NodeName, to.NodeName, false, null, "no Service selects this pod", 0)));
                    continue;
                }
                tasks.Add(OneAsync(sockets[i], from, to, new IPEndPoint(IPAddress.Parse(ip), port), protocol, timeout));
            }
        }
        return await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    private static async Task<ProbeResult> OneAsync(Socket socket, PodView from, PodView to, IPEndPoint ep, string protocol, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        using (socket)
        using (var cts = new CancellationTokenSource(timeout))
        {
            try
            {
                await socket.ConnectAsync(ep, cts.Token).ConfigureAwait(false);
                var buf = new byte[512];
                int n;
                if (protocol == "udp")
                {
                    await socket.SendAsync("probe\n"u8.ToArray(), SocketFlags.None, cts.Token).ConfigureAwait(false);
                    n = await socket.ReceiveAsync(buf, SocketFlags.None, cts.Token).ConfigureAwait(false);
                }
                else
                {
                    n = await socket.ReceiveAsync(buf, SocketFlags.None, cts.Token).ConfigureAwait(false);
                }
                return new ProbeResult(Id(from), Id(to), from.NodeName, to.NodeName, true, Encoding.UTF8.GetString(buf, 0, n).Trim(), null, sw.Elapsed.TotalMilliseconds);
            }
            catch (OperationCanceledException)
            {
                return new ProbeResult(Id(from), Id(to), from.NodeName, to.NodeName, false, null, "timed out", sw.Elapsed.TotalMilliseconds);
            }
            catch (SocketException e)
            {
                return new ProbeResult(Id(from), Id(to), from.NodeName, to.NodeName, false, null, e.SocketErrorCode.ToString(), sw.Elapsed.TotalMilliseconds);
            }
        }
    }

    /// <summary>For --to-service: each pod's ClusterIP, from the first Service (by name) in its namespace selecting it.</summary>
    private static async Task<Dictionary<string, string>> ServiceTargetsAsync(ObjectClient client, List<PodView> pods, CancellationToken ct)
    {
        var (services, _) = await client.ListAsync(Kinds.Service, null, ct).ConfigureAwait(false);
        var result = new Dictionary<string, string>();
        foreach (var pod in pods)
        {
            foreach (var svc in services.Select(s => new ServiceView(s.Json)).Where(s => s.Namespace == pod.Namespace).OrderBy(s => s.Name, StringComparer.Ordinal))
            {
                if (svc.Selector.Count > 0 && LabelSelector.FromSet(svc.Selector).Matches(pod.Metadata.Labels) && svc.ClusterIP is { } ip && ip != "None")
                {
                    result[Id(pod)] = ip;
                    break;
                }
            }
        }
        return result;
    }

    public static string Id(PodView p) => $"{p.Namespace}/{p.Name}";

    public static string ToJson(IReadOnlyList<ProbeResult> results, int port, string protocol)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("port", port);
            w.WriteString("protocol", protocol);
            w.WriteStartArray("results");
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("from", r.From);
                w.WriteString("to", r.To);
                w.WriteBoolean("connected", r.Connected);
                if (r.Error is not null)
                {
                    w.WriteString("error", r.Error);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>The matrix as a coloured table, with an honest summary of same-node and cross-node pairs.</summary>
    public static string ToTable(IReadOnlyList<ProbeResult> results, int port, string protocol, bool color)
    {
        var names = results.Select(r => r.From).Concat(results.Select(r => r.To)).Distinct().Order(StringComparer.Ordinal).ToList();
        var byPair = results.ToDictionary(r => (r.From, r.To));
        var node = results.SelectMany(r => new[] { (r.From, r.FromNode), (r.To, r.ToNode) }).DistinctBy(x => x.Item1).ToDictionary(x => x.Item1, x => x.Item2);
        int w = Math.Max(4, names.Count == 0 ? 4 : names.Max(n => n.Length));
        var sb = new StringBuilder();
        sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"connectivity {port}/{protocol} (rows: from, columns: to; columns numbered as rows)\n");
        sb.Append(' ', w + 12);
        for (int j = 0; j < names.Count; j++)
        {
            sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"{j + 1,3}");
        }
        sb.Append('\n');
        for (int i = 0; i < names.Count; i++)
        {
            string from = names[i];
            sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"{i + 1,2} {from.PadRight(w)} {node.GetValueOrDefault(from) ?? "",-8}");
            foreach (var to in names)
            {
                if (from == to)
                {
                    sb.Append("  .");
                    continue;
                }
                bool ok = byPair.TryGetValue((from, to), out var r) && r.Connected;
                string mark = ok ? "✓" : "✗";
                sb.Append("  ").Append(color ? (ok ? $"\u001b[32m{mark}\u001b[0m" : $"\u001b[31m{mark}\u001b[0m") : mark);
            }
            sb.Append('\n');
        }
        var same = results.Where(r => r.FromNode == r.ToNode).ToList();
        var cross = results.Where(r => r.FromNode != r.ToNode).ToList();
        sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"same-node pairs: {same.Count(r => r.Connected)}/{same.Count} connected; cross-node pairs: {cross.Count(r => r.Connected)}/{cross.Count} connected\n");
        return sb.ToString();
    }
}
