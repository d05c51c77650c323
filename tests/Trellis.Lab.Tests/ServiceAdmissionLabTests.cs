using System.Diagnostics;
using System.Text.Json.Nodes;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>
/// Service admission through the built `trellis` binary against a store file, no lab (DESIGN.md §4: store-only
/// use behaves the same): allocation on apply, refusals naming the field with nothing written, release on delete,
/// kubectl's Service and EndpointSlice tables, and graceful pod deletion's CLI flags.
/// </summary>
public sealed class ServiceAdmissionLabTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "trl-adm-" + Guid.NewGuid().ToString("N")[..12]);

    public ServiceAdmissionLabTests()
    {
        Directory.CreateDirectory(_dir);
        Must(Stdin("apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n"), "apply", "-f", "-");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Store => $"sqlite://{_dir}/store.db";

    private sealed record Input(string Text);

    private static Input Stdin(string text) => new(text);

    private (int Exit, string Out, string Err) Run(Input? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo(LabDriver.Trellis, [.. args, "--store", Store])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
        };
        psi.Environment.Remove("TRELLIS_STORE");
        psi.Environment.Remove("TRELLIS_LAB");
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin.Text);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit(TimeSpan.FromMinutes(1)))
        {
            p.Kill(true);
            throw new TimeoutException($"trellis {string.Join(' ', args)} did not finish");
        }
        return (p.ExitCode, o.Result, e.Result);
    }

    private string Must(Input? stdin, params string[] args)
    {
        var (exit, o, e) = Run(stdin, args);
        Assert.True(exit == 0, $"trellis {string.Join(' ', args)} exited {exit}:\n{e}\n{o}");
        return o;
    }

    private string Must(params string[] args) => Must(null, args);

    private JsonObject Get(string kind, string name) => (JsonObject)JsonNode.Parse(Must("get", kind, name, "-o", "json"))!;

    private const string Services = """
        apiVersion: v1
        kind: Service
        metadata: {name: dns}
        spec:
          type: NodePort
          clusterIP: 10.96.0.10
          selector: {app: dns}
          ports:
          - {name: dns-udp, port: 53, protocol: UDP}
          - {name: dns-tcp, port: 53, protocol: TCP}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          type: LoadBalancer
          selector: {app: web}
          ports: [{port: 80, nodePort: 30080}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: db}
        spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
        """;

    [Fact]
    public void Apply_allocates_and_get_svc_shows_it_as_kubectl_does()
    {
        Assert.Equal("service/dns created\nservice/web created\nservice/db created\n", Must(Stdin(Services), "apply", "-f", "-"));
        var dns = Get("svc", "dns");
        long np = (long)dns["spec"]!["ports"]![0]!["nodePort"]!;
        Assert.Equal(np, (long)dns["spec"]!["ports"]![1]!["nodePort"]!); // TCP and UDP of port 53 share one nodePort
        Assert.InRange(np, 30000, 32767);
        string webIP = (string)Get("svc", "web")["spec"]!["clusterIP"]!;
        Assert.StartsWith("10.96.", webIP, StringComparison.Ordinal);

        var lines = Must("get", "svc", "-o", "wide").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"], lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var rows = lines.Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToDictionary(r => r[0]);
        Assert.Equal(["NodePort", "10.96.0.10", "<none>", $"53:{np}/UDP,53:{np}/TCP"], rows["dns"][1..5]);
        Assert.Equal(["LoadBalancer", webIP, "<pending>", "80:30080/TCP"], rows["web"][1..5]);
        Assert.Equal(["ClusterIP", "None", "<none>", "5432/TCP"], rows["db"][1..5]);
        Assert.Equal("app=web", rows["web"][6]);

        // Re-applying is "unchanged": allocations are kept when the manifest omits them.
        Assert.Equal("service/dns unchanged\nservice/web unchanged\nservice/db unchanged\n", Must(Stdin(Services), "apply", "-f", "-"));

        // An ingress from the manifest (no controller sets it) shows as EXTERNAL-IP.
        Must(Stdin("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}\nstatus: {loadBalancer: {ingress: [{ip: 192.0.2.10}]}}\n"), "apply", "-f", "-");
        Assert.Contains("192.0.2.10", Must("get", "svc", "web"), StringComparison.Ordinal);
        Assert.Equal(30080, (long)Get("svc", "web")["spec"]!["ports"]![0]!["nodePort"]!);
    }

    [Fact]
    public void Taken_and_out_of_range_values_are_refused_with_the_field_named_and_released_on_delete()
    {
        Must(Stdin(Services), "apply", "-f", "-");
        const string clash = "apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 53}]}\n";
        var (exit, _, err) = Run(Stdin(clash), "apply", "-f", "-");
        Assert.Equal(1, exit);
        Assert.Contains("service/other", err, StringComparison.Ordinal);
        Assert.Contains("spec.clusterIP: Invalid value: \"10.96.0.10\": failed to allocate IP 10.96.0.10: provided IP is already allocated (by service default/dns)", err, StringComparison.Ordinal);
        Assert.Equal(1, Run(null, "get", "svc", "other").Exit);

        var (exit2, _, err2) = Run(Stdin("apiVersion: v1\nkind: Service\nmetadata: {name: np}\nspec: {type: NodePort, ports: [{port: 80, nodePort: 30080}]}\n"), "apply", "-f", "-");
        Assert.Equal(1, exit2);
        Assert.Contains("spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated (by service default/web)", err2, StringComparison.Ordinal);

        var (exit3, _, err3) = Run(Stdin("apiVersion: v1\nkind: Service\nmetadata: {name: far}\nspec: {clusterIP: 10.0.0.5, ports: [{port: 80}]}\n"), "apply", "-f", "-");
        Assert.Equal(1, exit3);
        Assert.Contains("spec.clusterIP: Invalid value: \"10.0.0.5\"", err3, StringComparison.Ordinal);
        Assert.Contains("not in the valid range", err3, StringComparison.Ordinal);

        Must(Stdin("apiVersion: v1\nkind: Service\nmetadata: {name: dns}\n"), "delete", "-f", "-");
        Assert.Equal("service/other created\n", Must(Stdin(clash), "apply", "-f", "-"));
    }

    [Fact]
    public void Get_endpointslices_shows_addresses_and_with_wide_conditions_and_nodes()
    {
        Must(Stdin("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            ports: [{name: http, port: 8080, protocol: TCP}]
            endpoints:
            - {addresses: [10.244.1.5], conditions: {ready: true, serving: true, terminating: false}, nodeName: node-1}
            - {addresses: [10.244.2.6], conditions: {ready: false, serving: true, terminating: true}, nodeName: node-2}
            """), "apply", "-f", "-");
        var table = Must("get", "eps").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], table[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(["web-abc", "IPv4", "8080", "10.244.1.5,10.244.2.6"], table[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[..4]);
        var wide = Must("get", "endpointslices", "-o", "wide").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.EndsWith("CONDITIONS", wide[0], StringComparison.Ordinal);
        Assert.EndsWith("10.244.1.5(ready+serving)@node-1;10.244.2.6(serving+terminating)@node-2", wide[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Deleting_a_bound_pod_leaves_it_terminating_for_its_kubelet_and_force_removes_it()
    {
        const string pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {nodeName: node-1, containers: [{name: c, image: x}]}\n";
        Must(Stdin(pod), "apply", "-f", "-");
        Assert.Equal("pod/p deleted\n", Must(Stdin(pod), "delete", "-f", "-", "--wait=false", "--grace-period", "20"));
        var meta = Get("pod", "p")["metadata"]!;
        Assert.NotNull(meta["deletionTimestamp"]);
        Assert.Equal(20, (long)meta["deletionGracePeriodSeconds"]!);
        Assert.Contains("Terminating", Must("get", "pods"), StringComparison.Ordinal);

        var (exit, _, err) = Run(Stdin(pod), "apply", "-f", "-");
        Assert.Equal(1, exit);
        Assert.Contains("metadata.deletionTimestamp", err, StringComparison.Ordinal);

        Assert.Equal(2, Run(Stdin(pod), "delete", "-f", "-", "--grace-period", "-5").Exit);
        Assert.Equal("pod/p deleted\n", Must(Stdin(pod), "delete", "-f", "-", "--force", "--grace-period", "0"));
        Assert.Equal(1, Run(null, "get", "pod", "p").Exit);
    }
}
