using System.Diagnostics;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>What one connection through the lab saw: exit code (DESIGN §6: 0 answered, 1 refused, 3 timed out), who answered, and the client address the server saw.</summary>
public sealed record Seen(int Exit, string? Name, string? Client, string Err)
{
    public string? ClientIp => Client is null ? null : Client[..Client.LastIndexOf(':')];

    public override string ToString() => $"exit {Exit} name {Name} client {Client} {Err.Trim()}";
}

/// <summary>
/// Helpers for Service tests: connect from a pod, a node or the outside (underlay) netns with the real
/// `trellis connect`, to servers started with `serve-hostname --report-client`, which answer with their
/// name and the client address they saw.
/// </summary>
public static class ServiceLab
{
    /// <summary>A serve-hostname pod that reports its clients, on a fixed node, with named ports http (TCP) and dns (UDP) on <paramref name="port"/>.</summary>
    public static string WebPod(string ns, string name, string node, int port, string app = "web") => $$$"""
        apiVersion: v1
        kind: Pod
        metadata: {name: {{{name}}}, namespace: {{{ns}}}, labels: {app: {{{app}}}, name: {{{name}}}}}
        spec:
          nodeName: {{{node}}}
          terminationGracePeriodSeconds: 2
          containers:
          - name: c
            image: agnhost
            command: ["{{{LabDriver.Trellis}}}", "serve-hostname", "--name", "{{{name}}}", "--port", "{{{port}}}", "{{{port}}}/udp", "--report-client"]
            ports: [{name: http, containerPort: {{{port}}}, protocol: TCP}, {name: dns, containerPort: {{{port}}}, protocol: UDP}]
        ---
        """ + "\n";

    public static string ClientPod(string ns, string name, string node) => $$$"""
        apiVersion: v1
        kind: Pod
        metadata: {name: {{{name}}}, namespace: {{{ns}}}, labels: {role: client}}
        spec: {nodeName: {{{node}}}, containers: [{name: c, image: agnhost, ports: [{containerPort: 9999}]}]}
        ---
        """ + "\n";

    /// <summary>
    /// One fresh connection. <paramref name="from"/> is "ns/pod", "node-N" (the node's own netns) or "outside"
    /// (the underlay netns, a host outside the cluster).
    /// </summary>
    public static Seen Connect(LabDriver lab, string from, string target, string protocol = "tcp", string timeout = "1s", int sourcePort = 0)
    {
        string[] connect = [LabDriver.Trellis, "connect", target, "--protocol", protocol, "--timeout", timeout,
            .. (sourcePort > 0 ? ["--source-port", sourcePort.ToString(System.Globalization.CultureInfo.InvariantCulture)] : Array.Empty<string>())];
        (int exit, string o, string e) = from switch
        {
            "outside" => Sh.Run("ip", ["netns", "exec", $"trl-{lab.Name}-ul", .. connect]),
            _ when from.StartsWith("node-", StringComparison.Ordinal) => Sh.Run("ip", ["netns", "exec", $"trl-{lab.Name}-{from}", .. connect]),
            _ => lab.Run(["exec", from, "--", .. connect]),
        };
        var lines = o.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return new Seen(exit, lines.Length > 0 ? lines[0] : null, lines.Length > 1 ? lines[1] : null, e);
    }

    /// <summary>Connects until the answer satisfies <paramref name="ok"/> (the proxy programs changes within a sync), or fails with the last answer.</summary>
    public static Seen Eventually(LabDriver lab, string from, string target, Func<Seen, bool> ok, string protocol = "tcp", int seconds = 15)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var seen = Connect(lab, from, target, protocol);
            if (ok(seen))
            {
                return seen;
            }
            Assert.True(DateTime.UtcNow < deadline, $"{from} -> {target}/{protocol}: still {seen} after {seconds}s");
            Thread.Sleep(200);
        }
    }

    public static JsonObject Service(LabDriver lab, string ns, string name) =>
        (JsonObject)JsonNode.Parse(lab.Must("get", "svc", name, "-n", ns, "-o", "json"))!;

    public static string ClusterIp(LabDriver lab, string ns, string name) =>
        Service(lab, ns, name)["spec"]!["clusterIP"]!.GetValue<string>();

    public static string PodIp(LabDriver lab, string ns, string name) =>
        JsonNode.Parse(lab.Must("get", "pod", name, "-n", ns, "-o", "json"))!["status"]!["podIP"]!.GetValue<string>();

    public static string NodeNetns(LabDriver lab, string node) => $"trl-{lab.Name}-{node}";

    /// <summary>The node's proxy table as nft lists it.</summary>
    public static string ProxyTable(LabDriver lab, string node) =>
        Sh.Run("ip", "netns", "exec", NodeNetns(lab, node), "nft", "list", "table", "ip", "trellis-proxy").Out;

    /// <summary>Waits until the node's proxy table satisfies <paramref name="ok"/>.</summary>
    public static void WaitTable(LabDriver lab, string node, Func<string, bool> ok, string what, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!ok(ProxyTable(lab, node)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"{node}: trellis-proxy never {what}:\n{ProxyTable(lab, node)}");
            Thread.Sleep(100);
        }
    }

    /// <summary>HTTP GET with bash's /dev/tcp from the outside netns: the status line.</summary>
    public static string HttpStatus(LabDriver lab, string hostPort)
    {
        var (host, port) = (hostPort[..hostPort.LastIndexOf(':')], hostPort[(hostPort.LastIndexOf(':') + 1)..]);
        var (_, o, e) = Sh.Run("ip", "netns", "exec", $"trl-{lab.Name}-ul", "timeout", "3", "bash", "-c",
            $"exec 3<>/dev/tcp/{host}/{port}; printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3");
        return (o.Split('\n').FirstOrDefault() ?? "").Trim() + (o.Contains("localEndpoints", StringComparison.Ordinal) ? " " + o[o.IndexOf('{', StringComparison.Ordinal)..].Trim() : "") + (o.Length == 0 ? e : "");
    }

    /// <summary>The PID of a daemon the supervisor runs (role trellisd/kubelet) on a node, from procs.json.</summary>
    public static int DaemonPid(LabDriver lab, string role, string node)
    {
        var procs = JsonNode.Parse(File.ReadAllText($"/run/trellis/{lab.Name}/procs.json"))!["procs"]!.AsArray();
        var p = procs.First(p => p!["role"]!.GetValue<string>() == role && p["node"]?.GetValue<string>() == node)!;
        return p["pid"]!.GetValue<int>();
    }

    public static void Kill(int pid) => Process.GetProcessById(pid).Kill();
}
