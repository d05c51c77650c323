using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Trellis.CniClient;

/// <summary>What a runtime knows about one attachment: the container, its netns, the interface and its arguments.</summary>
public sealed record CniRuntimeConf(string ContainerId, string? NetNs, string IfName)
{
    /// <summary>CNI_ARGS pairs (e.g. IP, K8S_POD_NAME).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Args { get; init; } = [];

    /// <summary>Capability arguments ("portMappings", "bandwidth", "mac", "ips", …), handed to plugins that declare them.</summary>
    public IReadOnlyDictionary<string, JsonNode?> CapabilityArgs { get; init; } = new Dictionary<string, JsonNode?>();
}

/// <summary>The raw outcome of one plugin execution.</summary>
public sealed record PluginExecution(string Plugin, string Command, int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed);

/// <summary>
/// A CNI runtime in the manner of libcni: runs a configuration list's plugins in order for ADD
/// (each receiving the previous result), in reverse for DEL, caches the final result for later
/// DEL and CHECK, and honours the list's cniVersions, disableCheck and disableGC fields.
/// Plugins are exec'd from the calling thread, so they inherit its network namespace: callers
/// that act for a node call this from a thread that has entered the node's netns.
/// </summary>
public sealed class CniInvoker
{
    private readonly IReadOnlyList<string> _pluginDirs;
    private readonly string? _cacheDir;

    public CniInvoker(IReadOnlyList<string> pluginDirs, string? cacheDir = null)
    {
        _pluginDirs = pluginDirs;
        _cacheDir = cacheDir;
    }

    /// <summary>Observes every plugin execution (benchmarks, logs).</summary>
    public Action<PluginExecution>? OnExec { get; set; }

    public JsonObject Add(CniConfigList list, CniRuntimeConf rt)
    {
        ArgumentNullException.ThrowIfNull(list);
        ArgumentNullException.ThrowIfNull(rt);
        JsonNode? prev = null;
        for (int i = 0; i < list.Plugins.Count; i++)
        {
            try
            {
                prev = Invoke(list, list.Plugins[i], "ADD", rt, prev);
            }
            catch (CniClientException)
            {
                // A failed ADD is cleaned up by DEL of the whole list, as libcni's callers (kubelet, containerd) do.
                TryDel(list, rt, prev);
                throw;
            }
        }
        var result = prev as JsonObject ?? new JsonObject { ["cniVersion"] = list.CniVersion };
        WriteCache(list, rt, result);
        return result;
    }

    public void Del(CniConfigList list, CniRuntimeConf rt)
    {
        ArgumentNullException.ThrowIfNull(list);
        ArgumentNullException.ThrowIfNull(rt);
        JsonNode? cached = ReadCache(list, rt);
        // prevResult on DEL arrived with spec 0.4.0.
        JsonNode? prev = CniConfigList.CompareVersions(list.CniVersion, "0.4.0") >= 0 ? cached : null;
        for (int i = list.Plugins.Count - 1; i >= 0; i--)
        {
            Invoke(list, list.Plugins[i], "DEL", rt, prev?.DeepClone());
        }
        DeleteCache(list, rt);
    }

    public void Check(CniConfigList list, CniRuntimeConf rt)
    {
        ArgumentNullException.ThrowIfNull(list);
        ArgumentNullException.ThrowIfNull(rt);
        if (list.DisableCheck || CniConfigList.CompareVersions(list.CniVersion, "0.4.0") < 0)
        {
            return;
        }
        JsonNode prev = ReadCache(list, rt) ?? throw new CniClientException($"CHECK {list.Name} {rt.ContainerId}/{rt.IfName}: no cached result");
        foreach (var plugin in list.Plugins)
        {
            Invoke(list, plugin, "CHECK", rt, prev.DeepClone());
        }
    }

    /// <summary>GC: every plugin learns which attachments are still valid and may release the rest.</summary>
    public void Gc(CniConfigList list, IEnumerable<(string ContainerId, string IfName)> validAttachments)
    {
        ArgumentNullException.ThrowIfNull(list);
        ArgumentNullException.ThrowIfNull(validAttachments);
        if (list.DisableGC || CniConfigList.CompareVersions(list.CniVersion, "1.1.0") < 0)
        {
            return;
        }
        var valid = new JsonArray();
        foreach (var (cid, ifn) in validAttachments)
        {
            valid.Add((JsonNode)new JsonObject { ["containerID"] = cid, ["ifname"] = ifn });
        }
        foreach (var plugin in list.Plugins)
        {
            var conf = PluginConf(list, plugin, null, null);
            conf["cni.dev/valid-attachments"] = valid.DeepClone();
            Run(plugin, "GC", conf, env: []);
        }
    }

    /// <summary>STATUS of every plugin; throws with the plugin's error code (50/51) when one is not ready.</summary>
    public void Status(CniConfigList list)
    {
        ArgumentNullException.ThrowIfNull(list);
        if (CniConfigList.CompareVersions(list.CniVersion, "1.1.0") < 0)
        {
            return;
        }
        foreach (var plugin in list.Plugins)
        {
            Run(plugin, "STATUS", PluginConf(list, plugin, null, null), env: []);
        }
    }

    private JsonNode? Invoke(CniConfigList list, JsonObject plugin, string command, CniRuntimeConf rt, JsonNode? prev)
    {
        var conf = PluginConf(list, plugin, rt, prev);
        var env = new List<KeyValuePair<string, string>>
        {
            new("CNI_CONTAINERID", rt.ContainerId),
            new("CNI_NETNS", rt.NetNs ?? ""),
            new("CNI_IFNAME", rt.IfName),
            new("CNI_ARGS", string.Join(';', rt.Args.Select(a => a.Key + "=" + a.Value))),
        };
        string stdout = Run(plugin, command, conf, env);
        if (command != "ADD")
        {
            return prev;
        }
        try
        {
            return string.IsNullOrWhiteSpace(stdout) ? prev : JsonNode.Parse(stdout);
        }
        catch (JsonException e)
        {
            throw new CniClientException($"{command} {PluginType(plugin)}: result is not JSON: {e.Message}") { Plugin = PluginType(plugin) };
        }
    }

