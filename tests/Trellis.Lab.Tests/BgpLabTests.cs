using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>
/// <c>lab up --backend bgp</c>: trellisd's speakers in an iBGP full mesh, through a node that reflects, through
/// BIRD as route reflector, with FRR and GoBGP as external routers in the underlay; and the faults of issue 8.
/// </summary>
[Collection("lab")]
public sealed class BgpLabTests
{
    private const string Pods = """
        apiVersion: v1
        kind: Namespace
        metadata: {name: x}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p1, namespace: x}
        spec: {nodeName: node-1, containers: [{name: c, image: agnhost, ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p2, namespace: x}
        spec: {nodeName: node-2, containers: [{name: c, image: agnhost, ports: [{containerPort: 80, protocol: TCP}, {containerPort: 80, protocol: UDP}]}]}
        """;

    [LabFact]
    public void Full_mesh_routes_pods_without_encapsulation_survives_an_agent_restart_and_reflects_through_an_annotated_node()
    {
        using var lab = new LabDriver("bg");
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "3", "--backend", "bgp");
        lab.Apply(Pods);
        var pods = lab.WaitReady("x", 2);
        lab.WaitRoutes();
        lab.WaitRoutes(protocol: "udp");
        string node1 = $"trl-{lab.Name}-node-1", node2 = $"trl-{lab.Name}-node-2", node3 = $"trl-{lab.Name}-node-3";
        WaitRoute(node1, "10.244.3.0/24 via 172.30.0.13 dev eth0");
        string routes = Sh.Must("ip", "-n", node1, "route", "show", "proto", "203");
        Assert.Contains("10.244.2.0/24 via 172.30.0.12 dev eth0", routes, StringComparison.Ordinal);
        Assert.DoesNotContain("trellis.1", Sh.Must("ip", "-n", node1, "link"), StringComparison.Ordinal);
        string p1Ip = IpOf(pods, "p1"), p2Ip = IpOf(pods, "p2");
        Assert.Equal("p2\n", lab.Must("exec", "x/p1", "--", LabDriver.Trellis, "connect", $"{p2Ip}:80"));
        // No NAT: the flow node-1 tracks has p1's own address both ways.
        string tracked = Sh.Must("ip", "netns", "exec", node1, "conntrack", "-L", "-p", "tcp", "-d", p2Ip);
        Assert.Contains($"src={p2Ip} dst={p1Ip}", tracked, StringComparison.Ordinal);

        // trellis bgp status: every node has two Established iBGP sessions, one prefix each way.
        var status = WaitStatus(lab, doc => doc["nodes"]!.AsArray().All(n => n!["peers"]!.AsArray().Count(p => p!["state"]!.GetValue<string>() == "Established" && p["prefixesReceived"]!.GetValue<int>() == 1) == 2));
        var n1 = status["nodes"]!.AsArray().First(n => n!["node"]!.GetValue<string>() == "node-1")!;
        Assert.Equal(64512, n1["asNumber"]!.GetValue<int>());
        Assert.All(n1["peers"]!.AsArray(), p => Assert.Equal(1, p!["prefixesAdvertised"]!.GetValue<int>()));
        string table = lab.Must("bgp", "status", "--node", "node-2");
        Assert.Contains("172.30.0.11", table, StringComparison.Ordinal);
        Assert.Contains("Established", table, StringComparison.Ordinal);
        Assert.Contains("trellis_bgp_routes_installed{node=\"node-1\"} 2", File.ReadAllText($"/run/trellis/{lab.Name}/nodes/node-1/bgp.prom"), StringComparison.Ordinal);

