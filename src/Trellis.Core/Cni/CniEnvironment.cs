using System.Net;

namespace Trellis.Core.Cni;

/// <summary>
/// <c>CNI_ARGS</c>: "K=V;K=V". Parsed like libcni's <c>types.LoadArgs</c>: every pair must split on
/// '=' into exactly two parts, keys are case-sensitive, the last duplicate wins, and an unknown key
/// is an error unless <c>IgnoreUnknown</c> is 1/true (kubelet always sends <c>IgnoreUnknown=1</c>).
/// </summary>
public sealed record CniArgs
{
    public static CniArgs Empty { get; } = new();

    public bool IgnoreUnknown { get; init; }

    /// <summary><c>IP=</c>: one address, or several separated by commas (one per range set); "addr/len" is accepted as addr.</summary>
    public IReadOnlyList<IPAddress> Ips { get; init; } = [];

    /// <summary><c>MAC=</c>, validated unicast and normalised to lower-case colon form.</summary>
    public string? Mac { get; init; }

    public string? K8sPodName { get; init; }

    public string? K8sPodNamespace { get; init; }

    public string? K8sPodInfraContainerId { get; init; }

    public string? K8sPodUid { get; init; }

    /// <summary>Keys that were not recognised (kept only when IgnoreUnknown allowed them).</summary>
    public IReadOnlyList<string> UnknownKeys { get; init; } = [];

    public static CniArgs Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return Empty;
        }
        const string Var = "CNI_ARGS";
        var result = new CniArgs();
        var unknown = new List<string>();
        string? ignoreUnknown = null;
        foreach (var pair in text.Split(';'))
        {
            var kv = pair.Split('=');
            if (kv.Length != 2)
            {
                throw CniException.Env(Var, $"invalid pair {Quote.Of(pair)} (expected KEY=VALUE)");
            }
            string key = kv[0];
            string value = kv[1];
            switch (key)
            {
                case "IgnoreUnknown":
                    ignoreUnknown = value;
                    break;
                case "IP":
                    result = result with { Ips = ParseIps(value) };
                    break;
                case "MAC":
                    // libcni's UnmarshallableString: an empty value leaves the field unset.
                    if (value.Length == 0)
                    {
                        result = result with { Mac = null };
                        break;
                    }
                    string? why = CniNames.CheckMac(value, out var mac);
                    result = why is null ? result with { Mac = mac } : throw CniException.Env(Var, $"MAC: {why}");
                    break;
                case "K8S_POD_NAME":
                    result = result with { K8sPodName = value };
                    break;
                case "K8S_POD_NAMESPACE":
                    result = result with { K8sPodNamespace = value };
                    break;
                case "K8S_POD_INFRA_CONTAINER_ID":
                    result = result with { K8sPodInfraContainerId = value };
                    break;
                case "K8S_POD_UID":
                    result = result with { K8sPodUid = value };
                    break;
                default:
                    unknown.Add(key);
                    break;
            }
        }

        bool ignore = false;
        if (ignoreUnknown is not null)
        {
            // libcni's UnmarshallableBool: "1"/"true"/"0"/"false", case-insensitive; anything else errors.
            ignore = ignoreUnknown.ToUpperInvariant() switch
            {
                "1" or "TRUE" => true,
                "0" or "FALSE" => false,
                _ => throw CniException.Env(Var, $"IgnoreUnknown: {Quote.Of(ignoreUnknown)} is not 1, true, 0 or false"),
            };
        }
        if (unknown.Count > 0 && !ignore)
        {
            throw CniException.Env(Var, $"unknown keys {string.Join(", ", unknown.Select(Quote.Of))} (add IgnoreUnknown=1 to allow them)");
        }
        return result with { IgnoreUnknown = ignore, UnknownKeys = unknown };
    }

    private static IPAddress[] ParseIps(string value)
    {
        var parts = value.Split(',');
        var ips = new IPAddress[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!IpText.TryParseAddressOrCidr(parts[i], out ips[i]))
            {
                throw CniException.Env("CNI_ARGS", $"IP: {Quote.Of(parts[i])} is not an IP address");
            }
        }
        return ips;
    }
}

/// <summary>
/// The CNI_* variables, validated as the spec and libcni's skel require. Requirements per command
/// (SPEC.md 1.1.0 section 2): ADD and CHECK need CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME; DEL needs
/// CNI_CONTAINERID and CNI_IFNAME (CNI_NETNS optional: the namespace may be gone); STATUS, GC and
/// VERSION need none of them and their values are not looked at. CNI_PATH is optional everywhere:
/// the spec lists it as optional and Trellis delegates to no other plugin (libcni's skel insists on
/// it, which only matters for plugins that exec IPAM plugins). Errors are code 4 naming the variable.
/// </summary>
public sealed record CniEnvironment
{
    public required CniCommand Command { get; init; }

    public string? ContainerId { get; init; }

    public string? NetNs { get; init; }

    public string? IfName { get; init; }

    public CniArgs Args { get; init; } = CniArgs.Empty;

    public IReadOnlyList<string> Path { get; init; } = [];

    public static CniEnvironment Parse(Func<string, string?> getEnv)
    {
        ArgumentNullException.ThrowIfNull(getEnv);
        var command = CniCommands.Parse(getEnv("CNI_COMMAND"));
        var path = (getEnv("CNI_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
        if (command is CniCommand.Status or CniCommand.Gc or CniCommand.Version)
        {
            return new CniEnvironment { Command = command, Path = path };
        }

        bool needsNetns = command is CniCommand.Add or CniCommand.Check;
        var missing = new List<string>();
        string? containerId = Get(getEnv, "CNI_CONTAINERID", missing);
        string? netns = needsNetns ? Get(getEnv, "CNI_NETNS", missing) : NullIfEmpty(getEnv("CNI_NETNS"));
        string? ifName = Get(getEnv, "CNI_IFNAME", missing);
        if (missing.Count > 0)
        {
            throw CniException.Env(string.Join(", ", missing), $"required for {command.ToWire()} but not set");
        }

        string? why = CniNames.CheckIdentifier(containerId!);
        if (why is not null)
        {
            throw CniException.Env("CNI_CONTAINERID", why);
        }
        why = CniNames.CheckInterfaceName(ifName!);
        if (why is not null)
        {
            throw CniException.Env("CNI_IFNAME", why);
        }
        if (netns is not null && netns.Contains('\0', StringComparison.Ordinal))
        {
            throw CniException.Env("CNI_NETNS", $"{Quote.Of(netns)} contains a NUL character");
        }

        return new CniEnvironment
        {
            Command = command,
            ContainerId = containerId,
            NetNs = netns,
            IfName = ifName,
            Args = CniArgs.Parse(getEnv("CNI_ARGS")),
            Path = path,
        };
    }

    private static string? Get(Func<string, string?> getEnv, string name, List<string> missing)
    {
        string? v = NullIfEmpty(getEnv(name));
        if (v is null)
        {
            missing.Add(name);
        }
        return v;
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
