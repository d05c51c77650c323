using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

public static partial class ObjectValidator
{
    private static readonly string[] s_addressTypes = ["FQDN", "IPv4", "IPv6"];
    private const int MaxEndpoints = 1000;
    private const int MaxAddresses = 100;
    private const int MaxEndpointPorts = 20000;

    private static void ValidateEndpointSlice(JsonObject obj, FieldChecker c)
    {
        string? addressType = c.String(obj, "addressType", "addressType");
        c.OneOf(addressType, "addressType", s_addressTypes, required: true);
        var endpoints = c.Items(obj, "endpoints", "endpoints");
        if (endpoints.Count > MaxEndpoints)
        {
            c.Add(FieldError.TooMany("endpoints", endpoints.Count, MaxEndpoints));
        }
        else
        {
            foreach (var (ep, path) in endpoints)
            {
                ValidateEndpoint(ep, path, addressType, c);
            }
        }
        var ports = c.Items(obj, "ports", "ports");
        if (ports.Count > MaxEndpointPorts)
        {
            c.Add(FieldError.TooMany("ports", ports.Count, MaxEndpointPorts));
            return;
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (port, pp) in ports)
        {
            string name = c.String(port, "name", pp + ".name") ?? "";
            if (name.Length > 0)
            {
                c.Messages(pp + ".name", name, NameRules.IsDns1123Label(name));
            }
            if (!names.Add(name))
            {
                c.Add(FieldError.Duplicate(pp + ".name", name));
            }
            c.OneOf(c.String(port, "protocol", pp + ".protocol"), pp + ".protocol", Protocols);
            if (c.Integer(port, "port", pp + ".port") is { } number)
            {
                c.Messages(pp + ".port", number, NameRules.IsValidPortNum(number));
            }
            if (c.String(port, "appProtocol", pp + ".appProtocol") is { } appProtocol)
            {
                c.Messages(pp + ".appProtocol", appProtocol, NameRules.IsQualifiedName(appProtocol));
            }
        }
    }

    private static void ValidateEndpoint(JsonObject ep, string path, string? addressType, FieldChecker c)
    {
        string addrPath = path + ".addresses";
        var addresses = c.Strings(ep, "addresses", addrPath) ?? [];
        if (addresses.Count == 0 && ep.Get("addresses") is null or JsonArray)
        {
            c.Add(FieldError.Required(addrPath, "must contain at least 1 address"));
        }
        else if (addresses.Count > MaxAddresses)
        {
            c.Add(FieldError.TooMany(addrPath, addresses.Count, MaxAddresses));
        }
        foreach (var (address, p) in addresses)
        {
            switch (addressType)
            {
                case "IPv4" or "IPv6":
                    var family = addressType == "IPv4" ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
                    if (!IpSyntax.TryParseIp(address, out var ip) || ip.AddressFamily != family)
                    {
                        c.Add(FieldError.Invalid(p, address, addressType == "IPv4" ? "must be a valid IPv4 address" : "must be a valid IPv6 address"));
                    }
                    else if (IpSyntax.SpecialIpProblem(ip) is { } problem)
                    {
                        c.Add(FieldError.Invalid(p, address, problem));
                    }
                    break;
                case "FQDN":
                    c.Messages(p, address, NameRules.IsFullyQualifiedDomainName(address));
                    break;
            }
        }
        var conditions = c.Object(ep, "conditions", path + ".conditions");
        foreach (string cond in (ReadOnlySpan<string>)["ready", "serving", "terminating"])
        {
            c.Boolean(conditions, cond, path + ".conditions." + cond);
        }
        if (c.String(ep, "nodeName", path + ".nodeName") is { } nodeName)
        {
            c.Messages(path + ".nodeName", nodeName, NameRules.IsDns1123Subdomain(nodeName));
        }
        if (c.String(ep, "hostname", path + ".hostname") is { } hostname)
        {
            c.Messages(path + ".hostname", hostname, NameRules.IsDns1123Label(hostname));
        }
        if (c.Object(ep, "targetRef", path + ".targetRef") is { } targetRef)
        {
            foreach (string field in (ReadOnlySpan<string>)["kind", "namespace", "name", "uid"])
            {
                c.String(targetRef, field, path + ".targetRef." + field);
            }
        }
    }
}