        // The agent on node-1 killed outright: node-1 keeps its kernel routes, node-2 keeps node-1's route
        // (graceful restart), so back-to-back connections p1 -> p2 never fail; the restarted speaker rejoins.
        int agent = JsonNode.Parse(File.ReadAllText($"/run/trellis/{lab.Name}/procs.json"))!["procs"]!.AsArray()
            .First(p => p!["role"]!.GetValue<string>() == "trellisd" && p["node"]!.GetValue<string>() == "node-1")!["pid"]!.GetValue<int>();
        var psi = new ProcessStartInfo(LabDriver.Trellis, ["exec", "x/p1", "--", "sh", "-c",
            $"ok=0; fail=0; end=$(( $(date +%s) + 5 )); while [ $(date +%s) -lt $end ]; do if {LabDriver.Trellis} connect {p2Ip}:80 --timeout 1s >/dev/null 2>&1; then ok=$((ok+1)); else fail=$((fail+1)); fi; done; echo $ok $fail"])
        {
            RedirectStandardOutput = true,
        };
        psi.Environment["TRELLIS_LAB"] = lab.Name;
        using (var traffic = Process.Start(psi)!)
        {
            Thread.Sleep(1000);
            Sh.Must("kill", "-9", agent.ToString(CultureInfo.InvariantCulture));
            Thread.Sleep(500);
            Assert.Contains("10.244.1.0/24 via 172.30.0.11", Sh.Must("ip", "-n", node2, "route"), StringComparison.Ordinal);
            var counts = traffic.StandardOutput.ReadToEnd().Trim().Split(' ').Select(int.Parse).ToArray();
            traffic.WaitForExit();
            Assert.True(counts[0] > 20, $"only {counts[0]} connections in 5 s: the loop did not run");
            Assert.Equal(0, counts[1]);
        }
        string log1 = $"/var/log/trellis/{lab.Name}/trellisd-node-1.log";
        WaitFor(() => File.ReadAllText(log1).Contains("restarting with forwarding preserved", StringComparison.Ordinal), 20, "the restarted agent saw its routes and restarted gracefully");
        WaitStatus(lab, doc => doc["nodes"]!.AsArray().All(n => n!["peers"]!.AsArray().All(p => p!["state"]!.GetValue<string>() == "Established")));
        Assert.Contains("10.244.2.0/24 via 172.30.0.12", Sh.Must("ip", "-n", node1, "route"), StringComparison.Ordinal);
        // node-2 kept node-1's route the whole time: it was marked stale when the connection dropped and
        // refreshed by the new session, never withdrawn; a connection collision on the way back closed only
        // the losing connection (the old bug: "received cease/7", session Idle, route gone).
        Assert.Contains("10.244.1.0/24 via 172.30.0.11", Sh.Must("ip", "-n", node2, "route"), StringComparison.Ordinal);
        string log2 = File.ReadAllText($"/var/log/trellis/{lab.Name}/trellisd-node-2.log");
        Assert.Contains("keeping its routes as stale", log2, StringComparison.Ordinal);
        Assert.DoesNotContain("down: received cease/7", log2, StringComparison.Ordinal);
        Assert.DoesNotContain("dropping", log2, StringComparison.Ordinal);

