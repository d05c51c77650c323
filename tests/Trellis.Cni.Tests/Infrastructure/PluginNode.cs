using System.Text;
using System.Text.Json.Nodes;
using Trellis.CniClient;
using Trellis.Netlink;

namespace Trellis.Cni.Tests.Infrastructure;

/// <summary>
/// A throwaway "node": a netns in which trellis-cni is exec'd the way a runtime does it (the
/// exec happens on a thread that entered the node's netns, so no `ip netns exec` wrapper), an
/// IPAM data dir of its own, and helpers to make pod namespaces and inspect what was left behind.
/// </summary>
public sealed class PluginNode : IDisposable
{
    private readonly List<TestNetns> _pods = [];
    private readonly NetNs _nodeNs;

    public PluginNode(string subnet = "10.77.0.0/24", string bridge = "trl0")
    {
        Node = new TestNetns("node");
        _nodeNs = NetNs.Open(Node.Path);
        DataDir = Directory.CreateTempSubdirectory("trl-ipam-").FullName;
        Subnet = subnet;
        Bridge = bridge;
    }

    public TestNetns Node { get; }

    public string DataDir { get; }

    public string Subnet { get; }

    public string Bridge { get; }

    public string NetworkName { get; set; } = "testnet";

    public string StoreDir => Path.Combine(DataDir, NetworkName);

    public string Config(string version = "1.1.0", string extra = "") =>
        $$$"""{"cniVersion":"{{{version}}}","name":"{{{NetworkName}}}","type":"trellis-cni","bridge":"{{{Bridge}}}","isGateway":true,"mtu":1500,"hairpinMode":true{{{extra}}},"ipam":{"ranges":[[{"subnet":"{{{Subnet}}}"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"{{{DataDir}}}"}}""";

    public TestNetns NewPod()
    {
        var pod = new TestNetns("pod");
        lock (_pods)
        {
            _pods.Add(pod);
        }
        return pod;
    }

    /// <summary>Execs trellis-cni inside the node netns with exactly the given environment.</summary>
    public PluginExecution Exec(string command, string stdin, IReadOnlyDictionary<string, string?> env, string? plugin = null) =>
        _nodeNs.Run(() => ExecHere(plugin ?? Repo.CniPlugin, command, stdin, env));

    public PluginExecution Add(string containerId, TestNetns pod, string? config = null, string ifName = "eth0", string? args = null) =>
        Exec("ADD", config ?? Config(), Env(containerId, pod.Path, ifName, args));

    public PluginExecution Del(string containerId, TestNetns? pod, string? config = null, string ifName = "eth0") =>
        Exec("DEL", config ?? Config(), Env(containerId, pod?.Path, ifName));

    public static Dictionary<string, string?> Env(string? containerId, string? netns, string? ifName, string? args = null) => new()
    {
        ["CNI_CONTAINERID"] = containerId,
        ["CNI_NETNS"] = netns,
        ["CNI_IFNAME"] = ifName,
        ["CNI_ARGS"] = args,
        ["CNI_PATH"] = Repo.BinDir + ":" + Repo.ReferencePluginDir,
    };

    /// <summary>Runs on the calling thread, which must already be in the wanted netns.</summary>
    public static PluginExecution ExecHere(string plugin, string command, string stdin, IReadOnlyDictionary<string, string?> env)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(plugin)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // Exactly the variables given: a runtime's environment is all the plugin may rely on.
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        if (command.Length > 0)
        {
            psi.Environment["CNI_COMMAND"] = command;
        }
        foreach (var (k, v) in env)
        {
            if (v is not null)
            {
                psi.Environment[k] = v;
            }
        }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var p = System.Diagnostics.Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        try
        {
            p.StandardInput.BaseStream.Write(Encoding.UTF8.GetBytes(stdin));
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // exited before reading stdin
        }
        p.WaitForExit();
        return new PluginExecution(Path.GetFileName(plugin), command, p.ExitCode, o.Result, e.Result, sw.Elapsed);
    }

    /// <summary>Reserved IPs in the store (file names that parse as addresses).</summary>
    public IReadOnlyList<string> Reserved() => !Directory.Exists(StoreDir)
        ? []
        : Directory.EnumerateFiles(StoreDir).Select(Path.GetFileName).Where(n => System.Net.IPAddress.TryParse(n, out _)).Select(n => n!).ToList();

    /// <summary>Host-side links whose names trellis-cni gives to pod veths.</summary>
    public IReadOnlyList<string> HostVeths()
    {
        using var nl = RtNetlink.OpenIn(_nodeNs);
        return nl.LinkList().Where(l => l.Name.StartsWith("trl", StringComparison.Ordinal) && l.Kind == "veth").Select(l => l.Name).ToList();
    }

    /// <summary>
    /// Host veths once DEL's detached reapers are done: DEL takes the port down at once and the
    /// kernel's unregistration (an RCU barrier, ~20 ms) finishes shortly after.
    /// </summary>
    public IReadOnlyList<string> HostVethsSettled(int expected = 0)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        IReadOnlyList<string> veths;
        while ((veths = HostVeths()).Count != expected && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(20);
        }
        return veths;
    }

    public RtNetlink OpenNodeNetlink() => RtNetlink.OpenIn(_nodeNs);

    public static JsonObject ParseResult(PluginExecution exec)
    {
        if (exec.ExitCode != 0)
        {
            throw new InvalidOperationException($"{exec.Command} failed ({exec.ExitCode}): {exec.Stdout} {exec.Stderr}");
        }
        return (JsonObject)JsonNode.Parse(exec.Stdout)!;
    }

    public static string FirstIp(JsonObject result) => result["ips"]![0]!["address"]!.GetValue<string>().Split('/')[0];

    public void Dispose()
    {
        foreach (var p in _pods)
        {
            p.Dispose();
        }
        _nodeNs.Dispose();
        Node.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
