using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Trellis.Store.Tests.Etcd;

/// <summary>Raft timing for test clusters: fast for one member, steadier (on 2 busy cores) for three.</summary>
internal sealed record EtcdTiming(int HeartbeatMs, int ElectionMs)
{
    /// <summary>A single member elects itself after one election timeout: keep it short.</summary>
    public static readonly EtcdTiming Single = new(10, 100);

    /// <summary>Three members: spurious elections under CPU load would only add noise.</summary>
    public static readonly EtcdTiming Cluster = new(50, 400);
}

/// <summary>
/// Real etcd members for the tests: started on 127.0.0.1 with ports the kernel handed out,
/// data on tmpfs (etcd 3.4 has no --unsafe-no-fsync), stopped by the PID we started and removed
/// with their data on dispose. Every directory is under one <c>trl-etcdtest-…</c> root.
/// </summary>
internal sealed class EtcdCluster : IAsyncDisposable
{
    /// <summary>Enough for a value of <see cref="KeyRules.MaxValueBytes"/> (etcd's default, 1.5 MiB, is for the whole request).</summary>
    public const int MaxRequestBytes = 2 * 1024 * 1024;

    private static readonly HttpClient s_http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };

    private readonly string _root;

    private EtcdCluster(string root, IReadOnlyList<EtcdMember> members)
    {
        _root = root;
        Members = members;
    }

    public IReadOnlyList<EtcdMember> Members { get; }

    /// <summary><c>etcd://</c> URL listing every member's client endpoint, in member order.</summary>
    public string Url => "etcd://" + string.Join(",", Members.Select(m => m.ClientEndpoint));

    /// <summary>
    /// Starts <paramref name="size"/> members and waits until each reports itself healthy (it has
    /// a leader). <paramref name="launcher"/> prefixes the command (e.g. <c>ip netns exec NAME</c>);
    /// such members are not health-checked from here, since they may be unreachable from here.
    /// </summary>
    public static async Task<EtcdCluster> StartAsync(int size, EtcdTiming timing, bool unixSocket = false, int? maxRequestBytes = MaxRequestBytes, IReadOnlyList<string>? launcher = null)
    {
        string root = Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"trl-etcdtest-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        var members = new List<EtcdMember>();
        try
        {
            var ports = FreePorts(2 * size);
            string token = Path.GetFileName(root);
            for (int i = 0; i < size; i++)
            {
                members.Add(new EtcdMember($"m{i}", Path.Combine(root, $"m{i}"), ports[2 * i], ports[(2 * i) + 1], unixSocket));
            }
            string initialCluster = string.Join(",", members.Select(m => $"{m.Name}={m.PeerUrl}"));
            foreach (var member in members)
            {
                member.Configure(initialCluster, token, timing, maxRequestBytes, launcher ?? []);
                member.Start();
            }
            if (launcher is null)
            {
                await Task.WhenAll(members.Select(m => m.WaitHealthyAsync(TimeSpan.FromSeconds(20)))).ConfigureAwait(false);
            }
            return new EtcdCluster(root, members);
        }
        catch
        {
            foreach (var member in members)
            {
                member.Kill();
            }
            TryDelete(root);
            throw;
        }
    }

    /// <summary>The member that is raft leader, as the members' status reports it (waiting out an election).</summary>
    public async Task<EtcdMember> LeaderAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            foreach (var member in Members.Where(m => m.IsRunning))
            {
                try
                {
                    using var response = await s_http.PostAsync(new Uri(member.ClientUrl + "/v3/maintenance/status"), new StringContent("{}")).ConfigureAwait(false);
                    using var status = JsonDocument.Parse(await response.Content.ReadAsStringAsync().ConfigureAwait(false));
                    var root = status.RootElement;
                    if (root.TryGetProperty("leader", out var leader) && leader.GetString() == root.GetProperty("header").GetProperty("member_id").GetString())
                    {
                        return member;
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException)
                {
                    // Starting, stopping or mid-election: ask again.
                }
            }
            await Task.Delay(20).ConfigureAwait(false);
        }
        throw new InvalidOperationException("no member reports itself leader");
    }

    /// <summary>Writes a raw key/value, bypassing Trellis (to plant store contents another client could have written).</summary>
    public async Task PutRawAsync(byte[] key, byte[] value)
    {
        string body = $$"""{"key":"{{Convert.ToBase64String(key)}}","value":"{{Convert.ToBase64String(value)}}"}""";
        using var response = await s_http.PostAsync(new Uri(Members[0].ClientUrl + "/v3/kv/put"), new StringContent(body)).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var member in Members)
        {
            member.Kill();
        }
        foreach (var member in Members)
        {
            await member.WaitForExitAsync().ConfigureAwait(false);
            member.Dispose();
        }
        TryDelete(_root);
    }

    /// <summary>Ports the kernel picked, all held until all are picked so none repeats.</summary>
    public static int[] FreePorts(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
            }
            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
            }
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    internal static async Task<bool> IsHealthyAsync(string clientUrl)
    {
        try
        {
            using var response = await s_http.GetAsync(new Uri(clientUrl + "/health")).ConfigureAwait(false);
            return response.IsSuccessStatusCode && (await response.Content.ReadAsStringAsync().ConfigureAwait(false)).Contains("\"true\"", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }
}

/// <summary>One etcd process. Kill is SIGKILL to the PID this object started; Start again restarts it on the same data.</summary>
internal sealed class EtcdMember(string name, string directory, int clientPort, int peerPort, bool unixSocket) : IDisposable
{
    private readonly List<string> _arguments = [];
    private string _fileName = "etcd";
    private Process? _process;

    public string Name => name;

    public int ClientPort => clientPort;

    public string ClientEndpoint => $"127.0.0.1:{clientPort.ToString(CultureInfo.InvariantCulture)}";

    public string ClientUrl => "http://" + ClientEndpoint;

    public string PeerUrl => $"http://127.0.0.1:{peerPort.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// etcd 3.4 wants unix listen URLs in host:port form and creates the socket under that name
    /// in its working directory; this is the resulting path.
    /// </summary>
    public string? UnixSocketPath => unixSocket ? Path.Combine(directory, $"localhost:{clientPort.ToString(CultureInfo.InvariantCulture)}") : null;

    public string LogPath => Path.Combine(directory, "etcd.log");

    public int? Pid => _process?.Id;

    public bool IsRunning => _process is { HasExited: false };

    public void Configure(string initialCluster, string token, EtcdTiming timing, int? maxRequestBytes, IReadOnlyList<string> launcher)
    {
        Directory.CreateDirectory(directory);
        string listen = ClientUrl + (unixSocket ? $",unix://localhost:{clientPort.ToString(CultureInfo.InvariantCulture)}" : "");
        if (launcher.Count > 0)
        {
            _fileName = launcher[0];
            _arguments.AddRange(launcher.Skip(1));
            _arguments.Add("etcd");
        }
        else
        {
            _fileName = EtcdPrerequisites.Binary!;
        }
        _arguments.AddRange(
        [
            "--name", name,
            "--data-dir", Path.Combine(directory, "data"),
            "--listen-client-urls", listen,
            "--advertise-client-urls", ClientUrl,
            "--listen-peer-urls", PeerUrl,
            "--initial-advertise-peer-urls", PeerUrl,
            "--initial-cluster", initialCluster,
            "--initial-cluster-token", token,
            "--initial-cluster-state", "new",
            "--heartbeat-interval", timing.HeartbeatMs.ToString(CultureInfo.InvariantCulture),
            "--election-timeout", timing.ElectionMs.ToString(CultureInfo.InvariantCulture),
            "--logger", "zap",
            "--log-level", "warn",
            "--log-outputs", LogPath,
        ]);
        if (maxRequestBytes is { } max)
        {
            _arguments.AddRange(["--max-request-bytes", max.ToString(CultureInfo.InvariantCulture)]);
        }
    }

    public void Start()
    {
        var start = new ProcessStartInfo(_fileName)
        {
            UseShellExecute = false,
            WorkingDirectory = directory,
            RedirectStandardInput = true, // never the test runner's stdin
        };
        foreach (string argument in _arguments)
        {
            start.ArgumentList.Add(argument);
        }
        _process?.Dispose();
        _process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {_fileName}");
    }

    public async Task WaitHealthyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await EtcdCluster.IsHealthyAsync(ClientUrl).ConfigureAwait(false))
        {
            if (_process is { HasExited: true } || DateTime.UtcNow > deadline)
            {
                string state = _process is { HasExited: true } ? $"exited with {_process.ExitCode}" : $"not healthy after {timeout.TotalSeconds} s";
                throw new InvalidOperationException($"etcd member {name} ({ClientUrl}) {state}; log:\n{LogTail()}");
            }
            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    /// <summary>SIGKILL, no chance to shut down cleanly: what a crashed node looks like.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
        }
    }

    public async Task WaitForExitAsync()
    {
        if (_process is not null)
        {
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }
    }

    public string LogTail()
    {
        try
        {
            var lines = File.ReadAllLines(LogPath);
            return string.Join('\n', lines.TakeLast(20));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    public void Dispose() => _process?.Dispose();
}
