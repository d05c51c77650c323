using System.Net;
using System.Text.Json;
using Trellis.Model;

namespace Trellis.Core.Cni;

/// <summary>An entry of a result's <c>interfaces</c>. Mtu, SocketPath and PciId exist from spec 1.1.0.</summary>
public sealed record CniInterface(string Name, string? Mac = null, string? Sandbox = null, int? Mtu = null, string? SocketPath = null, string? PciId = null);

/// <summary>An entry of <c>ips</c>; <see cref="Interface"/> indexes <c>interfaces</c>.</summary>
public sealed record CniIpConfig(IPCidr Address, IPAddress? Gateway = null, int? Interface = null);

/// <summary>A route; everything after <see cref="Gw"/> exists from spec 1.1.0.</summary>
public sealed record CniRoute(IPCidr Dst, IPAddress? Gw = null, int? Mtu = null, int? AdvMss = null, int? Priority = null, int? Table = null, int? Scope = null);

/// <summary>The spec's DNS dictionary; every part optional.</summary>
public sealed record CniDns(IReadOnlyList<string> Nameservers, string? Domain, IReadOnlyList<string> Search, IReadOnlyList<string> Options)
{
    public static CniDns Empty { get; } = new([], null, [], []);

    public bool IsEmpty => Nameservers.Count == 0 && string.IsNullOrEmpty(Domain) && Search.Count == 0 && Options.Count == 0;

    internal static CniDns Parse(ConfigObject o)
    {
        var servers = o.OptStringArray("nameservers") ?? [];
        for (int i = 0; i < servers.Count; i++)
        {
            if (!IpText.TryParseAddress(servers[i], out _))
            {
                throw CniException.Invalid(ConfigObject.Index(o.Field("nameservers"), i), $"{Quote.Of(servers[i])} is not an IP address");
            }
        }
        return new CniDns(servers, o.OptString("domain"), o.OptStringArray("search") ?? [], o.OptStringArray("options") ?? []);
    }

    internal void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject("dns");
        WriteList(w, "nameservers", Nameservers);
        if (!string.IsNullOrEmpty(Domain))
        {
            w.WriteString("domain", Domain);
        }
        WriteList(w, "search", Search);
        WriteList(w, "options", Options);
        w.WriteEndObject();
    }

    private static void WriteList(Utf8JsonWriter w, string name, IReadOnlyList<string> items)
    {
        if (items.Count == 0)
        {
            return;
        }
        w.WriteStartArray(name);
        foreach (var s in items)
        {
            w.WriteStringValue(s);
        }
        w.WriteEndArray();
    }
}

/// <summary>
/// The ADD result, in any supported version. Parsing accepts the union of the versions' fields;
/// writing emits exactly the requested version's shape: 0.3.x/0.4.0 carry <c>ips[].version</c>
/// ("4"/"6"), 1.0.0 drops it (SPEC.md 1.0.0 table: "removed `version` field"), and only 1.1.0
/// carries interface mtu/socketPath/pciID and route mtu/advmss/priority/table/scope. Empty lists
/// and an empty dns are omitted, as libcni's omitempty does.
/// </summary>
public sealed record CniResult
{
    public IReadOnlyList<CniInterface> Interfaces { get; init; } = [];

    public IReadOnlyList<CniIpConfig> Ips { get; init; } = [];

    public IReadOnlyList<CniRoute> Routes { get; init; } = [];

    public CniDns Dns { get; init; } = CniDns.Empty;

    /// <summary>
    /// Reads a result (typically <c>prevResult</c>) written in <paramref name="version"/>. For versions
    /// before 1.0.0 an <c>ips[].version</c> may be absent (libcni never checks it) but, when present,
    /// must be "4" or "6" and match the address; 1.0.0+ ignore it, as libcni's decoder does.
    /// Errors are code 7 naming <paramref name="path"/>.
    /// </summary>
    public static CniResult Parse(JsonElement element, string version, string path = "prevResult")
    {
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(path);
        bool legacy = CniVersion.TryParse(version, out var v) && v < new CniVersion(1, 0, 0);
        var o = ConfigObject.From(element, path);

        var interfaces = new List<CniInterface>();
        var ifaceItems = o.OptArray("interfaces") ?? [];
        for (int i = 0; i < ifaceItems.Count; i++)
        {
            var io = ConfigObject.From(ifaceItems[i], ConfigObject.Index(o.Field("interfaces"), i));
            interfaces.Add(new CniInterface(
                io.ReqString("name"),
                NullIfEmpty(io.OptString("mac")),
                NullIfEmpty(io.OptString("sandbox")),
                io.OptInt("mtu", 0, 65535) is int m && m != 0 ? m : null,
                NullIfEmpty(io.OptString("socketPath")),
                NullIfEmpty(io.OptString("pciID"))));
        }

        var ips = new List<CniIpConfig>();
        var ipItems = o.OptArray("ips") ?? [];
        for (int i = 0; i < ipItems.Count; i++)
        {
            var io = ConfigObject.From(ipItems[i], ConfigObject.Index(o.Field("ips"), i));
            var address = io.OptCidr("address") ?? throw CniException.Invalid(io.Field("address"), "required field is missing");
            var gateway = io.OptAddress("gateway");
            if (gateway is not null && gateway.AddressFamily != address.Family)
            {
                throw CniException.Invalid(io.Field("gateway"), $"{gateway} is not the same address family as {address}");
            }
            int? iface = io.OptInt("interface", 0, int.MaxValue);
            if (iface is int ix && ix >= interfaces.Count)
            {
                throw CniException.Invalid(io.Field("interface"), $"{ix} does not index the {interfaces.Count} entries of {o.Field("interfaces")}");
            }
            if (legacy)
            {
                string? fam = io.OptString("version");
                string expected = address.IsIPv4 ? "4" : "6";
                if (fam is not null && fam != expected)
                {
                    throw CniException.Invalid(io.Field("version"), $"{Quote.Of(fam)} does not match address {address} (expected \"{expected}\")");
                }
            }
            ips.Add(new CniIpConfig(address, gateway, iface));
        }

        var routes = new List<CniRoute>();
        var routeItems = o.OptArray("routes") ?? [];
        for (int i = 0; i < routeItems.Count; i++)
        {
            routes.Add(ParseRoute(ConfigObject.From(routeItems[i], ConfigObject.Index(o.Field("routes"), i)), requireNetwork: false));
        }

        var dnsObj = o.OptObject("dns");
        return new CniResult
        {
            Interfaces = interfaces,
            Ips = ips,
            Routes = routes,
            Dns = dnsObj is null ? CniDns.Empty : CniDns.Parse(dnsObj),
        };
    }