    private static JsonObject PluginConf(CniConfigList list, JsonObject plugin, CniRuntimeConf? rt, JsonNode? prev)
    {
        var conf = (JsonObject)plugin.DeepClone();
        conf["name"] = list.Name;
        conf["cniVersion"] = list.CniVersion;
        if (prev is not null)
        {
            conf["prevResult"] = prev.DeepClone();
        }
        // Only the capabilities a plugin declares reach it, in runtimeConfig (SPEC "Deriving runtimeConfig").
        if (rt is not null && plugin["capabilities"] is JsonObject caps)
        {
            var runtimeConfig = new JsonObject();
            foreach (var (cap, enabled) in caps)
            {
                if (enabled is JsonValue ev && ev.TryGetValue(out bool on) && on && rt.CapabilityArgs.TryGetValue(cap, out var value))
                {
                    runtimeConfig[cap] = value?.DeepClone();
                }
            }
            if (runtimeConfig.Count > 0)
            {
                conf["runtimeConfig"] = runtimeConfig;
            }
        }
        return conf;
    }

    private string Run(JsonObject plugin, string command, JsonObject conf, List<KeyValuePair<string, string>> env)
    {
        string type = PluginType(plugin);
        var exec = Exec(type, command, Encoding.UTF8.GetBytes(conf.ToJsonString()), env);
        if (exec.ExitCode != 0)
        {
            int? code = null;
            string msg = exec.Stdout.Trim();
            try
            {
                if (JsonNode.Parse(exec.Stdout) is JsonObject err)
                {
                    code = err["code"] is JsonValue c && c.TryGetValue(out int ci) ? ci : null;
                    msg = $"{err["msg"]}" + (err["details"] is JsonNode d ? $" ({d})" : "");
                }
            }
            catch (JsonException)
            {
                // Not the spec's error object: report the raw output.
            }
            if (msg.Length == 0)
            {
                msg = exec.Stderr.Trim();
            }
            throw new CniClientException($"{command} {type}: {msg}") { Code = code, Plugin = type };
        }
        return exec.Stdout;
    }

    /// <summary>Execs one plugin binary with the CNI environment and stdin, as a runtime does.</summary>
    public PluginExecution Exec(string type, string command, byte[] stdin, IEnumerable<KeyValuePair<string, string>> env)
    {
        ArgumentNullException.ThrowIfNull(env);
        string path = FindPlugin(type);
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["CNI_COMMAND"] = command;
        psi.Environment["CNI_PATH"] = string.Join(':', _pluginDirs);
        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new CniClientException($"{command} {type}: could not start {path}");
        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        var stderrTask = p.StandardError.ReadToEndAsync();
        try
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // The plugin exited without reading stdin (e.g. VERSION or an env error); its answer still counts.
        }
        p.WaitForExit();
        var exec = new PluginExecution(type, command, p.ExitCode, stdoutTask.GetAwaiter().GetResult(), stderrTask.GetAwaiter().GetResult(), sw.Elapsed);
        OnExec?.Invoke(exec);
        return exec;
    }

    private string FindPlugin(string type)
    {
        if (type.Contains('/', StringComparison.Ordinal) || type is "." or "..")
        {
            throw new CniClientException($"plugin type '{type}' is not a plain name");
        }
        foreach (string dir in _pluginDirs)
        {
            string candidate = Path.Combine(dir, type);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new CniClientException($"plugin '{type}' not found in {string.Join(':', _pluginDirs)}") { Plugin = type };
    }

    private static string PluginType(JsonObject plugin) => plugin["type"]!.GetValue<string>();

    private void TryDel(CniConfigList list, CniRuntimeConf rt, JsonNode? prev)
    {
        try
        {
            for (int i = list.Plugins.Count - 1; i >= 0; i--)
            {
                Invoke(list, list.Plugins[i], "DEL", rt, prev?.DeepClone());
            }
        }
        catch (CniClientException)
        {
            // Best effort: the ADD error is the one to report; GC collects what DEL could not.
        }
    }

    private string? CachePath(CniConfigList list, CniRuntimeConf rt) =>
        _cacheDir is null ? null : Path.Combine(_cacheDir, "results", $"{list.Name}-{rt.ContainerId}-{rt.IfName}");

    private void WriteCache(CniConfigList list, CniRuntimeConf rt, JsonObject result)
    {
        string? path = CachePath(list, rt);
        if (path is null)
        {
            return;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var entry = new JsonObject
        {
            ["kind"] = "cniCacheV1",
            ["containerId"] = rt.ContainerId,
            ["ifName"] = rt.IfName,
            ["networkName"] = list.Name,
            ["result"] = result.DeepClone(),
        };
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, entry.ToJsonString());
        File.Move(tmp, path, overwrite: true);
    }

    private JsonNode? ReadCache(CniConfigList list, CniRuntimeConf rt)
    {
        string? path = CachePath(list, rt);
        if (path is null || !File.Exists(path))
        {
            return null;
        }
        try
        {
            return JsonNode.Parse(File.ReadAllText(path))?["result"]?.DeepClone();
        }
        catch (JsonException)
        {
            return null; // a torn cache entry must not block DEL
        }
    }

    private void DeleteCache(CniConfigList list, CniRuntimeConf rt)
    {
        string? path = CachePath(list, rt);
        if (path is not null && File.Exists(path))
        {
            File.Delete(path);
        }
    }
}
