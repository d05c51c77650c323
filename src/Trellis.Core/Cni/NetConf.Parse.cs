using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Trellis.Core.Ipam;
using Trellis.Model;

namespace Trellis.Core.Cni;

public sealed partial record NetConf
{
    private static readonly string[] s_knownKeys =
    [
        "cniVersion", "cniVersions", "name", "type", "bridge", "isGateway", "isDefaultGateway", "forceAddress",
        "ipMasq", "ipMasqBackend", "mtu", "hairpinMode", "promiscMode", "vlan", "vlanTrunk", "preserveDefaultVlan",
        "macspoofchk", "enabledad", "disableContainerInterface", "portIsolation", "ipam", "dns", "args",
        "runtimeConfig", "prevResult", "capabilities", "cni.dev/valid-attachments", "cni.dev/attachments",
    ];

    // Checks run in libcni's order (name, then version, then the command's version floor), then the
    // plugin's own fields, so the first error a user sees matches what the reference pair reports.
    private static NetConf Build(ConfigObject root, CniCommand command)
    {
        string name = root.OptString("name") ?? throw CniException.Invalid("name", "missing network name");
        string? why = CniNames.CheckIdentifier(name);
        if (why is not null)
        {
            throw CniException.Invalid("name", why);
        }

        string? version = root.OptString("cniVersion");
        CniVersions.EnsureSupported(version);
        CniVersions.EnsureCommandAllowed(command, version!);

        string type = root.ReqString("type");
        if (type.Length == 0 || type.AsSpan().IndexOfAny('/', '\\', '\0') >= 0)
        {
            throw CniException.Invalid("type", $"{Quote.Of(type)} must be a non-empty file name without '/' or '\\'");
        }

        string bridge = root.OptString("bridge") ?? DefaultBridge;
        why = CniNames.CheckInterfaceName(bridge);
        if (why is not null)
        {
            throw CniException.Invalid("bridge", why);
        }

        bool isDefaultGateway = root.OptBool("isDefaultGateway", false);
        bool isGateway = root.OptBool("isGateway", false) || isDefaultGateway;
        bool forceAddress = root.OptBool("forceAddress", false);
        bool hairpin = root.OptBool("hairpinMode", false);
        bool promisc = root.OptBool("promiscMode", false);
        if (hairpin && promisc)
        {
            // The reference bridge refuses this pair too: promiscuous mode on the bridge already
            // reflects frames back, hairpin on the port would duplicate them.
            throw CniException.Invalid("hairpinMode, promiscMode", "cannot both be true");
        }

        // mtu 0 is the reference's "unset"; the kernel's minimum for IPv4 is 68.
        int mtu = root.OptInt("mtu", 0, 65535) ?? 0;
        if (mtu == 0)
        {
            mtu = DefaultMtu;
        }
        else if (mtu < 68)
        {
            throw CniException.Invalid("mtu", $"{mtu} is below the IPv4 minimum of 68");
        }

        RefuseUnsupported(root);
        // Accepted keys with no effect here; read only so a wrong type is still reported.
        root.OptBool("preserveDefaultVlan", true);
        root.OptString("ipMasqBackend");
        if (root.Has("capabilities"))
        {
            root.OptObject("capabilities");
        }
        if (root.Has("cniVersions"))
        {
            root.OptStringArray("cniVersions");
        }

        var runtime = ParseRuntimeConfig(root, out var runtimeRanges);
        var (argsIps, argsMac) = ParseArgs(root);
        var ipam = ParseIpam(root, runtimeRanges);

        if (mtu < 1280 && ipam.Ranges.Any(s => s.Family == AddressFamily.InterNetworkV6))
        {
            throw CniException.Invalid("mtu", $"{mtu} is below the IPv6 minimum of 1280 and ipam has an IPv6 range");
        }

        var dnsObj = root.OptObject("dns");
        var dns = dnsObj is null ? CniDns.Empty : CniDns.Parse(dnsObj);

        CniResult? prev = root.TryGet("prevResult", out var prevElement)
            ? CniResult.Parse(prevElement, version!, "prevResult")
            : null;
        if (prev is null && command == CniCommand.Check)
        {
            throw CniException.Invalid("prevResult", "required for CHECK (the result of the preceding ADD)");
        }

        var attachments = ParseAttachments(root, command);

        return new NetConf
        {
            CniVersion = version!,
            Name = name,
            Type = type,
            Bridge = bridge,
            IsGateway = isGateway,
            IsDefaultGateway = isDefaultGateway,
            ForceAddress = forceAddress,
            Mtu = mtu,
            HairpinMode = hairpin,
            PromiscMode = promisc,
            Ipam = ipam,
            Dns = dns,
            RuntimeConfig = runtime,
            ArgsIps = argsIps,
            ArgsMac = argsMac,
            PrevResult = prev,
            ValidAttachments = attachments,
            UnknownKeys = root.Keys.Where(k => !s_knownKeys.Contains(k, StringComparer.OrdinalIgnoreCase)).ToArray(),
        };
    }