        // node-1 becomes a route reflector: node-2 and node-3 drop their session to each other and learn
        // each other's pod CIDR through node-1, next hop unchanged.
        var node = JsonNode.Parse(lab.Must("get", "no", "node-1", "-o", "json"))!.AsObject();
        var meta = node["metadata"]!.AsObject();
        (meta["annotations"] ??= new JsonObject())!.AsObject()["trellis.dev/route-reflector-cluster-id"] = "244.0.0.1";
        meta.Remove("resourceVersion");
        lab.Apply(node.ToJsonString());
        WaitStatus(lab, doc =>
        {
            var n2 = doc["nodes"]!.AsArray().First(n => n!["node"]!.GetValue<string>() == "node-2")!;
            var n1s = doc["nodes"]!.AsArray().First(n => n!["node"]!.GetValue<string>() == "node-1")!;
            return n2["peers"]!.AsArray() is [var only] && only!["address"]!.GetValue<string>() == "172.30.0.11" && only["state"]!.GetValue<string>() == "Established"
                && only["prefixesReceived"]!.GetValue<int>() == 2 && n1s["routeReflectorClusterId"]?.GetValue<string>() == "244.0.0.1";
        });
        WaitRoute(node2, "10.244.3.0/24 via 172.30.0.13 dev eth0");
        WaitRoute(node3, "10.244.2.0/24 via 172.30.0.12 dev eth0");
        Assert.Equal("p2\n", lab.Must("exec", "x/p1", "--", LabDriver.Trellis, "connect", $"{p2Ip}:80"));
    }

    [LabFact]
    public void BIRD_reflects_for_all_nodes_FRR_and_GoBGP_peer_externally_and_faults_stay_contained()
    {
        foreach (var bin in new[] { "/usr/sbin/bird", "/usr/lib/frr/bgpd", "/usr/bin/gobgpd" })
        {
            Assert.True(File.Exists(bin), $"{bin} is not installed (scripts/install-deps.sh installs bird2, frr, gobgpd)");
        }
        using var lab = new LabDriver("bx");
        using var routers = new Routers(lab.Name);
        lab.Must("lab", "up", "--name", lab.Name, "--nodes", "3", "--backend", "bgp");
        string ul = $"trl-{lab.Name}-ul";
        foreach (var a in new[] { "172.30.0.2", "172.30.0.3", "172.30.0.4", "172.30.0.5", "172.30.0.6" })
        {
            Sh.Must("ip", "-n", ul, "addr", "add", a + "/24", "dev", "ul0");
        }
        string[] nodes = ["172.30.0.11", "172.30.0.12", "172.30.0.13"];
        routers.StartBird(ul, "rr", "172.30.0.2", nodes, rr: true, password: null);
        routers.StartBird(ul, "md5", "172.30.0.6", ["172.30.0.11"], rr: false, password: "right-key");
        routers.StartFrr(ul, "172.30.0.3", 65001, nodes, "10.99.1.0/24");
        routers.StartGoBgp(ul, "172.30.0.4", 65002, nodes);
        lab.Apply("""
            apiVersion: trellis.dev/v1alpha1
            kind: BGPConfiguration
            metadata: {name: default}
            spec: {nodeToNodeMeshEnabled: false, holdTime: 6s, gracefulRestartTime: 10s}
            ---
            apiVersion: trellis.dev/v1alpha1
            kind: BGPPeer
            metadata: {name: bird-rr}
            spec: {peerIP: 172.30.0.2, asNumber: 64512}
            ---
            apiVersion: trellis.dev/v1alpha1
            kind: BGPPeer
            metadata: {name: tor-frr}
            spec: {peerIP: 172.30.0.3, asNumber: 65001}
            ---
            apiVersion: trellis.dev/v1alpha1
            kind: BGPPeer
            metadata: {name: gobgp}
            spec: {peerIP: 172.30.0.4, asNumber: 65002}
            ---
            apiVersion: trellis.dev/v1alpha1
            kind: BGPPeer
            metadata: {name: fuzz}
            spec: {peerIP: 172.30.0.5, asNumber: 65005, node: node-1}
            ---
            apiVersion: trellis.dev/v1alpha1
            kind: BGPPeer
            metadata: {name: wrong-md5}
            spec: {peerIP: 172.30.0.6, asNumber: 64512, node: node-1, password: wrong-key}
            """);
        // A bad BGPPeer is refused at apply, naming the field.
        var (exit, _, err) = lab.RunWithStdin("apiVersion: trellis.dev/v1alpha1\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: not-an-ip, asNumber: 65001}\n", "apply", "-f", "-");
        Assert.NotEqual(0, exit);
        Assert.Contains("spec.peerIP", err, StringComparison.Ordinal);
        Routers.GoBgp(ul, "global", "rib", "add", "10.99.2.0/24");

        // Sessions up; pod CIDRs reach every node through BIRD (iBGP, reflected, next hop = the owning node),
        // FRR's and GoBGP's prefixes reach every node, and the nodes' pod CIDRs reach FRR and GoBGP.
        string[] ns = [$"trl-{lab.Name}-node-1", $"trl-{lab.Name}-node-2", $"trl-{lab.Name}-node-3"];
        WaitRoute(ns[0], "10.244.2.0/24 via 172.30.0.12 dev eth0", 40);
        WaitRoute(ns[0], "10.244.3.0/24 via 172.30.0.13 dev eth0");
        WaitRoute(ns[1], "10.244.1.0/24 via 172.30.0.11 dev eth0");
        WaitRoute(ns[2], "10.244.1.0/24 via 172.30.0.11 dev eth0");
        foreach (var n in ns)
        {
            WaitRoute(n, "10.99.1.0/24 via 172.30.0.3 dev eth0");
            WaitRoute(n, "10.99.2.0/24 via 172.30.0.4 dev eth0");
        }
        WaitFor(() => HasAll(Routers.Vtysh(routers, ul, "show ip bgp"), s_podCidrs), 20, "FRR learned every pod CIDR");
        WaitFor(() => HasAll(Routers.GoBgp(ul, "global", "rib"), s_podCidrs), 20, "GoBGP learned every pod CIDR");
        Assert.Contains("10.244.3.0/24", Routers.Birdc(routers, ul, "rr", "show route"), StringComparison.Ordinal);
        // Pod traffic across nodes over reflected routes.
        lab.Apply(Pods);
        var pods = lab.WaitReady("x", 2);
        Assert.Equal("p2\n", lab.Must("exec", "x/p1", "--", LabDriver.Trellis, "connect", $"{IpOf(pods, "p2")}:80"));

        // Wrong MD5 key: the kernel drops the segments, no session ever comes up.
        var st = Status(lab, "node-1");
        Assert.NotEqual("Established", Peer(st, "172.30.0.6")["state"]!.GetValue<string>());
        Assert.Equal("Established", Peer(st, "172.30.0.3")["state"]!.GetValue<string>());

        // A fuzzing peer sends an UPDATE whose attribute list runs past the message: it gets NOTIFICATION 3/1
        // (Malformed Attribute List, RFC 7606 §4), its session resets, and node-1's other sessions and routes
        // are untouched.
        var notification = BgpFuzzPeer.SendMalformedUpdate(ul, IPAddress.Parse("172.30.0.5"), IPAddress.Parse("172.30.0.11"), 65005, TimeSpan.FromSeconds(20));
        Assert.Equal((3, 1), ((int)notification.Code, (int)notification.Subcode));
        WaitFor(() => Peer(Status(lab, "node-1"), "172.30.0.5")["state"]!.GetValue<string>() != "Established", 5, "the fuzzing peer's session reset");
        st = Status(lab, "node-1");
        Assert.Equal("Established", Peer(st, "172.30.0.2")["state"]!.GetValue<string>());
        Assert.Equal("Established", Peer(st, "172.30.0.3")["state"]!.GetValue<string>());
        Assert.Contains("10.99.1.0/24 via 172.30.0.3", Sh.Must("ip", "-n", ns[0], "route"), StringComparison.Ordinal);

        // GoBGP killed: the connection resets (no graceful restart on its side), its prefix is withdrawn at once.
        routers.Kill("gobgpd");
        foreach (var n in ns)
        {
            WaitNoRoute(n, "10.99.2.0/24", 10);
        }
        // FRR frozen: no KEEPALIVE, no FIN; after the 6 s hold time the nodes drop it and its prefix.
        var sw = Stopwatch.StartNew();
        routers.Signal("bgpd", "STOP");
        foreach (var n in ns)
        {
            WaitNoRoute(n, "10.99.1.0/24", 20);
        }
        Assert.True(sw.Elapsed > TimeSpan.FromSeconds(4), $"FRR's route went after {sw.Elapsed}: before the hold time");
        routers.Signal("bgpd", "CONT");
        Assert.Contains("10.244.2.0/24 via 172.30.0.12", Sh.Must("ip", "-n", ns[0], "route"), StringComparison.Ordinal);
    }

    private static readonly string[] s_podCidrs = ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"];

    private static bool HasAll(string text, string[] parts) => parts.All(p => text.Contains(p, StringComparison.Ordinal));

    private static string IpOf(JsonArray pods, string name) =>
        pods.First(p => p!["metadata"]!["name"]!.GetValue<string>() == name)!["status"]!["podIP"]!.GetValue<string>();

    private static JsonNode Status(LabDriver lab, string node) =>
        JsonNode.Parse(lab.Must("bgp", "status", "--node", node, "-o", "json"))!["nodes"]![0]!;

    private static JsonNode Peer(JsonNode status, string address) =>
        status["peers"]!.AsArray().First(p => p!["address"]!.GetValue<string>() == address)!;

    private static JsonNode WaitStatus(LabDriver lab, Func<JsonNode, bool> done, int seconds = 30)
    {
        JsonNode? doc = null;
        for (var until = DateTime.UtcNow.AddSeconds(seconds); DateTime.UtcNow < until; Thread.Sleep(250))
        {
            var (exit, o, _) = lab.Run("bgp", "status", "-o", "json");
            if (exit == 0 && JsonNode.Parse(o) is { } d && d["nodes"]!.AsArray().All(n => n!["error"] is null))
            {
                doc = d;
                try
                {
                    if (done(d))
                    {
                        return d;
                    }
                }
                catch (NullReferenceException)
                {
                    // a field not there yet
                }
            }
        }
        throw new Xunit.Sdk.XunitException("bgp status never got there; last: " + doc?.ToJsonString());
    }

    private static void WaitRoute(string ns, string route, int seconds = 20) =>
        WaitFor(() => Sh.Must("ip", "-n", ns, "route", "show", "proto", "203").Contains(route, StringComparison.Ordinal), seconds, $"{ns}: route {route}; have:\n" + Sh.Must("ip", "-n", ns, "route"));

    private static void WaitNoRoute(string ns, string prefix, int seconds) =>
        WaitFor(() => !Sh.Must("ip", "-n", ns, "route").Contains(prefix, StringComparison.Ordinal), seconds, $"{ns}: {prefix} withdrawn");

    private static void WaitFor(Func<bool> condition, int seconds, string what)
    {
        for (var until = DateTime.UtcNow.AddSeconds(seconds); ; Thread.Sleep(200))
        {
            if (condition())
            {
                return;
            }
            if (DateTime.UtcNow > until)
            {
                throw new Xunit.Sdk.XunitException("timed out waiting: " + what);
            }
        }
    }

    /// <summary>BIRD, FRR and GoBGP in the lab's underlay netns, stopped by PID.</summary>
    private sealed class Routers(string lab) : IDisposable
    {
        private readonly List<(string Name, Process Process)> _procs = [];

        public string Dir { get; } = Directory.CreateTempSubdirectory("trl-bgplab-").FullName;

        public void StartBird(string ns, string name, string self, string[] peers, bool rr, string? password)
        {
            string neighbours = string.Concat(peers.Select((p, i) => $$"""
                protocol bgp n{{i}} {
                  local {{self}} as 64512;
                  neighbor {{p}} as 64512;
                  {{(rr ? "rr client; rr cluster id 1.1.1.1;" : "")}}
                  {{(password is null ? "" : $"password \"{password}\";")}}
                  hold time 6; connect retry time 1; error wait time 1, 2;
                  # Bound to its own address: a wildcard :179 listener would keep the other BIRD, FRR and
                  # gobgpd (all in the underlay netns, each on its own address) from listening.
                  strict bind yes;
                  graceful restart on;
                  ipv4 { import all; export all; };
                }

                """));
            string conf = Path.Combine(Dir, name + ".conf");
            File.WriteAllText(conf, $"router id {self};\nprotocol device {{ }}\n{neighbours}");
            Start(ns, "bird-" + name, "/usr/sbin/bird", "-f", "-c", conf, "-s", Path.Combine(Dir, name + ".ctl"), "-P", Path.Combine(Dir, name + ".pid"));
        }

        public void StartFrr(string ns, string self, uint asn, string[] peers, string network)
        {
            string neighbours = string.Concat(peers.Select(p => $" neighbor {p} remote-as 64512\n neighbor {p} timers 2 6\n neighbor {p} timers connect 1\n"));
            string conf = Path.Combine(Dir, "frr.conf");
            File.WriteAllText(conf, $"frr defaults traditional\nhostname {lab}-frr\nrouter bgp {asn}\n bgp router-id {self}\n no bgp ebgp-requires-policy\n no bgp network import-check\n{neighbours} address-family ipv4 unicast\n  network {network}\n exit-address-family\n");
            string dir = Path.Combine(Dir, "frr");
            Directory.CreateDirectory(dir);
            Start(ns, "bgpd", "/usr/lib/frr/bgpd", "-f", conf, "-i", Path.Combine(dir, "bgpd.pid"), "--vty_socket", dir, "-z", Path.Combine(dir, "zserv.api"), "-Z", "-S", "-n", "-P", "0", "-l", self, "--log", "stdout");
        }

        public void StartGoBgp(string ns, string self, uint asn, string[] peers)
        {
            string neighbours = string.Concat(peers.Select(p => $"""
                [[neighbors]]
                  [neighbors.config]
                    neighbor-address = "{p}"
                    peer-as = 64512
                  [neighbors.transport.config]
                    local-address = "{self}"
                  [neighbors.timers.config]
                    hold-time = 6
                    keepalive-interval = 2
                    connect-retry = 1
                  [[neighbors.afi-safis]]
                    [neighbors.afi-safis.config]
                      afi-safi-name = "ipv4-unicast"

                """));
            string conf = Path.Combine(Dir, "gobgpd.toml");
            File.WriteAllText(conf, $"[global.config]\n  as = {asn}\n  router-id = \"{self}\"\n  local-address-list = [\"{self}\"]\n{neighbours}");
            Start(ns, "gobgpd", "/usr/bin/gobgpd", "-f", conf, "-t", "toml", "--api-hosts", "127.0.0.1:50051", "-l", "warn");
            WaitFor(() => Sh.Run("ip", "netns", "exec", ns, "/usr/bin/gobgp", "-u", "127.0.0.1", "-p", "50051", "global").Exit == 0, 10, "gobgpd's API");
        }

        public static string GoBgp(string ns, params string[] args) => Sh.Must("ip", ["netns", "exec", ns, "/usr/bin/gobgp", "-u", "127.0.0.1", "-p", "50051", .. args]);

        public static string Vtysh(Routers r, string ns, string command) =>
            Sh.Run("ip", "netns", "exec", ns, "/usr/bin/vtysh", "--vty_socket", Path.Combine(r.Dir, "frr"), "-d", "bgpd", "-c", command).Out;

        public static string Birdc(Routers r, string ns, string name, string command) =>
            Sh.Must("ip", ["netns", "exec", ns, "/usr/sbin/birdc", "-s", Path.Combine(r.Dir, name + ".ctl"), .. command.Split(' ')]);

        public void Kill(string name)
        {
            var p = _procs.First(x => x.Name == name).Process;
            p.Kill();
            p.WaitForExit();
        }

        public void Signal(string name, string signal) =>
            Sh.Must("kill", "-" + signal, _procs.First(x => x.Name == name).Process.Id.ToString(CultureInfo.InvariantCulture));

        private void Start(string ns, string name, string file, params string[] args)
        {
            // `ip netns exec` execs the router, so the PID is the router's own.
            var psi = new ProcessStartInfo("ip", ["netns", "exec", ns, file, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
            var p = Process.Start(psi)!;
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            _procs.Add((name, p));
        }

        public void Dispose()
        {
            foreach (var (_, p) in _procs)
            {
                try
                {
                    if (!p.HasExited)
                    {
                        Sh.Run("kill", "-CONT", p.Id.ToString(CultureInfo.InvariantCulture));
                        p.Kill();
                        p.WaitForExit(5000);
                    }
                }
                catch (InvalidOperationException)
                {
                    // gone already
                }
                p.Dispose();
            }
            Directory.Delete(Dir, recursive: true);
        }
    }
}
