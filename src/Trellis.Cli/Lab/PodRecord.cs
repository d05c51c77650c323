using System.Text.Json;
using System.Text.Json.Serialization;

namespace Trellis.Cli.Lab;

/// <summary>
/// What a kubelet started for one pod, on disk (/run/trellis/&lt;lab&gt;/kubelet/&lt;node&gt;/&lt;uid&gt;.json)
/// so that a restarted kubelet re-adopts running pods instead of restarting them, and so
/// `lab down` can stop their processes by recorded PID and start time.
/// </summary>
public sealed record PodRecord
{
    public required string Uid { get; init; }
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public required string Netns { get; init; }
    public string? PodIp { get; init; }
    public IReadOnlyList<ProcRecord> Containers { get; init; } = [];

    public static string Dir(string lab, string node) => $"/run/trellis/{lab}/kubelet/{node}";

    public static IEnumerable<PodRecord> LoadAll(string lab, string node)
    {
        string dir = Dir(lab, node);
        if (!Directory.Exists(dir))
        {
            yield break;
        }
        foreach (var f in Directory.EnumerateFiles(dir, "*.json"))
        {
            PodRecord? r = null;
            try
            {
                r = JsonSerializer.Deserialize(File.ReadAllText(f), PodRecordJson.Default.PodRecord);
            }
            catch (JsonException)
            {
                // A torn record (written atomically, so only by hand): skip it.
            }
            if (r is not null)
            {
                yield return r;
            }
        }
    }

    public void Save(string lab, string node)
    {
        string dir = Dir(lab, node);
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, Uid + ".json");
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(this, PodRecordJson.Default.PodRecord));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    public void Delete(string lab, string node) => File.Delete(Path.Combine(Dir(lab, node), Uid + ".json"));
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(PodRecord))]
internal sealed partial class PodRecordJson : JsonSerializerContext;
