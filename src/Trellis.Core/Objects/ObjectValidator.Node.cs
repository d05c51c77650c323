using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

public static partial class ObjectValidator
{
    private static readonly string[] s_nodeAddressTypes = ["ExternalDNS", "ExternalIP", "Hostname", "InternalDNS", "InternalIP"];

    private static void ValidateNode(JsonObject obj, FieldChecker c)
    {
        var spec = c.Object(obj, "spec", "spec");
        string? podCidr = c.String(spec, "podCIDR", "spec.podCIDR");
        var podCidrs = c.Strings(spec, "podCIDRs", "spec.podCIDRs") ?? [];
        if (podCidrs.Count == 0 && !string.IsNullOrEmpty(podCidr))
        {
            ValidateCidr(podCidr, "spec.podCIDR", c);
        }
        var families = new List<System.Net.Sockets.AddressFamily>();
        foreach (var (cidr, p) in podCidrs)
        {
            if (ValidateCidr(cidr, p, c) && IpSyntax.TryParseCidr(cidr, out var parsed))
            {
                families.Add(parsed.Family);
            }
        }
        if (podCidrs.Count > 2 || families.Distinct().Count() != families.Count)
        {
            c.Add(FieldError.Invalid("spec.podCIDRs", string.Join(",", podCidrs.Select(x => x.Value)), "may specify no more than one CIDR for each IP family"));
        }
        if (!string.IsNullOrEmpty(podCidr) && podCidrs.Count > 0 && podCidrs[0].Value != podCidr)
        {
            c.Add(FieldError.Invalid("spec.podCIDR", podCidr, "must match the first value of `podCIDRs`"));
        }
        c.Boolean(spec, "unschedulable", "spec.unschedulable");
        var status = c.Object(obj, "status", "status");
        foreach (var (address, p) in c.Items(status, "addresses", "status.addresses"))
        {
            c.OneOf(c.String(address, "type", p + ".type"), p + ".type", s_nodeAddressTypes, required: true);
            if (string.IsNullOrEmpty(c.String(address, "address", p + ".address")))
            {
                c.Add(FieldError.Required(p + ".address"));
            }
        }
        foreach (var (cond, p) in c.Items(status, "conditions", "status.conditions"))
        {
            c.String(cond, "type", p + ".type");
            c.OneOf(c.String(cond, "status", p + ".status"), p + ".status", ["False", "True", "Unknown"]);
        }
    }
}
