using System.Text.Json.Nodes;
using Trellis.Model;

namespace Trellis.Core.Objects;

public static partial class ObjectValidator
{
    private static readonly string[] s_policyTypes = ["Egress", "Ingress"];

    private static void ValidateNetworkPolicy(JsonObject obj, FieldChecker c)
    {
        var spec = c.Object(obj, "spec", "spec");
        ValidateLabelSelector(c.Object(spec, "podSelector", "spec.podSelector"), "spec.podSelector", c);
        foreach (var (rule, rp) in c.Items(spec, "ingress", "spec.ingress"))
        {
            foreach (var (port, pp) in c.Items(rule, "ports", rp + ".ports"))
            {
                ValidatePolicyPort(port, pp, c);
            }
            foreach (var (peer, pp) in c.Items(rule, "from", rp + ".from"))
            {
                ValidatePeer(peer, pp, c);
            }
        }
        foreach (var (rule, rp) in c.Items(spec, "egress", "spec.egress"))
        {
            foreach (var (peer, pp) in c.Items(rule, "to", rp + ".to"))
            {
                ValidatePeer(peer, pp, c);
            }
            foreach (var (port, pp) in c.Items(rule, "ports", rp + ".ports"))
            {
                ValidatePolicyPort(port, pp, c);
            }
        }
        var types = c.Strings(spec, "policyTypes", "spec.policyTypes") ?? [];
        if (types.Count > 2)
        {
            c.Add(FieldError.Invalid("spec.policyTypes", string.Join(",", types.Select(t => t.Value)), "may not specify more than two policyTypes"));
            return;
        }
        foreach (var (type, p) in types)
        {
            if (!s_policyTypes.Contains(type))
            {
                c.Add(FieldError.NotSupported(p, type, ["Ingress", "Egress"]));
            }
        }
    }

    private static void ValidatePolicyPort(JsonObject port, string path, FieldChecker c)
    {
        c.OneOf(c.String(port, "protocol", path + ".protocol"), path + ".protocol", Protocols);
        var number = c.IntOrString(port, "port", path + ".port");
        long? endPort = c.Integer(port, "endPort", path + ".endPort");
        if (number is { IsInt: true } n)
        {
            c.Messages(path + ".port", n.IntValue, NameRules.IsValidPortNum(n.IntValue));
            if (endPort is { } end)
            {
                if (end < n.IntValue)
                {
                    c.Add(FieldError.Invalid(path + ".endPort", end, "must be greater than or equal to `port`"));
                }
                c.Messages(path + ".endPort", end, NameRules.IsValidPortNum(end));
            }
        }
        else if (number is { } named)
        {
            if (endPort is { } end)
            {
                c.Add(FieldError.Invalid(path + ".endPort", end, "may not be specified when `port` is non-numeric"));
            }
            c.Messages(path + ".port", named.StringValue!, NameRules.IsValidPortName(named.StringValue!));
        }
        else if (endPort is { } end && port.Get("port") is null)
        {
            c.Add(FieldError.Invalid(path + ".endPort", end, "may not be specified when `port` is not specified"));
        }
    }

    private static void ValidatePeer(JsonObject peer, string path, FieldChecker c)
    {
        int count = 0;
        if (c.Object(peer, "podSelector", path + ".podSelector") is { } podSelector)
        {
            count++;
            ValidateLabelSelector(podSelector, path + ".podSelector", c);
        }
        if (c.Object(peer, "namespaceSelector", path + ".namespaceSelector") is { } nsSelector)
        {
            count++;
            ValidateLabelSelector(nsSelector, path + ".namespaceSelector", c);
        }
        var ipBlock = c.Object(peer, "ipBlock", path + ".ipBlock");
        if (ipBlock is not null)
        {
            count++;
            ValidateIpBlock(ipBlock, path + ".ipBlock", c);
        }
        if (count == 0 && !peer.Any(p => p.Key is "podSelector" or "namespaceSelector" or "ipBlock" && p.Value is not null))
        {
            c.Add(FieldError.Required(path, "must specify a peer"));
        }
        else if (count > 1 && ipBlock is not null)
        {
            c.Add(FieldError.Forbidden(path, "may not specify both ipBlock and another peer"));
        }
    }

    private static void ValidateIpBlock(JsonObject block, string path, FieldChecker c)
    {
        string cidrText = c.String(block, "cidr", path + ".cidr") ?? "";
        if (cidrText.Length == 0)
        {
            if (block.Get("cidr") is null)
            {
                c.Add(FieldError.Required(path + ".cidr"));
            }
            return;
        }
        if (!ValidateCidr(cidrText, path + ".cidr", c))
        {
            return;
        }
        var cidr = IpSyntax.TryParseCidr(cidrText, out var parsed) ? parsed.Network : default;
        foreach (var (exceptText, p) in c.Strings(block, "except", path + ".except") ?? [])
        {
            if (!ValidateCidr(exceptText, p, c) || !IpSyntax.TryParseCidr(exceptText, out IPCidr except))
            {
                continue;
            }
            // A strict subset: inside the cidr and a longer prefix (netutils semantics, host bits ignored).
            if (except.Family != cidr.BaseAddress.AddressFamily || !cidr.Contains(except.Network.BaseAddress) || except.PrefixLength <= cidr.PrefixLength)
            {
                c.Add(FieldError.Invalid(p, exceptText, "must be a strict subset of `cidr`"));
            }
        }
    }
}
