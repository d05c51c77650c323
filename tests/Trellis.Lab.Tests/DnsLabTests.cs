using System.Diagnostics;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>
/// One 2-node lab with its cluster DNS (two trellis-dns pods behind kube-system/kube-dns at 10.96.0.10, the
/// outside resolver stub on 172.30.0.1), a Service web over a pod on node-1, and client pods on node-2 with
/// each dnsPolicy.
/// </summary>
public sealed class DnsLabFixture : IDisposable
{
    public const string Ns = "app";

    public LabDriver Lab { get; } = new("d");

    public DnsLabFixture()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }
        try
        {
            Up();
            Lab.Apply($$$"""
                apiVersion: v1
                kind: Namespace
                metadata: {name: {{{Ns}}}}
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: web-1, namespace: {{{Ns}}}, labels: {app: web}}
                spec: {nodeName: node-1, containers: [{name: c, image: agnhost, ports: [{name: http, containerPort: 80}]}]}
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: client, namespace: {{{Ns}}}}
                spec: {nodeName: node-2, containers: [{name: c, image: agnhost, command: [sleep, infinity]}]}
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: host-dns, namespace: {{{Ns}}}}
                spec: {nodeName: node-2, dnsPolicy: Default, containers: [{name: c, image: agnhost, command: [sleep, infinity]}]}
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: custom-dns, namespace: {{{Ns}}}}
                spec:
                  nodeName: node-2
                  dnsPolicy: None
                  dnsConfig: {nameservers: [10.96.0.10, 172.30.0.1], searches: [svc.cluster.local, example.test], options: [{name: ndots, value: "2"}, {name: edns0}]}
                  containers: [{name: c, image: agnhost, command: [sleep, infinity]}]
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: merged-dns, namespace: {{{Ns}}}}
                spec:
                  nodeName: node-1
                  dnsConfig: {nameservers: [172.30.0.1], searches: [example.test, cluster.local], options: [{name: ndots, value: "1"}, {name: timeout, value: "2"}]}
                  containers: [{name: c, image: agnhost, command: [sleep, infinity]}]
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: web, namespace: {{{Ns}}}}
                spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
                """);
            Lab.WaitReady(Ns, 5);
        }
        catch
        {
            Lab.Dispose(); // xunit does not dispose a fixture whose constructor threw
            throw;
        }
    }

    /// <summary>`lab up` (again): it also recreates a cluster DNS pod that was deleted, and waits for both to be Ready.</summary>
    public string Up() => Lab.Must("lab", "up", "--name", Lab.Name, "--nodes", "2");

    public void Dispose() => Lab.Dispose();
}

/// <summary>
/// Cluster DNS end to end (issue 7): names resolved from pods by the real glibc resolver through the kubelet's
/// resolv.conf, and by dig, against trellis-dns running as pods behind the kube-dns Service.
/// </summary>
[Collection("lab")]
public sealed class DnsLabTests(DnsLabFixture f) : IClassFixture<DnsLabFixture>
{
    private const string Ns = DnsLabFixture.Ns;
    private LabDriver Lab => f.Lab;

    private (int Exit, string Out, string Err) Exec(string pod, params string[] cmd) => Lab.Run(["exec", $"{Ns}/{pod}", "--", .. cmd]);

    private string MustExec(string pod, params string[] cmd)
    {
        var (exit, o, e) = Exec(pod, cmd);
        Assert.True(exit == 0, $"{pod}: {string.Join(' ', cmd)} exited {exit}:\n{e}\n{o}");
        return o;
    }

    private string ClusterIp(string ns, string name) =>
        JsonNode.Parse(Lab.Must("get", "svc", name, "-n", ns, "-o", "json"))!["spec"]!["clusterIP"]!.GetValue<string>();

    private string Dig(string pod, params string[] args) => MustExec(pod, ["dig", "+short", "+tries=1", "+time=1", .. args]).Trim();

    [LabFact]
    public void Lab_up_deploys_kube_dns_with_two_ready_pods_on_different_nodes()
    {
        var svc = JsonNode.Parse(Lab.Must("get", "svc", "kube-dns", "-n", "kube-system", "-o", "json"))!;
        Assert.Equal("10.96.0.10", svc["spec"]!["clusterIP"]!.GetValue<string>());
        Assert.Equal("kube-dns", svc["spec"]!["selector"]!["k8s-app"]!.GetValue<string>());
        var ports = svc["spec"]!["ports"]!.AsArray().Select(p => $"{p!["name"]}/{p["port"]}/{p["protocol"]}").ToList();
        Assert.Equal(["dns/53/UDP", "dns-tcp/53/TCP", "metrics/9153/TCP"], ports);

        var pods = Lab.WaitReady("kube-system", 2).Where(p => p!["metadata"]!["labels"]?["k8s-app"]?.GetValue<string>() == "kube-dns").ToList();
        Assert.Equal(2, pods.Count);
        Assert.Equal(2, pods.Select(p => p!["spec"]!["nodeName"]!.GetValue<string>()).Distinct().Count());
        Assert.All(pods, p => Assert.Equal("/ready", p!["spec"]!["containers"]![0]!["readinessProbe"]!["httpGet"]!["path"]!.GetValue<string>()));

        // The Service's metrics port reaches trellis-dns' Prometheus endpoint.
        var (exit, metrics, err) = Exec("client", "bash", "-c", "exec 3<>/dev/tcp/10.96.0.10/9153; printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3; cat <&3");
        Assert.True(exit == 0, err);
        Assert.Contains("trellis_dns_queries_total", metrics, StringComparison.Ordinal);
    }