    /// <summary>
    /// Reference bridge features Trellis does not implement. Their "off" values are accepted so a
    /// config moved over from bridge keeps working; an "on" value is error 2, which the spec reserves
    /// for exactly this ("the error message must contain the key and value of the unsupported field").
    /// </summary>
    private static void RefuseUnsupported(ConfigObject root)
    {
        if (root.OptBool("ipMasq", false))
        {
            throw CniException.Unsupported("ipMasq", "true", "trellisd masquerades pod traffic on the node; set ipMasq to false or remove it");
        }
        if (root.OptInt("vlan", 0, 4094) is int vlan && vlan != 0)
        {
            throw CniException.Unsupported("vlan", vlan.ToString(System.Globalization.CultureInfo.InvariantCulture), "trellis-cni bridges untagged only");
        }
        if (root.OptArray("vlanTrunk") is { Count: > 0 })
        {
            throw CniException.Unsupported("vlanTrunk", "[…]", "trellis-cni bridges untagged only");
        }
        foreach (var key in (ReadOnlySpan<string>)["macspoofchk", "enabledad", "disableContainerInterface", "portIsolation"])
        {
            if (root.OptBool(key, false))
            {
                throw CniException.Unsupported(key, "true", "trellis-cni does not implement this bridge option");
            }
        }
    }

    private static IpamConf ParseIpam(ConfigObject root, List<SetSource> runtimeRanges)
    {
        var ipam = root.OptObject("ipam") ?? throw CniException.Invalid("ipam", "required field is missing");
        string? type = ipam.OptString("type");
        if (type is not (null or "host-local" or "trellis-cni"))
        {
            throw CniException.Invalid(ipam.Field("type"), $"{Quote.Of(type)}: IPAM is built in; omit ipam.type or set it to \"host-local\"");
        }

        // host-local's merge order: runtimeConfig.ipRanges first, then the legacy single range, then ranges.
        var setSources = new List<SetSource>(runtimeRanges);
        if (ipam.Has("subnet"))
        {
            setSources.Add(new SetSource([(ipam, ipam.Path)], ipam.Path));
        }
        else
        {
            foreach (var key in (ReadOnlySpan<string>)["rangeStart", "rangeEnd", "gateway"])
            {
                if (ipam.Has(key))
                {
                    throw CniException.Invalid(ipam.Field(key), $"needs {ipam.Field("subnet")} (the legacy single-range form) or belongs inside {ipam.Field("ranges")}");
                }
            }
        }

        var rangesField = ipam.Field("ranges");
        setSources.AddRange(ReadSets(ipam, "ranges"));

        if (setSources.Count == 0)
        {
            throw CniException.Invalid(rangesField, $"no IP ranges specified (give {rangesField} or {ipam.Field("subnet")})");
        }

        var sets = new List<RangeSet>();
        for (int i = 0; i < setSources.Count; i++)
        {
            var (ranges, path) = (setSources[i].Ranges, setSources[i].Path);
            if (ranges.Count == 0)
            {
                throw CniException.Invalid(path, "empty range set");
            }
            var parsed = ranges.Select(r => ParseRange(r.Obj, r.Path)).ToArray();
            var set = RangeSet.Validate(i, path, parsed, ranges.Select(r => r.Path).ToArray());
            foreach (var earlier in sets)
            {
                if (set.Overlaps(earlier))
                {
                    throw CniException.Invalid(path, $"range set {set} overlaps {earlier.Path} ({earlier})");
                }
            }
            sets.Add(set);
        }

        var routes = new List<CniRoute>();
        var routeItems = ipam.OptArray("routes") ?? [];
        for (int i = 0; i < routeItems.Count; i++)
        {
            routes.Add(CniResult.ParseRoute(ConfigObject.From(routeItems[i], ConfigObject.Index(ipam.Field("routes"), i)), requireNetwork: true));
        }

        string dataDir = ipam.OptString("dataDir") ?? DefaultDataDir;
        if (!dataDir.StartsWith('/') || dataDir.Contains('\0', StringComparison.Ordinal))
        {
            throw CniException.Invalid(ipam.Field("dataDir"), $"{Quote.Of(dataDir)} must be an absolute path");
        }

        string? resolvConf = ipam.OptString("resolvConf");
        if (resolvConf is not null && (resolvConf.Length == 0 || resolvConf.Contains('\0', StringComparison.Ordinal)))
        {
            throw CniException.Invalid(ipam.Field("resolvConf"), $"{Quote.Of(resolvConf)} is not a file path");
        }

        return new IpamConf { Type = type, Ranges = sets, Routes = routes, DataDir = dataDir, ResolvConf = resolvConf };
    }

