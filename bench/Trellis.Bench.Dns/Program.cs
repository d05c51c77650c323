using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Trellis.Core.Objects;
using Trellis.Store;

// dnsperf against trellis-dns and against knotd serving the same records as a static zone: same machine,
// same run, both on loopback, alternating. Reports QPS at zero loss (cluster-name hits, and search-path
// expanded misses), p50/p99 latency at half that rate, and trellis-dns' RSS per 1,000 Services (each with an
// EndpointSlice of two endpoints) above an empty-store baseline. Usage (needs dnsperf and knot):
//   ./scripts/build.sh && dotnet run -c Release --project bench/Trellis.Bench.Dns -- [--services 1000] [--seconds 10] [--trellis-dns PATH]

var inv = CultureInfo.InvariantCulture;
int services = Opt("--services", 1000);
int seconds = Opt("--seconds", 10);
int clients = Opt("--clients", 4);
// --memory-only: RSS idle and after one saturating dnsperf run, no knotd and no latency runs (for tuning the runtime).
bool memoryOnly = Array.IndexOf(args, "--memory-only") >= 0;
string trellisDns = OptS("--trellis-dns", Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../artifacts/bin/trellis-dns")));
foreach (var tool in new[] { trellisDns, "/usr/bin/dnsperf", "/usr/sbin/knotd" })
{
    if (!File.Exists(tool))
    {
        Console.Error.WriteLine($"{tool} not found (build with ./scripts/build.sh or pass --trellis-dns; dnsperf and knot come from scripts/install-deps.sh)");
        return 2;
    }
}

string dir = Directory.CreateTempSubdirectory("trl-bench-dns-").FullName;
var started = new List<Process>();
try
{
    // 1. trellis-dns on an empty store: the baseline.
    string emptyStore = $"sqlite://{dir}/empty.db";
    await using (ClusterStore.Open(emptyStore).ConfigureAwait(false))
    {
    }
    var (basePort, baseHealth) = (FreePort(), FreePort());
    var baseline = StartTrellis(emptyStore, basePort, baseHealth);
    await WaitReady(baseHealth);
    await Warm(basePort);
    long baselineRss = Rss(baseline);
    Stop(baseline);

    // 2. The cluster: N Services with ClusterIPs, each with a slice of two ready endpoints, and one namespace.
    string storeUrl = $"sqlite://{dir}/store.db";
    await using (var store = ClusterStore.Open(storeUrl))
    {
        await Put(store, """{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}""");
        for (int i = 0; i < services; i++)
        {
            await Put(store, $$"""{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc-{{i}}","namespace":"bench"},"spec":{"type":"ClusterIP","clusterIP":"{{ServiceIP(i)}}","clusterIPs":["{{ServiceIP(i)}}"],"ports":[{"name":"http","port":80,"protocol":"TCP"}] } }""");
            await Put(store, $$"""{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"svc-{{i}}-1","namespace":"bench","labels":{"kubernetes.io/service-name":"svc-{{i}}"} },"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[{"addresses":["{{PodIP(2 * i)}}"],"conditions":{"ready":true} },{"addresses":["{{PodIP((2 * i) + 1)}}"],"conditions":{"ready":true} }]}""");
        }
    }
    var (trellisPort, trellisHealth) = (FreePort(), FreePort());
    var sw = Stopwatch.StartNew();
    var trellis = StartTrellis(storeUrl, trellisPort, trellisHealth);
    await WaitReady(trellisHealth);
    double loadSeconds = sw.Elapsed.TotalSeconds;
    await Warm(trellisPort);
    long loadedRss = Rss(trellis);

    if (memoryOnly)
    {
        string file = Path.Combine(dir, "mem-hits.txt");
        var r7 = new Random(7);
        File.WriteAllLines(file, Enumerable.Range(0, 20000).Select(_ => $"svc-{r7.Next(services)}.bench.svc.cluster.local A"));
        var load = Dnsperf(trellisPort, file, null);
        await Task.Delay(1000);
        long after = Rss(trellis);
        Stop(trellis);
        Console.WriteLine(string.Create(inv, $"services {services}: RSS empty {baselineRss / 1024.0:F1} MB, loaded idle {loadedRss / 1024.0:F1} MB, after {load.Qps:F0} QPS load {after / 1024.0:F1} MB; per 1,000 above baseline {(loadedRss - baselineRss) / 1024.0 * 1000 / services:F2} MB idle, {(after - baselineRss) / 1024.0 * 1000 / services:F2} MB after load; ready in {loadSeconds:F2} s"));
        return 0;
    }

    // 3. knotd with the same records as a static zone.
    int knotPort = FreePort();
    var knot = StartKnot(dir, knotPort, services);
    await WaitAnswering(knotPort, "svc-0.bench.svc.cluster.local.");

    // 4. Query files: hits, and the misses a pod's resolver makes walking its search path (ndots:5).
    var rng = new Random(7);
    string hits = Path.Combine(dir, "hits.txt");
    string misses = Path.Combine(dir, "misses.txt");
    File.WriteAllLines(hits, Enumerable.Range(0, 20000).Select(_ => $"svc-{rng.Next(services)}.bench.svc.cluster.local A"));
    File.WriteAllLines(misses, Enumerable.Range(0, 20000).Select(i => (i % 3) switch
    {
        0 => $"www.example{rng.Next(1000)}.com.bench.svc.cluster.local A",
        1 => $"www.example{rng.Next(1000)}.com.svc.cluster.local AAAA",
        _ => $"svc-{rng.Next(services)}.bench.svc.cluster.local.bench.svc.cluster.local A",
    }));

    var rows = new List<string>();
    foreach (var (label, file) in new[] { ("hits", hits), ("search-path misses", misses) })
    {
        foreach (var (name, port) in new[] { ("trellis-dns", trellisPort), ("knotd", knotPort) })
        {
            var sat = ZeroLossQps(port, file);
            var lat = Latency(port, file, Math.Max(100, sat.Qps / 2));
            rows.Add(string.Create(inv, $"| {label} | {name} | {sat.Qps:F0} | {sat.Lost} | {lat.P50 * 1000:F3} | {lat.P99 * 1000:F3} | {lat.Qps:F0} |"));
            Console.Error.WriteLine(rows[^1]);
        }
    }
    long afterRss = Rss(trellis);
    Stop(trellis);
    Stop(knot);

    Console.WriteLine($"DNS benchmark: {services} Services (+ a 2-endpoint EndpointSlice each), dnsperf -c {clients} -q 64, {seconds} s per run, {Environment.ProcessorCount} CPUs");
    Console.WriteLine();
    Console.WriteLine("| queries | server | QPS at zero loss | lost | p50 ms at half rate | p99 ms at half rate | half rate QPS |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    rows.ForEach(Console.WriteLine);
    Console.WriteLine();
    Console.WriteLine(string.Create(inv, $"trellis-dns RSS: empty store {baselineRss / 1024.0:F1} MB, {services} Services loaded {loadedRss / 1024.0:F1} MB, after the load runs {afterRss / 1024.0:F1} MB"));
    Console.WriteLine(string.Create(inv, $"memory per 1,000 Services+endpoints above baseline: {(loadedRss - baselineRss) / 1024.0 * 1000 / services:F2} MB (idle), {(afterRss - baselineRss) / 1024.0 * 1000 / services:F2} MB (after load)"));
    Console.WriteLine(string.Create(inv, $"initial snapshot of {services} Services: ready {loadSeconds:F2} s after start"));
    return 0;
}
finally
{
    foreach (var p in started)
    {
        Stop(p);
    }
    Directory.Delete(dir, recursive: true);
}

(double Qps, long Lost) ZeroLossQps(int port, string file)
{
    // Saturate with bounded outstanding queries; if anything was lost, retry capped just below the rate achieved.
    var r = Dnsperf(port, file, null);
    for (int attempt = 0; attempt < 4 && r.Lost > 0; attempt++)
    {
        r = Dnsperf(port, file, r.Qps * 0.85);
    }
    return (r.Qps, r.Lost);
}

(double Qps, double P50, double P99) Latency(int port, string file, double rate)
{
    var r = Dnsperf(port, file, rate, verbose: true);
    var lat = r.Latencies;
    lat.Sort();
    return (r.Qps, lat.Count == 0 ? double.NaN : lat[lat.Count / 2], lat.Count == 0 ? double.NaN : lat[(int)(lat.Count * 0.99)]);
}

(double Qps, long Lost, List<double> Latencies) Dnsperf(int port, string file, double? maxQps, bool verbose = false)
{
    var psi = new ProcessStartInfo("dnsperf") { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in new[] { "-s", "127.0.0.1", "-p", port.ToString(inv), "-d", file, "-l", seconds.ToString(inv), "-c", clients.ToString(inv), "-q", "64", "-t", "1" })
    {
        psi.ArgumentList.Add(a);
    }
    if (maxQps is double q)
    {
        psi.ArgumentList.Add("-Q");
        psi.ArgumentList.Add(((int)q).ToString(inv));
    }
    if (verbose)
    {
        psi.ArgumentList.Add("-v");
    }
    using var p = Process.Start(psi)!;
    var latencies = new List<double>();
    var text = new StringBuilder();
    string? line;
    var verboseLine = new Regex(@"^> \S+ .* (\d+\.\d+)$", RegexOptions.Compiled);
    while ((line = p.StandardOutput.ReadLine()) is not null)
    {
        var m = verboseLine.Match(line);
        if (m.Success)
        {
            latencies.Add(double.Parse(m.Groups[1].Value, inv));
        }
        else
        {
            text.AppendLine(line);
        }
    }
    p.WaitForExit();
    string output = text.ToString();
    double qps = double.Parse(Regex.Match(output, @"Queries per second:\s+([\d.]+)").Groups[1].Value, inv);
    long lost = long.Parse(Regex.Match(output, @"Queries lost:\s+(\d+)").Groups[1].Value, inv);
    return (qps, lost, latencies);
}

Process StartTrellis(string store, int port, int health)
{
    var psi = new ProcessStartInfo(trellisDns) { RedirectStandardError = true, RedirectStandardOutput = true };
    foreach (var a in new[] { "--store", store, "--listen", $"127.0.0.1:{port}", "--health", $"127.0.0.1:{health}" })
    {
        psi.ArgumentList.Add(a);
    }
    var p = Process.Start(psi)!;
    p.ErrorDataReceived += (_, _) => { };
    p.BeginErrorReadLine();
    started.Add(p);
    return p;
}

Process StartKnot(string root, int port, int n)
{
    string k = Path.Combine(root, "knot");
    Directory.CreateDirectory(k);
    var zone = new StringBuilder();
    zone.AppendLine("$ORIGIN cluster.local.\n$TTL 30");
    zone.AppendLine("@ SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30");
    zone.AppendLine("@ NS ns.dns.cluster.local.\nns.dns A 10.96.0.10\ndns-version TXT \"1.1.0\"");
    for (int i = 0; i < n; i++)
    {
        zone.AppendLine(CultureInfo.InvariantCulture, $"svc-{i}.bench.svc A {ServiceIP(i)}");
        zone.AppendLine(CultureInfo.InvariantCulture, $"_http._tcp.svc-{i}.bench.svc SRV 0 100 80 svc-{i}.bench.svc.cluster.local.");
    }
    File.WriteAllText(Path.Combine(k, "cluster.local.zone"), zone.ToString());
    File.WriteAllText(Path.Combine(k, "knot.conf"), $"""
        server:
            rundir: "{k}"
            listen: 127.0.0.1@{port}
        database:
            storage: "{k}/db"
        log:
          - target: stderr
            any: error
        template:
          - id: default
            storage: "{k}"
            semantic-checks: off
        zone:
          - domain: cluster.local
            file: "{k}/cluster.local.zone"
        """);
    var psi = new ProcessStartInfo("/usr/sbin/knotd") { RedirectStandardError = true, RedirectStandardOutput = true };
    psi.ArgumentList.Add("-c");
    psi.ArgumentList.Add(Path.Combine(k, "knot.conf"));
    var p = Process.Start(psi)!;
    p.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"knotd: {e.Data}"); };
    p.BeginErrorReadLine();
    started.Add(p);
    return p;
}