    [LabFact]
    public void ClusterFirst_resolv_conf_and_getent_resolve_short_names_through_the_search_path()
    {
        Assert.Equal("search app.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
            MustExec("client", "cat", "/etc/resolv.conf"));
        string ip = ClusterIp(Ns, "web");
        // The real glibc resolver: "web" has fewer than 5 dots, so the search path is tried first.
        Assert.Equal($"{ip} web.app.svc.cluster.local", Normalize(MustExec("client", "getent", "hosts", "web")));
        Assert.Equal($"{ip} web.app.svc.cluster.local", Normalize(MustExec("client", "getent", "hosts", "web.app")));
        Assert.Equal("10.96.0.10 kube-dns.kube-system.svc.cluster.local", Normalize(MustExec("client", "getent", "hosts", "kube-dns.kube-system")));
        var (exit, _, _) = Exec("client", "getent", "hosts", "nosuchservice");
        Assert.Equal(2, exit); // getent: key not found
    }

    [LabFact]
    public void Dig_answers_srv_and_ptr_over_udp_and_tcp()
    {
        string ip = ClusterIp(Ns, "web");
        foreach (var transport in new[] { "+notcp", "+tcp" })
        {
            Assert.Equal("0 100 80 web.app.svc.cluster.local.", Dig("client", transport, "@10.96.0.10", "_http._tcp.web.app.svc.cluster.local", "SRV"));
            Assert.Equal("web.app.svc.cluster.local.", Dig("client", transport, "@10.96.0.10", "-x", ip));
            Assert.Equal("kube-dns.kube-system.svc.cluster.local.", Dig("client", transport, "@10.96.0.10", "-x", "10.96.0.10"));
        }
        string status = MustExec("client", "dig", "+tries=1", "+time=1", "@10.96.0.10", "nosuch.app.svc.cluster.local");
        Assert.Contains("status: NXDOMAIN", status, StringComparison.Ordinal);
    }

    [LabFact]
    public void Outside_names_are_forwarded_to_the_lab_resolver_and_dns_policies_are_honoured()
    {
        // Through cluster DNS (forwarded to the stub in the underlay), by glibc and by dig.
        Assert.Equal("172.30.0.1 outside.test", Normalize(MustExec("client", "getent", "hosts", "outside.test")));
        Assert.Equal("192.0.2.80", Dig("client", "@10.96.0.10", "www.example.test"));
        Assert.Equal("outside.test.", Dig("client", "@10.96.0.10", "-x", "172.30.0.1"));
        Assert.Contains("status: NXDOMAIN", MustExec("client", "dig", "+tries=1", "+time=1", "@10.96.0.10", "missing.example.test"), StringComparison.Ordinal);

        // Default: the node's resolver (the lab's outside host), no cluster search path; cluster names do not resolve.
        Assert.Equal("nameserver 172.30.0.1\n", MustExec("host-dns", "cat", "/etc/resolv.conf"));
        Assert.Equal("172.30.0.1 outside.test", Normalize(MustExec("host-dns", "getent", "hosts", "outside.test")));
        Assert.NotEqual(0, Exec("host-dns", "getent", "hosts", "web.app.svc.cluster.local").Exit);

        // None: exactly the pod's dnsConfig.
        Assert.Equal("search svc.cluster.local example.test\nnameserver 10.96.0.10\nnameserver 172.30.0.1\noptions ndots:2 edns0\n",
            MustExec("custom-dns", "cat", "/etc/resolv.conf"));
        Assert.Equal($"{ClusterIp(Ns, "web")} web.app.svc.cluster.local", Normalize(MustExec("custom-dns", "getent", "hosts", "web.app")));
        Assert.Equal("192.0.2.80 www.example.test", Normalize(MustExec("custom-dns", "getent", "hosts", "www")));

        // ClusterFirst + dnsConfig: appended and de-duplicated, options merged with the pod's value winning.
        Assert.Equal("search app.svc.cluster.local svc.cluster.local cluster.local example.test\nnameserver 10.96.0.10\nnameserver 172.30.0.1\noptions ndots:1 timeout:2\n",
            MustExec("merged-dns", "cat", "/etc/resolv.conf"));
    }