    /// <summary>A range set as written: its range objects with their paths, before validation.</summary>
    private sealed record SetSource(IReadOnlyList<(ConfigObject Obj, string Path)> Ranges, string Path);

    private static List<SetSource> ReadSets(ConfigObject owner, string key)
    {
        var result = new List<SetSource>();
        string field = owner.Field(key);
        var sets = owner.OptArray(key) ?? [];
        for (int i = 0; i < sets.Count; i++)
        {
            string setPath = ConfigObject.Index(field, i);
            var items = ConfigObject.ReadArray(sets[i], setPath);
            var list = new List<(ConfigObject, string)>(items.Count);
            for (int j = 0; j < items.Count; j++)
            {
                string p = ConfigObject.Index(setPath, j);
                list.Add((ConfigObject.From(items[j], p), p));
            }
            result.Add(new SetSource(list, setPath));
        }
        return result;
    }

    private static IpRange ParseRange(ConfigObject r, string path)
    {
        string subnetField = ConfigObject.Join(path, "subnet");
        string subnetText = r.OptString("subnet") ?? throw CniException.Invalid(subnetField, "required field is missing");
        if (!IpText.TryParseCidr(subnetText, out var cidr))
        {
            throw CniException.Invalid(subnetField, $"{Quote.Of(subnetText)} is not a subnet in CIDR notation");
        }
        if (!cidr.Address.Equals(cidr.Network.BaseAddress))
        {
            throw CniException.Invalid(subnetField, $"{cidr} has host bits set (did you mean {cidr.Network}?)");
        }
        return IpRange.Create(cidr.Network, r.OptAddress("rangeStart"), r.OptAddress("rangeEnd"), r.OptAddress("gateway"), path);
    }

    private static NetRuntimeConfig ParseRuntimeConfig(ConfigObject root, out List<SetSource> ranges)
    {
        ranges = [];
        var rc = root.OptObject("runtimeConfig");
        if (rc is null)
        {
            return NetRuntimeConfig.Empty;
        }
        // host-local's ipRanges capability: whole range sets chosen by the runtime.
        ranges = ReadSets(rc, "ipRanges");
        string? mac = ReadMac(rc, "mac");
        var ips = ReadIpList(rc, "ips");
        return new NetRuntimeConfig(mac, ips);
    }

    private static (IReadOnlyList<IPAddress> Ips, string? Mac) ParseArgs(ConfigObject root)
    {
        // "args" may carry anything for other plugins; only args.cni.ips and args.cni.mac mean something here.
        var args = root.OptObject("args");
        var cni = args?.OptObject("cni");
        if (cni is null)
        {
            return ([], null);
        }
        return (ReadIpList(cni, "ips"), ReadMac(cni, "mac"));
    }

    private static string? ReadMac(ConfigObject o, string key)
    {
        string? text = o.OptString(key);
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }
        string? why = CniNames.CheckMac(text, out var mac);
        return why is null ? mac : throw CniException.Invalid(o.Field(key), why);
    }

    private static IPAddress[] ReadIpList(ConfigObject o, string key)
    {
        var items = o.OptStringArray(key) ?? [];
        var ips = new IPAddress[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            if (!IpText.TryParseAddressOrCidr(items[i], out ips[i]))
            {
                throw CniException.Invalid(ConfigObject.Index(o.Field(key), i), $"{Quote.Of(items[i])} is not an IP address");
            }
        }
        return ips;
    }

    private static List<GcAttachment>? ParseAttachments(ConfigObject root, CniCommand command)
    {
        // libcni writes both keys with the same value: "cni.dev/attachments" was the spelling of an
        // earlier draft (containernetworking/cni#1101). Prefer the spec's name.
        string key = root.Has("cni.dev/valid-attachments") ? "cni.dev/valid-attachments" : "cni.dev/attachments";
        var items = root.OptArray(key);
        if (items is null)
        {
            if (command == CniCommand.Gc)
            {
                // Treating "absent" as "empty" would collect every attachment on the node.
                throw CniException.Invalid("cni.dev/valid-attachments", "required for GC");
            }
            return null;
        }
        var list = new List<GcAttachment>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            var o = ConfigObject.From(items[i], ConfigObject.Index(key, i));
            string id = o.ReqString("containerID");
            string? why = CniNames.CheckIdentifier(id);
            if (why is not null)
            {
                throw CniException.Invalid(o.Field("containerID"), why);
            }
            string ifname = o.ReqString("ifname");
            why = CniNames.CheckInterfaceName(ifname);
            if (why is not null)
            {
                throw CniException.Invalid(o.Field("ifname"), why);
            }
            list.Add(new GcAttachment(id, ifname));
        }
        return list;
    }
}
