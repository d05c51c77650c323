using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;
using Trellis.Netlink;
using Trellis.Nftables;
using Trellis.Store;

// Service proxy benchmarks, same run, same machine (root; throwaway netns trl-pb-*; never the host's firewall):
//  1. sync time: full sync of 1,000 and 10,000 Services (2 endpoints each) — compile + transaction + `nft -f` —
//     and one Service added when 10,000 exist, along the agent's path (compile as trellisd does it, the partial
//     transaction, `nft -f`), against kube-proxy's iptables layout loaded with iptables-restore (full restore,
//     and the partial restore kube-proxy does for one added Service: KUBE-SERVICES rewritten + the new chains);
//  2. first-packet cost: TCP connection setup to a Service's ClusterIP with 10 and with 10,000 Services
//     present, against connecting to the pod IP directly in the same table state; same for the iptables layout
//     (the measured Service is the last in KUBE-SERVICES: the linear walk's worst case);
//  3. trellisd RSS with 10,000 Services against the same trellisd with none (needs artifacts/bin/trellisd).
// Usage: dotnet run -c Release --project bench/Trellis.Bench.Proxy -- [--services 1000,10000] [--adds 9]
//        [--connects 1500] [--trellisd PATH] [--skip-rss] [--skip-iptables] [--iptables-sizes 10,1000]
// Every row is printed (and flushed) as soon as it is measured: a 10,000-Service run takes many minutes, and a
// run cut short still leaves its rows. --iptables-sizes limits the iptables peer to the listed sizes (10 is the
// small first-packet table; kube-proxy's iptables restore of 10,000 Services alone takes minutes here); the
// peer's "add 1" and big first-packet rows need the biggest size in the list.
// Rows are interpolated strings printed as they are measured: one culture for all of them.
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var counts = OptS("--services", "1000,10000").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
int big = counts.Max();
int adds = Opt("--adds", 9);
int connects = Opt("--connects", 1500);
bool skipRss = args.Contains("--skip-rss");
bool skipIptables = args.Contains("--skip-iptables");
var iptSizes = args.Contains("--iptables-sizes")
    ? OptS("--iptables-sizes", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToHashSet()
    : counts.Append(10).ToHashSet();
if (skipIptables)
{
    iptSizes.Clear();
}
string trellisd = OptS("--trellisd", Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../artifacts/bin/trellisd")));

// --write-nft DIR: write the full transaction for `big` Services and one added Service's transaction, then exit
// (for strace / nft -d experiments by hand).
if (args.Contains("--write-nft"))
{
    string dir = OptS("--write-nft", "");
    Directory.CreateDirectory(dir);
    File.WriteAllText(Path.Combine(dir, "full.nft"), ProxyTransaction.Full(ProxyCompiler.Compile(Input(0, big)), null));
    var one = ProxyCompiler.Compile(Input(0, 0) with { Services = [Service(60000)], EndpointSlices = Slices(60000).ToList() });
    File.WriteAllText(Path.Combine(dir, "add1.nft"), ProxyTransaction.Partial(ProxyCompiler.Compile(Input(0, 0)), one));
    return 0;
}
string id = Guid.NewGuid().ToString("N")[..6];
if (args.Contains("--rss-only"))
{
    var notesOnly = new List<string>();
    var r = MeasureRssOnly(trellisd, id, big, notesOnly);
    Out($"trellisd RSS, load {Uptime()}: 0 Services {r.Item1:0.0} MiB; {big:N0} Services (+ {big:N0} EndpointSlices) {r.Item2:0.0} MiB; difference per 1,000 Services {(r.Item2 - r.Item1) / (big / 1000.0):0.00} MiB; {string.Join("; ", notesOnly)}");
    return 0;
}
string nodeNs = $"trl-pb-{id}-n", podNs = $"trl-pb-{id}-p";
var rows = new List<string>();
var notes = new List<string>();
string load0 = Uptime();
Out($"Service proxy, {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z; load at start: {load0}; iptables peer at sizes: {(iptSizes.Count == 0 ? "none" : string.Join(",", iptSizes.Order()))}");
Out("");
Out($"Sync time (2 endpoints per Service; full syncs: median of 3; adds: median of {adds}); load (1-min avg) at the end of each row");
Out("");
Out("| measure | kube-proxy iptables layout (iptables-restore) | trellis nftables | trellis / iptables | load |");
Out("|---|---|---|---|---|");
var servers = new List<Socket>();
try
{
    Sh("ip", "netns", "add", nodeNs);
    Sh("ip", "netns", "add", podNs);
    Sh("ip", "-n", nodeNs, "link", "add", "pb0", "type", "veth", "peer", "name", "pb1", "netns", podNs);
    Sh("ip", "-n", nodeNs, "addr", "add", "10.250.0.1/24", "dev", "pb0");
    Sh("ip", "-n", podNs, "addr", "add", "10.250.0.2/24", "dev", "pb1");
    foreach (var (ns, dev) in new[] { (nodeNs, "pb0"), (podNs, "pb1") })
    {
        Sh("ip", "-n", ns, "link", "set", "lo", "up");
        Sh("ip", "-n", ns, "link", "set", dev, "up");
    }
    Sh("ip", "-n", podNs, "route", "add", "default", "via", "10.250.0.1");
    // The node routes the service range out of its interface (as its default route would): output routing
    // happens before the nat hook rewrites the ClusterIP.
    Sh("ip", "-n", nodeNs, "route", "add", "10.96.0.0/16", "dev", "pb0");
    // The "pod": a TCP server on 8080 and 8081 (the measured Service's two endpoints) that accepts and closes.
    using (var pod = NetNs.Open("/run/netns/" + podNs))
    {
        foreach (int port in new[] { 8080, 8081 })
        {
            var s = pod.Run(() =>
            {
                var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                l.Bind(new IPEndPoint(IPAddress.Any, port));
                l.Listen(4096);
                return l;
            });
            servers.Add(s);
            _ = Task.Run(() =>
            {
                try
                {
                    while (true)
                    {
                        using var c = s.Accept();
                    }
                }
                catch (SocketException)
                {
                    // closed at the end
                }
                catch (ObjectDisposedException)
                {
                }
            });
        }
    }
    var nft = new NftClient(new NftClientOptions { NetnsPath = "/run/netns/" + nodeNs });
    using var node = NetNs.Open("/run/netns/" + nodeNs);

    // 1. nft full syncs.
    var fullTimes = new Dictionary<int, (double Compile, double Text, double Nft, int Bytes)>();
    // Warm-up: the first nft transaction in a fresh netns (and the first compile) pay one-off costs.
    nft.Apply(ProxyTransaction.Full(ProxyCompiler.Compile(Input(0, 10)), null));
    Sh("ip", "netns", "exec", nodeNs, "nft", "delete", "table", "ip", "trellis-proxy");
    foreach (int n in counts.Order())
    {
        var runs = new List<(double Compile, double Text, double Nft, int Bytes)>();
        for (int round = 0; round < 3; round++)
        {
            var input = Input(0, n);
            var sw = Stopwatch.StartNew();
            var rs = ProxyCompiler.Compile(input);
            double compile = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            string text = ProxyTransaction.Full(rs, null);
            double tx = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            nft.Apply(text);
            double apply = sw.Elapsed.TotalMilliseconds;
            runs.Add((compile, tx, apply, text.Length));
            Sh("ip", "netns", "exec", nodeNs, "nft", "delete", "table", "ip", "trellis-proxy");
        }
        // The median run by total time (3 rounds).
        fullTimes[n] = runs.OrderBy(r => r.Compile + r.Text + r.Nft).ElementAt(1);
        double ipt = double.NaN;
        if (iptSizes.Contains(n))
        {
            ipt = TimeIptables(IptablesLayout(0, n, full: true));
            Sh("ip", "netns", "exec", nodeNs, "iptables", "-t", "nat", "-F");
            Sh("ip", "netns", "exec", nodeNs, "iptables", "-t", "nat", "-X");
        }
        var f = fullTimes[n];
        double total = f.Compile + f.Text + f.Nft;
        Out($"| full sync, {n:N0} Services | {Ms(ipt)} (restore only) | {Ms(total)} (compile {Ms(f.Compile)} + text {Ms(f.Text)} + nft -f {Ms(f.Nft)}; {f.Bytes / 1024.0 / 1024:0.0} MiB) | {Ratio(total, ipt)} | {Load1()} |");
    }

    // 2. First packet with 10 Services (nft), then the small-transaction cost on 10.
    var small = Input(0, 10);
    var smallRs = ProxyCompiler.Compile(small);
    nft.Apply(ProxyTransaction.Full(smallRs, null));
    var (nftDirect10, nftSvc10) = Connects(node, connects);
    Out($"| first packet, trellis nftables, 10 Services: direct {Us(nftDirect10)}, via Service {Us(nftSvc10)} | | | | {Load1()} |");
    var nftSmallApply10 = Median(Enumerable.Range(0, adds).Select(r => TimeApply(nft, r)).ToList());
    Out($"| nft -f of one added Service's transaction, table of 10 | | {Ms(nftSmallApply10)} | | {Load1()} |");

    // 3. Grow to `big` Services (a full sync over the existing table, as after an agent restart), then add one at a time.
    var bigInput = Input(0, big);
    var bigRs = ProxyCompiler.Compile(bigInput);
    nft.Apply(ProxyTransaction.Full(bigRs, ProxyTransaction.ParseListing(nft.ListTable("ip", "trellis-proxy", stateless: true)!)));
    var (nftDirectBig, nftSvcBig) = Connects(node, connects);
    Out($"| first packet, trellis nftables, {big:N0} Services: direct {Us(nftDirectBig)}, via Service {Us(nftSvcBig)}; Service big / 10 = {nftSvcBig.P50 / nftSvc10.P50:0.00} | | | | {Load1()} |");
    var nftSmallApplyBig = Median(Enumerable.Range(0, adds).Select(r => TimeApply(nft, 100 + r)).ToList());
    Out($"| nft -f of one added Service's transaction, table of {big:N0} | | {Ms(nftSmallApplyBig)} | {nftSmallApplyBig / nftSmallApply10:0.00} (big / 10) | {Load1()} |");

    // The agent's path today: recompile all, compare all, apply the difference.
    var agentCompile = new List<double>();
    var agentPartial = new List<double>();
    var agentNft = new List<double>();
    var agentTotal = new List<double>();
    var prev = bigRs;
    var services = bigInput.Services.ToList();
    var slices = bigInput.EndpointSlices.ToList();
    for (int r = 0; r < adds; r++)
    {
        int k = big + r;
        services.Add(Service(k));
        slices.AddRange(Slices(k));
        var sw = Stopwatch.StartNew();
        var next = ProxyCompiler.Compile(bigInput with { Services = services.ToList(), EndpointSlices = slices.ToList() });
        double c = sw.Elapsed.TotalMilliseconds;
        string partial = ProxyTransaction.Partial(prev, next);
        double p = sw.Elapsed.TotalMilliseconds - c;
        nft.Apply(partial);
        double total = sw.Elapsed.TotalMilliseconds;
        agentCompile.Add(c);
        agentPartial.Add(p);
        agentNft.Add(total - c - p);
        agentTotal.Add(total);
        prev = next;
    }
    Out($"| add 1 Service to {big:N0}, agent path before (recompile all + Partial all + nft -f) | | {Ms(Median(agentTotal))} (compile {Ms(Median(agentCompile))} + Partial {Ms(Median(agentPartial))} + nft -f {Ms(Median(agentNft))}) | | {Load1()} |");

    // The agent's path now: IncrementalProxyCompiler (only the changed Service compiled, its transaction built
    // from the difference of its fragment), then nft -f of that transaction.
    var incCompile = new List<double>();
    var incNft = new List<double>();
    var incTotal = new List<double>();
    var inc = new IncrementalProxyCompiler();
    inc.SetGlobals(bigInput);
    foreach (var s in services)
    {
        inc.PutService(s);
    }
    foreach (var s in slices)
    {
        inc.PutSlice($"{s.Namespace}/{s.Name}", s);
    }
    inc.Compile(); // the table already holds exactly this (the last ruleset of the loop above)
    if (inc.Ruleset.Dump() != prev.Dump())
    {
        throw new InvalidOperationException("incremental and full compiles differ");
    }
    for (int r = 0; r < adds; r++)
    {
        int k = big + adds + r;
        var sw = Stopwatch.StartNew();
        inc.PutService(Service(k));
        foreach (var s in Slices(k))
        {
            inc.PutSlice($"{s.Namespace}/{s.Name}", s);
        }
        var update = inc.Compile();
        double c = sw.Elapsed.TotalMilliseconds;
        nft.Apply(update.Transaction);
        double total = sw.Elapsed.TotalMilliseconds;
        incCompile.Add(c);
        incNft.Add(total - c);
        incTotal.Add(total);
    }
    Out($"| add 1 Service to {big:N0}, agent path now (IncrementalProxyCompiler + nft -f), p50 | | {Ms(Median(incTotal))} (compile + transaction {Ms(Median(incCompile))} + nft -f {Ms(Median(incNft))}) | | {Load1()} |");
    Out($"| add 1 Service to {big:N0}, agent path now, max of {adds} | | {Ms(incTotal.Max())} | | |");
    Sh("ip", "netns", "exec", nodeNs, "nft", "delete", "table", "ip", "trellis-proxy");

    // 4. The peer: kube-proxy's iptables layout (full restores were timed beside the nft full syncs above).
    double iptAdd = double.NaN;
    (double, double) iptDirect10 = (double.NaN, double.NaN), iptSvc10 = iptDirect10, iptDirectBig = iptDirect10, iptSvcBig = iptDirect10;
    if (iptSizes.Contains(10))
    {
        TimeIptables(IptablesLayout(0, 10, full: true));
        (iptDirect10, iptSvc10) = Connects(node, connects);
        Sh("ip", "netns", "exec", nodeNs, "iptables", "-t", "nat", "-F");
        Sh("ip", "netns", "exec", nodeNs, "iptables", "-t", "nat", "-X");
        Out($"| first packet, iptables layout, 10 Services: direct {Us(iptDirect10)}, via Service {Us(iptSvc10)} | | | | {Load1()} |");
    }
    if (iptSizes.Contains(big))
    {
        TimeIptables(IptablesLayout(0, big, full: true));
        (iptDirectBig, iptSvcBig) = Connects(node, connects);
        Out($"| first packet, iptables layout, {big:N0} Services: direct {Us(iptDirectBig)}, via Service {Us(iptSvcBig)} | | | | {Load1()} |");
        // kube-proxy's partial sync for one new Service: KUBE-SERVICES rewritten whole, plus the new chains.
        iptAdd = Median(Enumerable.Range(0, Math.Min(adds, 3)).Select(r => TimeIptables(IptablesLayout(0, big + r + 1, full: false, onlyChainsFrom: big + r))).ToList());
        Out($"| add 1 Service to {big:N0}, kube-proxy iptables partial restore (peer) | {Ms(iptAdd)} | {Ms(Median(incTotal))} (agent path now) | {Ratio(Median(incTotal), iptAdd)} | {Load1()} |");
        Sh("ip", "netns", "exec", nodeNs, "iptables", "-t", "nat", "-F");
        Sh("ip", "netns", "exec", nodeNs, "iptables", "-t", "nat", "-X");
    }

    // 5. trellisd RSS.
    (double Rss0, double RssBig, double Sync0, string? Log) rss = (double.NaN, double.NaN, double.NaN, null);
    if (!skipRss)
    {
        rss = MeasureRss(trellisd, id, big);
    }

    string load1 = Uptime();
    Out("");
    Out($"First-packet cost: TCP connect() to the Service (ClusterIP, DNAT to the pod) vs to the pod IP directly, same table; p50 (p90) of {connects} connects each; load at the end: {load1}");
    Out("");
    Out("| table | Services | pod IP direct (peer) | via the Service | Service / direct | Service: big / 10 |");
    Out("|---|---|---|---|---|---|");
    Out($"| trellis nftables | 10 | {Us(nftDirect10)} | {Us(nftSvc10)} | {nftSvc10.P50 / nftDirect10.P50:0.00} | |");
    Out($"| trellis nftables | {big:N0} | {Us(nftDirectBig)} | {Us(nftSvcBig)} | {nftSvcBig.P50 / nftDirectBig.P50:0.00} | {nftSvcBig.P50 / nftSvc10.P50:0.00} |");
    Out($"| kube-proxy iptables layout | 10 | {Us(iptDirect10)} | {Us(iptSvc10)} | {iptSvc10.Item1 / iptDirect10.Item1:0.00} | |");
    Out($"| kube-proxy iptables layout | {big:N0} | {Us(iptDirectBig)} | {Us(iptSvcBig)} | {iptSvcBig.Item1 / iptDirectBig.Item1:0.00} | {iptSvcBig.Item1 / iptSvc10.Item1:0.00} |");
    if (!skipRss)
    {
        Out("");
        Out("| trellisd | RSS | difference per 1,000 Services |");
        Out("|---|---|---|");
        Out($"| 0 Services | {rss.Rss0:0.0} MiB | |");
        Out($"| {big:N0} Services (+ {big:N0} EndpointSlices) | {rss.RssBig:0.0} MiB | {(rss.RssBig - rss.Rss0) / (big / 1000.0):0.00} MiB |");
        if (rss.Log is not null)
        {
            notes.Add("trellisd's own sync log lines: " + rss.Log);
        }
    }
    foreach (var n in notes)
    {
        Out("");
        Out("- " + n);
    }
}
finally
{
    foreach (var s in servers)
    {
        s.Dispose();
    }
    ShQuiet("ip", "netns", "delete", nodeNs);
    ShQuiet("ip", "netns", "delete", podNs);
}
return 0;

static void Out(string line)
{
    Console.WriteLine(line);
    Console.Out.Flush();
}

static string Ratio(double a, double b) => double.IsNaN(a) || double.IsNaN(b) ? "n/a" : (a / b).ToString("0.00", CultureInfo.InvariantCulture);

static string Load1() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

static string Ms(double ms) => double.IsNaN(ms) ? "n/a" : ms.ToString(ms < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + " ms";

static string Us((double P50, double P90) t) => double.IsNaN(t.P50) ? "n/a" : string.Create(CultureInfo.InvariantCulture, $"{t.P50:0} µs ({t.P90:0})");

static double Median(List<double> xs) => xs.Count == 0 ? double.NaN : xs.Order().ElementAt(xs.Count / 2);

static ProxyInput Input(int from, int to) => new()
{
    NodeName = "node-1",
    NodeIPs = [IPAddress.Parse("10.250.0.1")],
    ClusterCidrs = [IPNetwork.Parse("10.244.0.0/16")],
    ServiceCidrs = [IPNetwork.Parse("10.96.0.0/16")],
    Services = Enumerable.Range(from, to - from).Select(Service).ToList(),
    EndpointSlices = Enumerable.Range(from, to - from).SelectMany(Slices).ToList(),
};

// Service k: 10.96.(k/250).(k%250+2):80; the measured one (k = 0) has its endpoints on the pod, the others on
// pod addresses nobody answers for.
static string ClusterIP(int k) => $"10.96.{k / 250}.{k % 250 + 2}";

static string[] Endpoints(int k) => k == 0 ? ["10.250.0.2:8080", "10.250.0.2:8081"] : [$"10.244.{k / 125}.{k % 125 * 2 + 1}:8080", $"10.244.{k / 125}.{k % 125 * 2 + 2}:8080"];

static ServiceView Service(int k) => new(JsonNode.Parse(ServiceJson(k))!.AsObject());

static string ServiceJson(int k) =>
    $$$"""{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"bench","name":"svc-{{{k}}}"},"spec":{"type":"ClusterIP","clusterIP":"{{{ClusterIP(k)}}}","clusterIPs":["{{{ClusterIP(k)}}}"],"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}""";

static IEnumerable<EndpointSliceView> Slices(int k) => SliceJsons(k).Select(j => new EndpointSliceView(JsonNode.Parse(j.Json)!.AsObject()));

// One slice per endpoint port: the measured Service's two endpoints are one pod IP on two ports.
static IEnumerable<(string Name, string Json)> SliceJsons(int k)
{
    var byPort = Endpoints(k).Select(e => (Ip: e.Split(':')[0], Port: e.Split(':')[1])).GroupBy(e => e.Port).ToList();
    for (int i = 0; i < byPort.Count; i++)
    {
        string name = $"svc-{k}-{(char)('a' + i)}";
        var eps = byPort[i].Select(e => $$$"""{"addresses":["{{{e.Ip}}}"],"nodeName":"node-2","conditions":{"ready":true}}""");
        yield return (name, $$$"""{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","addressType":"IPv4","metadata":{"namespace":"bench","name":"{{{name}}}","labels":{"kubernetes.io/service-name":"svc-{{{k}}}"}},"ports":[{"name":"http","port":{{{byPort[i].Key}}},"protocol":"TCP"}],"endpoints":[{{{string.Join(",", eps)}}}]}""");
    }
}

double TimeApply(NftClient nftClient, int r)
{
    // One added Service's transaction against the current table, then removed again (untimed).
    int k = 60000 + r;
    var one = ProxyCompiler.Compile(Input(0, 0) with { Services = [Service(k)], EndpointSlices = Slices(k).ToList() });
    var empty = ProxyCompiler.Compile(Input(0, 0));
    string add = ProxyTransaction.Partial(empty, one);
    var sw = Stopwatch.StartNew();
    nftClient.Apply(add);
    double t = sw.Elapsed.TotalMilliseconds;
    nftClient.Apply(ProxyTransaction.Partial(one, empty));
    return t;
}

((double P50, double P90) Direct, (double P50, double P90) Service) Connects(NetNs nodeNetns, int n)
{
    var direct = new List<double>();
    var svc = new List<double>();
    var target = new IPEndPoint(IPAddress.Parse(ClusterIP(0)), 80);
    var pod = new IPEndPoint(IPAddress.Parse("10.250.0.2"), 8080);
    nodeNetns.Run(() =>
    {
        // Warm up (ARP, code paths), then alternate so both see the same machine load.
        for (int i = 0; i < 50; i++)
        {
            Connect(pod);
            Connect(target);
        }
        for (int i = 0; i < n; i++)
        {
            direct.Add(Connect(pod));
            svc.Add(Connect(target));
        }
    });
    return (Pct(direct), Pct(svc));
}

static double Connect(IPEndPoint ep)
{
    using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    s.LingerState = new LingerOption(true, 0); // RST on close: no TIME_WAIT pile-up across thousands of connects
    long t0 = Stopwatch.GetTimestamp();
    s.Connect(ep);
    double us = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
    return us;
}

static (double, double) Pct(List<double> xs)
{
    var o = xs.Order().ToList();
    return (o[o.Count / 2], o[o.Count * 9 / 10]);
}

// kube-proxy's iptables mode (pkg/proxy/iptables/proxier.go), nat table: KUBE-SERVICES with one rule per
// service port, KUBE-SVC-* with statistic-random arms, KUBE-SEP-* with MARK-MASQ for hairpin + DNAT,
// KUBE-POSTROUTING masquerading by mark. `full: false` is kube-proxy's partial restore (--noflush): the
// KUBE-SERVICES chain rewritten whole and only the chains of Services from `onlyChainsFrom` on.
string IptablesLayout(int from, int to, bool full, int onlyChainsFrom = 0)
{
    var w = new StringBuilder("*nat\n");
    var rules = new StringBuilder();
    if (full)
    {
        w.Append(":KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-NODEPORTS - [0:0]\n");
        rules.Append("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
        rules.Append("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
        rules.Append("-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n");
        rules.Append("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n");
        rules.Append("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n");
        rules.Append("-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n");
        rules.Append("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n");
    }
    else
    {
        w.Append(":KUBE-SERVICES - [0:0]\n");
    }
    // The measured Service (k = 0) last in KUBE-SERVICES: the walk's worst case, and the same in every run.
    var order = Enumerable.Range(from + 1, to - from - 1).Append(from);
    foreach (int k in order)
    {
        string svcName = $"bench/svc-{k}:http";
        string svcChain = "KUBE-SVC-" + Hash16($"bench/svc-{k}:http" + "tcp");
        rules.Append(CultureInfo.InvariantCulture, $"-A KUBE-SERVICES -m comment --comment \"{svcName} cluster IP\" -m tcp -p tcp -d {ClusterIP(k)}/32 --dport 80 -j {svcChain}\n");
        if (k < onlyChainsFrom)
        {
            continue;
        }
        w.Append(':').Append(svcChain).Append(" - [0:0]\n");
        rules.Append(CultureInfo.InvariantCulture, $"-A {svcChain} -m comment --comment \"{svcName} cluster IP\" -m tcp -p tcp -d {ClusterIP(k)}/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ\n");
        var eps = Endpoints(k);
        for (int i = 0; i < eps.Length; i++)
        {
            string sep = "KUBE-SEP-" + Hash16(svcName + "tcp" + eps[i]);
            w.Append(':').Append(sep).Append(" - [0:0]\n");
            string prob = i < eps.Length - 1 ? string.Create(CultureInfo.InvariantCulture, $" -m statistic --mode random --probability {1.0 / (eps.Length - i):0.0000000000}") : "";
            rules.Append(CultureInfo.InvariantCulture, $"-A {svcChain} -m comment --comment \"{svcName} -> {eps[i]}\"{prob} -j {sep}\n");
            rules.Append(CultureInfo.InvariantCulture, $"-A {sep} -m comment --comment \"{svcName}\" -s {eps[i].Split(':')[0]}/32 -j KUBE-MARK-MASQ\n");
            rules.Append(CultureInfo.InvariantCulture, $"-A {sep} -m comment --comment \"{svcName}\" -m tcp -p tcp -j DNAT --to-destination {eps[i]}\n");
        }
    }
    rules.Append("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n");
    return w.Append(rules).Append("COMMIT\n").ToString();
}

double TimeIptables(string text)
{
    var psi = new ProcessStartInfo("ip", ["netns", "exec", nodeNs, "iptables-restore", "--noflush"]) { RedirectStandardInput = true, RedirectStandardError = true };
    var sw = Stopwatch.StartNew();
    using var p = Process.Start(psi)!;
    p.StandardInput.Write(text);
    p.StandardInput.Close();
    string err = p.StandardError.ReadToEnd();
    p.WaitForExit();
    double t = sw.Elapsed.TotalMilliseconds;
    if (p.ExitCode != 0)
    {
        throw new InvalidOperationException("iptables-restore: " + err);
    }
    return t;
}

static string Hash16(string s)
{
    var h = SHA256.HashData(Encoding.UTF8.GetBytes(s));
    return Convert.ToBase64String(h).Replace('+', 'A').Replace('/', 'B').ToUpperInvariant()[..16];
}

(double, double) MeasureRssOnly(string exe, string tag, int n, List<string> notesOut)
{
    double rss0 = RunAgent(exe, tag + "0", 0, out _);
    double rssBig = RunAgent(exe, tag + "k", n, out string log);
    notesOut.Add(log);
    return (rss0, rssBig);
}

(double, double, double, string?) MeasureRss(string exe, string tag, int n)
{
    if (!File.Exists(exe))
    {
        notes.Add($"trellisd RSS not measured: {exe} does not exist (./scripts/build.sh)");
        return (double.NaN, double.NaN, double.NaN, null);
    }
    double rss0 = RunAgent(exe, tag + "0", 0, out _);
    double rssBig = RunAgent(exe, tag + "k", n, out string log);
    return (rss0, rssBig, double.NaN, log);
}

double RunAgent(string exe, string tag, int n, out string syncLog)
{
    string ns = $"trl-pb-{tag}-d", peer = $"trl-pb-{tag}-u";
    string dir = Path.Combine(Path.GetTempPath(), $"trl-pb-{tag}");
    Directory.CreateDirectory(dir);
    Process? agent = null;
    try
    {
        Sh("ip", "netns", "add", ns);
        Sh("ip", "netns", "add", peer);
        Sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer);
        Sh("ip", "-n", ns, "addr", "add", "172.31.0.11/24", "dev", "eth0");
        Sh("ip", "-n", ns, "link", "set", "eth0", "up");
        Sh("ip", "-n", ns, "link", "set", "lo", "up");
        Sh("ip", "-n", peer, "link", "set", "eth0", "up");
        string url = "sqlite://" + Path.Combine(dir, "store.db");
        Fill(url, n).GetAwaiter().GetResult();
        string logFile = Path.Combine(dir, "trellisd.log");
        var psi = new ProcessStartInfo("ip", ["netns", "exec", ns, exe, "--store", url, "--node", "node-1", "--cluster-cidr", "10.244.0.0/16",
            "--service-cidr", "10.96.0.0/16", "--backend", "host-gw", "--underlay", "eth0"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        agent = Process.Start(psi)!;
        var lines = new List<string>();
        agent.OutputDataReceived += (_, e) => { if (e.Data is { } d) { lock (lines) { lines.Add(d); } } };
        agent.ErrorDataReceived += (_, e) => { if (e.Data is { } d) { lock (lines) { lines.Add(d); } } };
        agent.BeginOutputReadLine();
        agent.BeginErrorReadLine();
        // trellisd logs nothing on a successful sync: wait until the last Service's ClusterIP is in the kernel's
        // service-ips map (that is the end of the full sync's one transaction).
        var sw = Stopwatch.StartNew();
        string want = n == 0 ? "" : ClusterIP(n - 1) + " . tcp . 80";
        bool synced = n == 0;
        while (!synced && sw.Elapsed < TimeSpan.FromSeconds(300))
        {
            Thread.Sleep(2000);
            var list = new ProcessStartInfo("ip", ["netns", "exec", ns, "nft", "list", "map", "ip", "trellis-proxy", "service-ips"]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var lp = Process.Start(list)!;
            string text = lp.StandardOutput.ReadToEnd();
            lp.StandardError.ReadToEnd();
            lp.WaitForExit();
            synced = text.Contains(want, StringComparison.Ordinal);
        }
        if (!synced)
        {
            throw new InvalidOperationException($"trellisd did not program {n} Services within 300 s");
        }
        lock (lines)
        {
            lines.Add($"proxy: {n} services in the kernel after {sw.Elapsed.TotalSeconds:0} s (polled every 2 s)");
        }
        Thread.Sleep(3000); // settle: the sync's garbage collected or not, as it would be in steady state
        double rss = ReadRss(agent.Id);
        lock (lines)
        {
            syncLog = string.Join(" | ", lines.Where(l => l.Contains("proxy:", StringComparison.Ordinal)).Take(2));
        }
        return rss;
    }
    finally
    {
        if (agent is { HasExited: false })
        {
            agent.Kill();
            agent.WaitForExit();
        }
        agent?.Dispose();
        ShQuiet("ip", "netns", "delete", ns);
        ShQuiet("ip", "netns", "delete", peer);
        Directory.Delete(dir, true);
    }
}

static double ReadRss(int pid)
{
    foreach (var l in File.ReadLines($"/proc/{pid}/status"))
    {
        if (l.StartsWith("VmRSS:", StringComparison.Ordinal))
        {
            return double.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        }
    }
    return double.NaN;
}

static async Task Fill(string url, int n)
{
    await using var store = ClusterStore.Open(url);
    for (int k = 0; k < n; k++)
    {
        await store.CreateAsync($"/registry/services/bench/svc-{k}", Encoding.UTF8.GetBytes(ServiceJson(k)));
        foreach (var (name, json) in SliceJsons(k))
        {
            await store.CreateAsync($"/registry/endpointslices/bench/{name}", Encoding.UTF8.GetBytes(json));
        }
    }
}

static string Uptime() => File.ReadAllText("/proc/loadavg").Split(' ').Take(3).Aggregate((a, b) => a + " " + b);

static void Sh(params string[] argv) => Exec(true, argv);

static void ShQuiet(params string[] argv) => Exec(false, argv);

static void Exec(bool check, string[] argv)
{
    var psi = new ProcessStartInfo(argv[0], argv[1..]) { RedirectStandardError = true, RedirectStandardOutput = true };
    using var p = Process.Start(psi)!;
    string err = p.StandardError.ReadToEnd();
    p.StandardOutput.ReadToEnd();
    p.WaitForExit();
    if (check && p.ExitCode != 0)
    {
        throw new InvalidOperationException($"{string.Join(' ', argv)}: exit {p.ExitCode}: {err}");
    }
}

int Opt(string name, int dflt) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : dflt;

string OptS(string name, string dflt) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? dflt;