    [LabFact]
    public void A_new_service_is_resolvable_within_one_second_of_apply()
    {
        string name = "late-" + Guid.NewGuid().ToString("N")[..6];
        Lab.Apply($"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {Ns}}}\nspec: {{selector: {{app: web}}, ports: [{{port: 8080}}]}}\n");
        var sw = Stopwatch.StartNew();
        string ip = ClusterIp(Ns, name);
        string fqdn = $"{name}.{Ns}.svc.cluster.local";
        // From the client's node netns (no `trellis exec` per try), to the Service address as pods use it.
        string nodeNetns = $"trl-{Lab.Name}-node-2";
        string answer;
        while (true)
        {
            answer = Sh.Run("ip", ["netns", "exec", nodeNetns, "dig", "+short", "+tries=1", "+time=1", "@10.96.0.10", fqdn]).Out.Trim();
            if (answer == ip || sw.Elapsed > TimeSpan.FromSeconds(5))
            {
                break;
            }
            Thread.Sleep(20);
        }
        var elapsed = sw.Elapsed;
        Console.WriteLine($"new Service {fqdn} resolvable {elapsed.TotalMilliseconds:0} ms after apply returned");
        Assert.Equal(ip, answer);
        Assert.True(elapsed < TimeSpan.FromSeconds(1), $"{fqdn} took {elapsed.TotalMilliseconds:0} ms to resolve");
        Lab.RunWithStdin($"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {Ns}}}\n", "delete", "-f", "-");
    }

    [LabFact]
    public void Resolution_survives_deleting_the_dns_pod_a_client_is_pinned_to()
    {
        try
        {
            // A client that keeps its source port: its UDP conntrack entry pins it to one DNS pod.
            const string sport = "5353";
            string[] query = ["dig", "-b", "0.0.0.0#" + sport, "+short", "+tries=1", "+time=1", "@10.96.0.10", "web.app.svc.cluster.local"];
            string ip = ClusterIp(Ns, "web");
            Assert.Equal(ip, MustExec("client", query).Trim());
            string pinned = ConntrackBackend(sport);
            var dnsPods = Lab.Pods("kube-system").Where(p => p!["metadata"]!["labels"]?["k8s-app"]?.GetValue<string>() == "kube-dns")
                .ToDictionary(p => p!["status"]!["podIP"]!.GetValue<string>(), p => p!["metadata"]!["name"]!.GetValue<string>());
            Assert.True(dnsPods.ContainsKey(pinned), $"conntrack points at {pinned}, not at a DNS pod ({string.Join(", ", dnsPods.Keys)})");

            var sw = Stopwatch.StartNew();
            Lab.RunWithStdin($"apiVersion: v1\nkind: Pod\nmetadata: {{name: {dnsPods[pinned]}, namespace: kube-system}}\n", "delete", "-f", "-");
            var deleted = sw.Elapsed;
            // The same source port must reach the other pod: the proxy deletes the stale UDP conntrack entry.
            string answer = "";
            while (sw.Elapsed < TimeSpan.FromSeconds(15))
            {
                answer = Exec("client", query).Out.Trim();
                if (answer == ip)
                {
                    break;
                }
            }
            var moved = sw.Elapsed - deleted;
            Console.WriteLine($"pinned client answered by the other DNS pod {moved.TotalMilliseconds:0} ms after the delete returned");
            Assert.Equal(ip, answer);
            Assert.NotEqual(pinned, ConntrackBackend(sport));
            Assert.True(moved < TimeSpan.FromSeconds(3), $"the pinned client took {moved.TotalMilliseconds:0} ms to move to the other DNS pod");
            // glibc too, all the while.
            Assert.Equal($"{ip} web.app.svc.cluster.local", Normalize(MustExec("client", "getent", "hosts", "web")));
        }
        finally
        {
            // `lab up` recreates the missing DNS pod and waits for both, so the other tests see the full add-on.
            Assert.Contains("cluster DNS Ready", f.Up(), StringComparison.Ordinal);
        }
    }

    /// <summary>The DNS pod the client's UDP flow from <paramref name="sport"/> to 10.96.0.10:53 was DNATed to (its node's conntrack).</summary>
    private string ConntrackBackend(string sport)
    {
        string table = Sh.Run("ip", ["netns", "exec", $"trl-{Lab.Name}-node-2", "conntrack", "-L", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-src", sport]).Out;
        var line = table.Split('\n').FirstOrDefault(l => l.Contains("dport=53", StringComparison.Ordinal)) ?? throw new Xunit.Sdk.XunitException("no conntrack entry for the client's flow:\n" + table);
        // The reply direction's source is the endpoint: "... src=POD dst=CLIENT sport=53 ...".
        var srcs = line.Split(' ').Where(w => w.StartsWith("src=", StringComparison.Ordinal)).ToList();
        return srcs[1]["src=".Length..];
    }

    private static string Normalize(string getent) => string.Join(' ', getent.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries));
}