    /// <summary>Writes the result as <paramref name="version"/> requires (error 1 for a version Trellis does not speak).</summary>
    public void WriteJson(Utf8JsonWriter writer, string version)
    {
        ArgumentNullException.ThrowIfNull(writer);
        CniVersions.EnsureSupported(version);
        bool v1 = CniVersions.AtLeast(version, "1.0.0");
        bool v11 = CniVersions.AtLeast(version, "1.1.0");

        writer.WriteStartObject();
        writer.WriteString("cniVersion", version);
        if (Interfaces.Count > 0)
        {
            writer.WriteStartArray("interfaces");
            foreach (var i in Interfaces)
            {
                writer.WriteStartObject();
                writer.WriteString("name", i.Name);
                WriteOpt(writer, "mac", i.Mac);
                if (v11 && i.Mtu is int mtu)
                {
                    writer.WriteNumber("mtu", mtu);
                }
                WriteOpt(writer, "sandbox", i.Sandbox);
                if (v11)
                {
                    WriteOpt(writer, "socketPath", i.SocketPath);
                    WriteOpt(writer, "pciID", i.PciId);
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        if (Ips.Count > 0)
        {
            writer.WriteStartArray("ips");
            foreach (var ip in Ips)
            {
                writer.WriteStartObject();
                if (!v1)
                {
                    writer.WriteString("version", ip.Address.IsIPv4 ? "4" : "6");
                }
                writer.WriteString("address", ip.Address.ToString());
                if (ip.Gateway is not null)
                {
                    writer.WriteString("gateway", ip.Gateway.ToString());
                }
                if (ip.Interface is int ix)
                {
                    writer.WriteNumber("interface", ix);
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        if (Routes.Count > 0)
        {
            writer.WriteStartArray("routes");
            foreach (var r in Routes)
            {
                writer.WriteStartObject();
                writer.WriteString("dst", r.Dst.ToString());
                if (r.Gw is not null)
                {
                    writer.WriteString("gw", r.Gw.ToString());
                }
                if (v11)
                {
                    WriteOpt(writer, "mtu", r.Mtu);
                    WriteOpt(writer, "advmss", r.AdvMss);
                    WriteOpt(writer, "priority", r.Priority);
                    WriteOpt(writer, "table", r.Table);
                    WriteOpt(writer, "scope", r.Scope);
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        if (!Dns.IsEmpty)
        {
            Dns.Write(writer);
        }
        writer.WriteEndObject();
        writer.Flush();
    }

    /// <summary>
    /// A route from a config (<paramref name="requireNetwork"/>: dst without host bits, which the kernel
    /// would refuse anyway) or from a result (host bits tolerated, as libcni's types.IPNet keeps them).
    /// </summary>
    internal static CniRoute ParseRoute(ConfigObject o, bool requireNetwork)
    {
        var dst = o.OptCidr("dst") ?? throw CniException.Invalid(o.Field("dst"), "required field is missing");
        if (requireNetwork && !dst.Address.Equals(dst.Network.BaseAddress))
        {
            throw CniException.Invalid(o.Field("dst"), $"{dst} has host bits set (did you mean {dst.Network}?)");
        }
        var gw = o.OptAddress("gw");
        if (gw is not null && gw.AddressFamily != dst.Family)
        {
            throw CniException.Invalid(o.Field("gw"), $"{gw} is not the same address family as dst {dst}");
        }
        return new CniRoute(
            dst,
            gw,
            ZeroIsNull(o.OptInt("mtu", 0, 65535)),
            ZeroIsNull(o.OptInt("advmss", 0, 65535)),
            ZeroIsNull(o.OptInt("priority", 0, int.MaxValue)),
            o.OptInt("table", 0, int.MaxValue),
            o.OptInt("scope", 0, 255));
    }

    // libcni marshals mtu/advmss/priority with omitempty on plain ints, so 0 means "unset".
    private static int? ZeroIsNull(int? v) => v == 0 ? null : v;

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static void WriteOpt(Utf8JsonWriter w, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            w.WriteString(name, value);
        }
    }

    private static void WriteOpt(Utf8JsonWriter w, string name, int? value)
    {
        if (value is int v)
        {
            w.WriteNumber(name, v);
        }
    }
}
