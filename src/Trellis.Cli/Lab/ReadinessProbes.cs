using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Cli.Lab;

/// <summary>
/// The kubelet's readiness prober for the lab: each container's `readinessProbe` (httpGet, tcpSocket or exec)
/// runs from the node's netns against the pod IP, as the kubelet probes, every periodSeconds (default 10) after
/// initialDelaySeconds, each attempt bounded by timeoutSeconds (default 1). A container is unready until its
/// first success; successThreshold (1) consecutive successes make it ready, failureThreshold (3) consecutive
/// failures unready again. Probes run in the background; <see cref="IsReady"/> only reads their last result, so
/// a slow or hanging pod never holds up the kubelet's sync loop.
/// </summary>
internal sealed class ReadinessProbes(TextWriter log)
{
    private readonly Dictionary<(string Uid, string Container, int Pid), State> _states = [];

    private sealed class State(DateTimeOffset started)
    {
        public DateTimeOffset NextAt { get; set; } = started;
        public Task<string?>? Running { get; set; }
        public int Successes { get; set; }
        public int Failures { get; set; }
        public bool Ready { get; set; }
    }

    /// <summary>The container's readiness as its probe last decided; starts the next probe when one is due.</summary>
    public bool IsReady(PodView pod, PodRecord rec, ContainerView container, ProcRecord proc, string netns)
    {
        var probe = container.ReadinessProbe!;
        var key = (rec.Uid, container.Name, proc.Pid);
        if (!_states.TryGetValue(key, out var s))
        {
            // A (re)started container: a fresh prober, as the kubelet makes one per container instance.
            _states.Keys.Where(k => k.Uid == rec.Uid && k.Container == container.Name).ToList().ForEach(k => _states.Remove(k));
            s = new State(DateTimeOffset.UtcNow + TimeSpan.FromSeconds(Seconds(probe, "initialDelaySeconds", 0)));
            _states[key] = s;
        }
        if (s.Running is { IsCompleted: true } done)
        {
            string? failure = done.Result;
            s.Running = null;
            if (failure is null)
            {
                s.Failures = 0;
                if (++s.Successes >= Seconds(probe, "successThreshold", 1) && !s.Ready)
                {
                    s.Ready = true;
                    Log($"{rec.Namespace}/{rec.Name}/{container.Name}: readiness probe succeeded");
                }
            }
            else
            {
                s.Successes = 0;
                if (++s.Failures >= Seconds(probe, "failureThreshold", 3) && s.Ready)
                {
                    s.Ready = false;
                    Log($"{rec.Namespace}/{rec.Name}/{container.Name}: readiness probe failed {s.Failures} times: {failure}");
                }
            }
        }
        if (s.Running is null && DateTimeOffset.UtcNow >= s.NextAt && rec.PodIp is { } podIp)
        {
            var timeout = TimeSpan.FromSeconds(Seconds(probe, "timeoutSeconds", 1));
            s.NextAt = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(Seconds(probe, "periodSeconds", 10));
            s.Running = Task.Run(() => RunAsync(probe, container, podIp, netns, timeout));
        }
        return s.Ready;
    }

    /// <summary>Forgets a pod's probers (it was torn down).</summary>
    public void Forget(string uid)
    {
        foreach (var k in _states.Keys.Where(k => k.Uid == uid).ToList())
        {
            _states.Remove(k);
        }
    }

