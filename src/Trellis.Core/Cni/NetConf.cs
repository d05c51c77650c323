using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Trellis.Core.Ipam;

namespace Trellis.Core.Cni;

/// <summary>The <c>ipam</c> section: host-local's keys, IPAM built in.</summary>
public sealed record IpamConf
{
    /// <summary>As given: null, "host-local" or "trellis-cni".</summary>
    public string? Type { get; init; }

    /// <summary>Merged as host-local does: runtimeConfig.ipRanges, then the legacy single range, then <c>ranges</c>.</summary>
    public required IReadOnlyList<RangeSet> Ranges { get; init; }

    public IReadOnlyList<CniRoute> Routes { get; init; } = [];

    public string DataDir { get; init; } = NetConf.DefaultDataDir;

    /// <summary>host-local's <c>resolvConf</c>: a file whose nameservers become the result's DNS. Passed through; Core reads no files.</summary>
    public string? ResolvConf { get; init; }
}

/// <summary><c>runtimeConfig</c> capabilities Trellis honours: <c>mac</c> (bridge) and <c>ips</c> (host-local).</summary>
public sealed record NetRuntimeConfig(string? Mac, IReadOnlyList<IPAddress> Ips)
{
    public static NetRuntimeConfig Empty { get; } = new(null, []);
}

/// <summary>One entry of GC's <c>cni.dev/valid-attachments</c>.</summary>
public readonly record struct GcAttachment(string ContainerId, string IfName);

/// <summary>
/// A validated trellis-cni network configuration: the reference <c>bridge</c> plugin's keys with
/// host-local's <c>ipam</c>. Parsing is pure; every error is a <see cref="CniException"/> naming the
/// field by path.
/// </summary>
public sealed partial record NetConf
{
    public const string DefaultBridge = "trellis0";
    public const string DefaultDataDir = "/var/lib/cni/networks";
    public const int DefaultMtu = 1500;

    public required string CniVersion { get; init; }

    public required string Name { get; init; }

    public required string Type { get; init; }

    public string Bridge { get; init; } = DefaultBridge;

    /// <summary>
    /// Give the bridge the gateway address. Default false, as in the reference bridge plugin, so a
    /// config moved over unchanged behaves the same; trellisd's generated config always sets it.
    /// Forced true by <see cref="IsDefaultGateway"/>, as the reference does.
    /// </summary>
    public bool IsGateway { get; init; }

    public bool IsDefaultGateway { get; init; }

    public bool ForceAddress { get; init; }

    public int Mtu { get; init; } = DefaultMtu;

    public bool HairpinMode { get; init; }

    public bool PromiscMode { get; init; }

    public required IpamConf Ipam { get; init; }

    public CniDns Dns { get; init; } = CniDns.Empty;

    public NetRuntimeConfig RuntimeConfig { get; init; } = NetRuntimeConfig.Empty;

    /// <summary><c>args.cni.ips</c> (host-local).</summary>
    public IReadOnlyList<IPAddress> ArgsIps { get; init; } = [];

    /// <summary><c>args.cni.mac</c> (bridge).</summary>
    public string? ArgsMac { get; init; }

    public CniResult? PrevResult { get; init; }

    /// <summary>GC only: the attachments still in use; everything else may be collected.</summary>
    public IReadOnlyList<GcAttachment>? ValidAttachments { get; init; }

    /// <summary>Top-level keys Trellis does not know. Plugins ignore unknown keys by convention; the caller may log them.</summary>
    public IReadOnlyList<string> UnknownKeys { get; init; } = [];

    /// <summary>
    /// Requested addresses in host-local's order (CNI_ARGS <c>IP=</c>, then <c>args.cni.ips</c>, then
    /// <c>runtimeConfig.ips</c>), duplicates removed. Hand them to <see cref="IpAllocator.AssignRequested"/>.
    /// </summary>
    public IReadOnlyList<IPAddress> RequestedIps(CniEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        var seen = new HashSet<IPAddress>();
        var result = new List<IPAddress>();
        foreach (var ip in env.Args.Ips.Concat(ArgsIps).Concat(RuntimeConfig.Ips))
        {
            if (seen.Add(ip))
            {
                result.Add(ip);
            }
        }
        return result;
    }

    /// <summary>The container MAC to set, as the reference bridge picks it: runtimeConfig.mac over args.cni.mac over CNI_ARGS MAC.</summary>
    public string? RequestedMac(CniEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        return RuntimeConfig.Mac ?? ArgsMac ?? env.Args.Mac;
    }

    public static NetConf Parse(ReadOnlySpan<byte> stdin, string command) => Parse(stdin, CniCommands.Parse(command));

    public static NetConf Parse(ReadOnlySpan<byte> stdin, CniCommand command)
    {
        if (command == CniCommand.Version)
        {
            throw new ArgumentException("VERSION takes no network configuration", nameof(command));
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(stdin.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new CniException(CniErrorCode.DecodeFailure, $"network configuration: not valid JSON: {Quote.Clean(e.Message)}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CniException(CniErrorCode.DecodeFailure, $"network configuration: expected a JSON object, got {ConfigObject.Describe(doc.RootElement)}");
            }
            return Build(ConfigObject.From(doc.RootElement, ""), command);
        }
    }
}