static async Task Put(IClusterStore store, string json)
{
    var obj = (System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(json)!;
    await store.CreateAsync(Kinds.StoreKey(obj), Encoding.UTF8.GetBytes(json));
}

static string ServiceIP(int i) => $"10.96.{(i / 250) + 1}.{(i % 250) + 1}";

static string PodIP(int i) => $"10.244.{i / 250}.{(i % 250) + 1}";

static int FreePort()
{
    // A port free for both UDP and TCP.
    while (true)
    {
        using var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        u.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)u.LocalEndPoint!).Port;
        try
        {
            using var t = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            t.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return port;
        }
        catch (SocketException)
        {
        }
    }
}

static async Task WaitReady(int healthPort)
{
    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
    var deadline = DateTime.UtcNow.AddSeconds(60);
    while (DateTime.UtcNow < deadline)
    {
        try
        {
            if ((await http.GetAsync($"http://127.0.0.1:{healthPort}/ready")).IsSuccessStatusCode)
            {
                return;
            }
        }
        catch (HttpRequestException)
        {
        }
        catch (TaskCanceledException)
        {
        }
        await Task.Delay(50);
    }
    throw new TimeoutException("trellis-dns did not become ready in 60 s");
}

static async Task WaitAnswering(int port, string name)
{
    var deadline = DateTime.UtcNow.AddSeconds(30);
    while (DateTime.UtcNow < deadline)
    {
        if (await Ask(port, name))
        {
            return;
        }
        await Task.Delay(100);
    }
    throw new TimeoutException($"nothing answers on 127.0.0.1:{port}");
}

