using System.Text.Json;
using System.Text.Json.Serialization;
using Trellis.Core.Lab;

namespace Trellis.Cli.Lab;

public sealed record LabStateNode(string Name, string Ip, string PodCidr, string Netns, string CniConfDir);

/// <summary>
/// /run/trellis/&lt;lab&gt;/lab.json: what a lab is made of, so every command can find its store
/// and `lab down` can remove exactly what `lab up` made (namespaces, processes, files).
/// </summary>
public sealed record LabState
{
    public required string Name { get; init; }
    public required string Store { get; init; }
    public required string Backend { get; init; }
    public required string UnderlayNetns { get; init; }
    public required string OutsideIp { get; init; }
    public required string Underlay { get; init; }
    public required string ServiceCidr { get; init; }
    public string ClusterCidr { get; init; } = "10.244.0.0/16";
    public int NodeSubnetLength { get; init; } = 24;
    public bool DirectRouting { get; init; }
    /// <summary>Service proxy options from lab.yaml's <c>proxy:</c> (kube-proxy's --masquerade-all, --nodeport-addresses).</summary>
    public bool MasqueradeAll { get; init; }
    public IReadOnlyList<string> NodePortAddresses { get; init; } = [];
    public required string DnsIp { get; init; }
    public required string Domain { get; init; }
    public required int PodMtu { get; init; }
    public required IReadOnlyList<LabStateNode> Nodes { get; init; }
    public IReadOnlyList<string> Files { get; init; } = [];
    /// <summary>The lab's own etcd members (`lab up --store etcd`); empty for sqlite or an external etcd URL.</summary>
    public IReadOnlyList<LabEtcdMember> EtcdMembers { get; init; } = [];
    public ProcRecord? Supervisor { get; init; }
    public DateTimeOffset CreatedAt { get; init; }

    public static string PathFor(string lab) => LabNames.StateFile(lab);

    public static LabState? Load(string lab)
    {
        string path = PathFor(lab);
        if (!File.Exists(path))
        {
            return null;
        }
        return JsonSerializer.Deserialize(File.ReadAllText(path), LabStateJson.Default.LabState);
    }

    public void Save()
    {
        string path = PathFor(Name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(this, LabStateJson.Default.LabState));
        File.Move(tmp, path, overwrite: true);
    }
}

/// <summary>Processes the supervisor runs, rewritten by it on every change: /run/trellis/&lt;lab&gt;/procs.json.</summary>
public sealed record LabProcs(IReadOnlyList<ProcRecord> Procs)
{
    public static string PathFor(string lab) => $"{LabNames.RunDir(lab)}/procs.json";

    public static LabProcs Load(string lab)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(PathFor(lab)), LabStateJson.Default.LabProcs) ?? new([]);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return new([]);
        }
    }

    public void Save(string lab)
    {
        string path = PathFor(lab);
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(this, LabStateJson.Default.LabProcs));
        File.Move(tmp, path, overwrite: true);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(LabState))]
[JsonSerializable(typeof(LabProcs))]
internal sealed partial class LabStateJson : JsonSerializerContext;