    /// <summary>One probe attempt: null on success, else why it failed.</summary>
    internal static async Task<string?> RunAsync(JsonObject probe, ContainerView container, string podIp, string netns, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            if (probe["httpGet"] is JsonObject http)
            {
                if (http["scheme"]?.GetValue<string>() is { } scheme && !scheme.Equals("HTTP", StringComparison.OrdinalIgnoreCase))
                {
                    return $"httpGet.scheme {scheme} is not supported in the lab (HTTP is)";
                }
                int port = ResolvePort(http["port"], container) ?? throw new ProbeException($"httpGet.port {http["port"]?.ToJsonString()} names no port of the container");
                string host = http["host"]?.GetValue<string>() is { Length: > 0 } h ? h : podIp;
                string path = http["path"]?.GetValue<string>() is { Length: > 0 } p ? p : "/";
                return await HttpGetAsync(host, port, path, cts.Token).ConfigureAwait(false);
            }
            if (probe["tcpSocket"] is JsonObject tcp)
            {
                int port = ResolvePort(tcp["port"], container) ?? throw new ProbeException($"tcpSocket.port {tcp["port"]?.ToJsonString()} names no port of the container");
                string host = tcp["host"]?.GetValue<string>() is { Length: > 0 } h ? h : podIp;
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(IPAddress.Parse(host), port, cts.Token).ConfigureAwait(false);
                return null;
            }
            if (probe["exec"]?["command"] is JsonArray command)
            {
                return await ExecAsync(netns, command.Select(c => c?.GetValue<string>() ?? "").ToList(), cts.Token).ConfigureAwait(false);
            }
            return "no supported handler (httpGet, tcpSocket, exec)";
        }
        catch (OperationCanceledException)
        {
            return $"timed out after {timeout.TotalSeconds:0.#}s";
        }
        catch (Exception e) when (e is SocketException or IOException or ProbeException or FormatException or InvalidOperationException)
        {
            return e.Message;
        }
    }

    private static async Task<string?> HttpGetAsync(string host, int port, string path, CancellationToken ct)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Parse(host), port, ct).ConfigureAwait(false);
        string hostHeader = string.Create(CultureInfo.InvariantCulture, $"{host}:{port}");
        byte[] request = Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {hostHeader}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n");
        await socket.SendAsync(request, SocketFlags.None, ct).ConfigureAwait(false);
        var buffer = new byte[256];
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0 || Array.IndexOf(buffer, (byte)'\n', 0, read + n) >= 0)
            {
                read += n;
                break;
            }
            read += n;
        }
        string statusLine = Encoding.ASCII.GetString(buffer, 0, read).Split('\n')[0].Trim();
        var parts = statusLine.Split(' ');
        if (parts.Length < 2 || !parts[0].StartsWith("HTTP/", StringComparison.Ordinal) || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int code))
        {
            return $"GET http://{hostHeader}{path}: not an HTTP response ('{statusLine}')";
        }
        // As the kubelet: 200-399 is success.
        return code is >= 200 and < 400 ? null : $"GET http://{hostHeader}{path}: HTTP {code}";
    }

    private static async Task<string?> ExecAsync(string netns, List<string> command, CancellationToken ct)
    {
        if (command.Count == 0)
        {
            return "exec.command is empty";
        }
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])["netns", "exec", netns, .. command])
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi) ?? throw new IOException("could not start ip netns exec");
        var drainOut = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var drainErr = p.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await p.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw;
        }
        await Task.WhenAll(drainOut, drainErr).ConfigureAwait(false);
        return p.ExitCode == 0 ? null : $"exec {string.Join(' ', command)}: exit {p.ExitCode}";
    }

    /// <summary>A port number, or the name of one of the container's ports (IntOrString).</summary>
    private static int? ResolvePort(JsonNode? port, ContainerView container)
    {
        if (port is JsonValue v && v.TryGetValue(out long n))
        {
            return (int)n;
        }
        if (port is JsonValue s && s.TryGetValue(out string? name))
        {
            if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int parsed))
            {
                return parsed;
            }
            return container.Ports.FirstOrDefault(p => p.Name == name)?.ContainerPort;
        }
        return null;
    }

    private static int Seconds(JsonObject probe, string field, int fallback) =>
        probe[field] is JsonValue v && v.TryGetValue(out long n) && n > 0 ? (int)Math.Min(n, 3600) : fallback;

    private void Log(string message) =>
        log.WriteLine($"{DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} kubelet: {message}");

    private sealed class ProbeException(string message) : Exception(message);
}
