using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Trellis.Core.Routing;
using Trellis.Model;

namespace Trellis.Core.Leases;

/// <summary>
/// A node's claim on one pod subnet of the cluster CIDR, as flannel's subnet manager keeps it in etcd
/// (<c>/coreos.com/network/subnets/10.244.1.0-24</c> → PublicIP + VtepMAC): who holds it, where its
/// pods are reached, and until when the claim holds unless renewed.
/// </summary>
/// <param name="VtepMac">The holder's VXLAN device MAC; null for host-gw nodes.</param>
/// <param name="Expires">After this instant the lease is free for any node to reclaim.</param>
public sealed record SubnetLease(IPNetwork Subnet, string NodeName, IPAddress NodeIp, MacAddress? VtepMac, DateTimeOffset Expires)
{
    /// <summary>Keys the store holds leases under; one key per subnet, so two nodes cannot create the same one.</summary>
    public const string KeyPrefix = "/trellis/leases/subnets/";

    public string Key => KeyFor(Subnet);

    public bool IsExpired(DateTimeOffset now) => now >= Expires;

    /// <summary><c>/trellis/leases/subnets/10.244.1.0-24</c>: the network address and prefix, '/' made '-' (flannel's MakeSubnetKey).</summary>
    public static string KeyFor(IPNetwork subnet) =>
        KeyPrefix + subnet.BaseAddress + "-" + subnet.PrefixLength.ToString(CultureInfo.InvariantCulture);

    /// <summary>The subnet a lease key names; false for anything else under the prefix (a foreign or mangled key).</summary>
    public static bool TryParseKey(string? key, out IPNetwork subnet)
    {
        subnet = default;
        if (key is null || !key.StartsWith(KeyPrefix, StringComparison.Ordinal))
        {
            return false;
        }
        var rest = key.AsSpan(KeyPrefix.Length);
        int dash = rest.LastIndexOf('-');
        if (dash <= 0)
        {
            return false;
        }
        string cidr = string.Concat(rest[..dash], "/", rest[(dash + 1)..]);
        if (!IPCidr.TryParse(cidr, out var parsed) || !parsed.Network.BaseAddress.Equals(parsed.Address))
        {
            return false;
        }
        subnet = parsed.Network;
        return KeyFor(subnet) == key; // canonical spelling only: one subnet, one key
    }

    /// <summary>
    /// The canonical stored form: fixed member order, no whitespace, expiry in UTC RFC 3339, so the
    /// same lease always gives the same bytes (and a no-op renewal compares equal).
    /// <c>{"subnet":"10.244.1.0/24","nodeName":"node-1","nodeIP":"172.30.0.11","vtepMAC":"0e:…","expires":"2025-01-02T03:04:05Z"}</c>
    /// </summary>
    public byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>(192);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("subnet", Subnet.ToString());
            w.WriteString("nodeName", NodeName);
            w.WriteString("nodeIP", NodeIp.ToString());
            if (VtepMac is { } mac)
            {
                w.WriteString("vtepMAC", mac.ToString());
            }
            w.WriteString("expires", FormatTime(Expires));
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Reads a stored lease. Store contents are untrusted (DESIGN §9): anything malformed is a
    /// <see cref="LeaseFormatException"/> naming the key and field, and the subnet in the value must
    /// be the one the key names. Unknown members are ignored, so newer agents may add some.
    /// </summary>
    public static SubnetLease Parse(string key, ReadOnlySpan<byte> json)
    {
        ArgumentNullException.ThrowIfNull(key);
        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8 });
            doc = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new LeaseFormatException(key, "(value)", "is not JSON: " + e.Message);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new LeaseFormatException(key, "(value)", $"is a JSON {root.ValueKind}, not an object");
            }
            string subnetText = RequiredString(key, root, "subnet");
            if (!IPCidr.TryParse(subnetText, out var cidr) || !cidr.Network.BaseAddress.Equals(cidr.Address))
            {
                throw new LeaseFormatException(key, "subnet", $"'{subnetText}' is not a network in CIDR notation");
            }
            var subnet = cidr.Network;
            if (TryParseKey(key, out var keySubnet) && keySubnet != subnet)
            {
                throw new LeaseFormatException(key, "subnet", $"{subnet} is not the subnet the key names ({keySubnet})");
            }
            string nodeName = RequiredString(key, root, "nodeName");
            if (nodeName.Length is 0 or > 253)
            {
                throw new LeaseFormatException(key, "nodeName", "must be 1-253 characters");
            }
            string ipText = RequiredString(key, root, "nodeIP");
            if (ipText.Contains('%', StringComparison.Ordinal) || !IPAddress.TryParse(ipText, out var nodeIp)
                || (nodeIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && ipText.Count(c => c == '.') != 3))
            {
                throw new LeaseFormatException(key, "nodeIP", $"'{ipText}' is not an IP address");
            }
            MacAddress? mac = null;
            if (root.TryGetProperty("vtepMAC", out var macElement) && macElement.ValueKind != JsonValueKind.Null)
            {
                if (macElement.ValueKind != JsonValueKind.String || !MacAddress.TryParse(macElement.GetString(), out var m))
                {
                    throw new LeaseFormatException(key, "vtepMAC", $"{macElement.GetRawText()} is not a MAC address");
                }
                mac = m;
            }
            string expiresText = RequiredString(key, root, "expires");
            if (!DateTimeOffset.TryParseExact(expiresText, "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal, out var expires) || !HasZone(expiresText))
            {
                throw new LeaseFormatException(key, "expires", $"'{expiresText}' is not an RFC 3339 time with a zone");
            }
            return new SubnetLease(subnet, nodeName, nodeIp, mac, expires.ToUniversalTime());
        }
    }

    private static bool HasZone(string text) =>
        text.EndsWith('Z') || text.EndsWith('z') || (text.Length > 6 && text[^6] is '+' or '-' && text[^3] == ':');

    private static string RequiredString(string key, JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            throw new LeaseFormatException(key, name, "is required");
        }
        if (e.ValueKind != JsonValueKind.String)
        {
            throw new LeaseFormatException(key, name, $"is a JSON {e.ValueKind}, not a string");
        }
        return e.GetString()!;
    }

    private static string FormatTime(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
}

/// <summary>A stored lease that cannot be read; names the key and the field.</summary>
public sealed class LeaseFormatException : FormatException
{
    public LeaseFormatException()
    {
        Key = "";
        Field = "";
    }

    public LeaseFormatException(string message)
        : base(message)
    {
        Key = "";
        Field = "";
    }

    public LeaseFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
        Key = "";
        Field = "";
    }

    public LeaseFormatException(string key, string field, string problem)
        : base($"lease {key}: {field}: {problem}")
    {
        Key = key;
        Field = field;
    }

    public string Key { get; }

    public string Field { get; }
}