static async Task Warm(int port)
{
    for (int i = 0; i < 200; i++)
    {
        await Ask(port, $"svc-{i}.bench.svc.cluster.local.");
    }
}

static async Task<bool> Ask(int port, string name)
{
    using var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    var q = new List<byte> { 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
    foreach (var label in name.TrimEnd('.').Split('.'))
    {
        q.Add((byte)label.Length);
        q.AddRange(Encoding.ASCII.GetBytes(label));
    }
    q.AddRange(new byte[] { 0, 0, 1, 0, 1 });
    try
    {
        await u.ConnectAsync(IPAddress.Loopback, port);
        await u.SendAsync(q.ToArray(), SocketFlags.None);
        using var cts = new CancellationTokenSource(300);
        var buf = new byte[1500];
        return await u.ReceiveAsync(buf, SocketFlags.None, cts.Token) > 0;
    }
    catch (Exception e) when (e is SocketException or OperationCanceledException)
    {
        return false;
    }
}

static long Rss(Process p)
{
    foreach (var l in File.ReadLines($"/proc/{p.Id}/status"))
    {
        if (l.StartsWith("VmRSS:", StringComparison.Ordinal))
        {
            return long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
    }
    return 0;
}

static void Stop(Process p)
{
    try
    {
        if (!p.HasExited)
        {
            p.Kill();
            p.WaitForExit(5000);
        }
    }
    catch (InvalidOperationException)
    {
    }
}

int Opt(string name, int d) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], inv) : d;

string OptS(string name, string d) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : d;
