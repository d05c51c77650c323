using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>One lab shared by the bad-input cases: each must fail with the named field and change nothing.</summary>
public sealed class BadInputLab : IDisposable
{
    public BadInputLab()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }
        try
        {
            Setup();
        }
        catch
        {
            Lab.Dispose(); // xunit does not dispose a fixture whose constructor threw
            throw;
        }
    }

    private void Setup()
    {
        Lab.Must("lab", "up", "--name", Lab.Name, "--nodes", "1");
        Lab.Apply("""
            apiVersion: v1
            kind: Namespace
            metadata: {name: bad}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: existing, namespace: bad, labels: {app: x}}
            spec: {containers: [{name: c, image: agnhost, ports: [{containerPort: 80}]}]}
            """);
        // Settled first: the kubelet's status writes must not be mistaken for an apply's changes.
        Lab.WaitReady("bad", 1);
    }

    public LabDriver Lab { get; } = new("b");

    /// <summary>Every object of every kind, as JSON: the store's content to compare before and after.</summary>
    public string Snapshot() =>
        string.Join("\n", new[] { "ns", "no", "po", "svc", "endpointslices", "netpol" }.Select(k => Lab.Must("get", k, "-A", "-o", "json")))
            .Replace("\"resourceVersion\"", "\"rv\"", StringComparison.Ordinal);

    public void Dispose() => Lab.Dispose();
}

[Collection("lab")]
public sealed class BadInputTests(BadInputLab fixture) : IClassFixture<BadInputLab>
{
    public static TheoryData<string, string, int, string> Manifests => new()
    {
        { "broken YAML", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n", 1, "document 1" },
        { "not a mapping", "- a\n- b\n", 1, "must be an object" },
        { "no kind", "apiVersion: v1\nmetadata: {name: x}\n", 1, "kind" },
        { "unknown kind", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: bad}\n", 1, "kind" },
        { "missing name", "apiVersion: v1\nkind: Pod\nmetadata: {namespace: bad}\nspec: {containers: [{name: c, image: x}]}\n", 1, "metadata.name" },
        { "unknown node", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: bad}\nspec: {nodeName: node-99, containers: [{name: c, image: x}]}\n", 1, "spec.nodeName" },
        { "unknown namespace", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: nowhere}\nspec: {containers: [{name: c, image: x}]}\n", 1, "metadata.namespace" },
        { "port out of range", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: bad}\nspec: {containers: [{name: c, image: x, ports: [{containerPort: 70000}]}]}\n", 1, "spec.containers[0].ports[0].containerPort" },
        { "bad protocol", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: bad}\nspec: {containers: [{name: c, image: x, ports: [{containerPort: 80, protocol: ICMP}]}]}\n", 1, "protocol" },
        { "no containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: bad}\nspec: {containers: []}\n", 1, "spec.containers" },
        { "duplicate container names", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: bad}\nspec: {containers: [{name: c, image: x}, {name: c, image: y}]}\n", 1, "spec.containers[1].name" },
        { "bad label key", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: bad, labels: {'-bad': x}}\nspec: {containers: [{name: c, image: x}]}\n", 1, "metadata.labels" },
        { "bad service type", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: bad}\nspec: {type: Magic, ports: [{port: 80}]}\n", 1, "spec.type" },
        { "endPort without port", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n, namespace: bad}\nspec: {podSelector: {}, ingress: [{ports: [{endPort: 90}]}]}\n", 1, "endPort" },
        { "pod spec changed", "apiVersion: v1\nkind: Pod\nmetadata: {name: existing, namespace: bad}\nspec: {containers: [{name: c, image: other, ports: [{containerPort: 81}]}]}\n", 1, "spec" },
        { "good and bad together", "apiVersion: v1\nkind: Pod\nmetadata: {name: fine, namespace: bad}\nspec: {containers: [{name: c, image: x}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: broken, namespace: bad}\nspec: {containers: [{name: '', image: x}]}\n", 1, "document 2" },
        { "same object twice", "apiVersion: v1\nkind: Namespace\nmetadata: {name: twice}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: twice}\n", 1, "appears twice" },
    };

    [LabTheory]
    [MemberData(nameof(Manifests))]
    public void A_bad_manifest_is_refused_naming_the_field_and_changes_nothing(string what, string yaml, int exit, string field)
    {
        string before = fixture.Snapshot();
        var (code, _, err) = fixture.Lab.RunWithStdin(yaml, "apply", "-f", "-");
        Assert.True(code == exit, $"{what}: exit {code}, expected {exit}: {err}");
        Assert.Contains(field, err, StringComparison.Ordinal);
        Assert.Equal(before, fixture.Snapshot());
    }

    public static TheoryData<string, string[], int, string> Flags => new()
    {
        { "missing file", ["apply", "-f", "/nonexistent/x.yaml"], 2, "-f" },
        { "unknown kind", ["get", "widgets"], 2, "KIND" },
        { "bad output", ["get", "pods", "-o", "xml"], 2, "-o" },
        { "bad selector", ["get", "pods", "-l", "a in (x"], 2, "-l" },
        { "zero nodes", ["lab", "up", "--name", "zz", "--nodes", "0"], 2, "nodes" },
        { "unknown backend", ["lab", "up", "--name", "zz", "--backend", "ppp"], 2, "backend" },
        { "bad lab name", ["lab", "up", "--name", "Bad_Name"], 2, "name" },
        { "bad protocol", ["probe", "--protocol", "icmp"], 2, "--protocol" },
        { "bad port", ["probe", "--port", "0"], 2, "--port" },
        { "delete missing", ["delete", "-f", "-"], 1, "not found" },
        { "unknown flag", ["lab", "status", "--frobnicate"], 2, "frobnicate" },
        { "exec missing pod", ["exec", "bad/nosuch", "--", "true"], 2, "not found" },
    };

    [LabTheory]
    [MemberData(nameof(Flags))]
    public void A_bad_flag_is_a_usage_error_naming_it(string what, string[] args, int exit, string field)
    {
        string before = fixture.Snapshot();
        string? stdin = what == "delete missing" ? "apiVersion: v1\nkind: Pod\nmetadata: {name: ghost, namespace: bad}\n" : null;
        var (code, _, err) = fixture.Lab.RunWithStdin(stdin, args);
        Assert.True(code == exit, $"{what}: exit {code}, expected {exit}: {err}");
        Assert.Contains(field, err, StringComparison.Ordinal);
        Assert.Equal(before, fixture.Snapshot());
        Assert.False(Directory.Exists("/run/trellis/zz"), "a refused lab up must not build anything");
    }
}
