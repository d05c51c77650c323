using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

public static partial class ObjectValidator
{
    private static readonly string[] s_restartPolicies = ["Always", "Never", "OnFailure"];
    private static readonly string[] s_dnsPolicies = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
    private static readonly string[] s_probeHandlers = ["exec", "httpGet", "tcpSocket", "grpc"];

    private static void ValidatePod(JsonObject obj, FieldChecker c)
    {
        var spec = c.Object(obj, "spec", "spec");
        bool hostNetwork = c.Boolean(spec, "hostNetwork", "spec.hostNetwork") ?? false;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (ctr, path) in c.Items(spec, "initContainers", "spec.initContainers"))
        {
            ValidateContainer(ctr, path, hostNetwork, names, init: true, c);
        }
        var containers = c.Items(spec, "containers", "spec.containers");
        if (containers.Count == 0 && spec.Get("containers") is null or JsonArray)
        {
            c.Add(FieldError.Required("spec.containers"));
        }
        foreach (var (ctr, path) in containers)
        {
            ValidateContainer(ctr, path, hostNetwork, names, init: false, c);
        }
        c.OneOf(c.String(spec, "restartPolicy", "spec.restartPolicy"), "spec.restartPolicy", s_restartPolicies);
        string? dnsPolicy = c.String(spec, "dnsPolicy", "spec.dnsPolicy");
        c.OneOf(dnsPolicy, "spec.dnsPolicy", s_dnsPolicies);
        var dnsConfig = c.Object(spec, "dnsConfig", "spec.dnsConfig");
        ValidateDnsConfig(dnsConfig, dnsPolicy, spec.Get("dnsConfig") is not null, c);
        if (c.String(spec, "nodeName", "spec.nodeName") is { Length: > 0 } nodeName)
        {
            c.Messages("spec.nodeName", nodeName, NameRules.IsDns1123Subdomain(nodeName));
        }
        foreach (string field in (ReadOnlySpan<string>)["hostname", "subdomain"])
        {
            if (c.String(spec, field, "spec." + field) is { Length: > 0 } v)
            {
                c.Messages("spec." + field, v, NameRules.IsDns1123Label(v));
            }
        }
    }

    private static void ValidateContainer(JsonObject ctr, string path, bool hostNetwork, HashSet<string> names, bool init, FieldChecker c)
    {
        string? name = c.String(ctr, "name", path + ".name");
        if (string.IsNullOrEmpty(name))
        {
            c.Add(FieldError.Required(path + ".name"));
        }
        else
        {
            c.Messages(path + ".name", name, NameRules.IsDns1123Label(name));
            if (!names.Add(name))
            {
                c.Add(FieldError.Duplicate(path + ".name", name));
            }
        }
        string? image = c.String(ctr, "image", path + ".image");
        if (string.IsNullOrEmpty(image))
        {
            c.Add(FieldError.Required(path + ".image"));
        }
        else if (image.Trim() != image)
        {
            c.Add(FieldError.Invalid(path + ".image", image, "must not have leading or trailing whitespace"));
        }
        c.Strings(ctr, "command", path + ".command");
        c.Strings(ctr, "args", path + ".args");
        var portNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (port, pp) in c.Items(ctr, "ports", path + ".ports"))
        {
            if (c.String(port, "name", pp + ".name") is { Length: > 0 } portName)
            {
                var msgs = NameRules.IsValidPortName(portName);
                if (msgs.Count > 0)
                {
                    c.Messages(pp + ".name", portName, msgs);
                }
                else if (!portNames.Add(portName))
                {
                    c.Add(FieldError.Duplicate(pp + ".name", portName));
                }
            }
            long? containerPort = c.Integer(port, "containerPort", pp + ".containerPort");
            if (containerPort is null or 0)
            {
                if (port.Get("containerPort") is null || containerPort == 0)
                {
                    c.Add(FieldError.Required(pp + ".containerPort"));
                }
            }
            else
            {
                c.Messages(pp + ".containerPort", containerPort.Value, NameRules.IsValidPortNum(containerPort.Value));
            }
            long? hostPort = c.Integer(port, "hostPort", pp + ".hostPort");
            if (hostPort is { } hp and not 0)
            {
                c.Messages(pp + ".hostPort", hp, NameRules.IsValidPortNum(hp));
            }
            if (hostNetwork && hostPort is { } hp2 and not 0 && containerPort is { } cp && hp2 != cp)
            {
                c.Add(FieldError.Invalid(pp + ".hostPort", hp2, "must match `containerPort` when `hostNetwork` is true"));
            }
            c.OneOf(c.String(port, "protocol", pp + ".protocol"), pp + ".protocol", Protocols);
        }
        if (c.Object(ctr, "readinessProbe", path + ".readinessProbe") is { } probe)
        {
            string probePath = path + ".readinessProbe";
            if (init && ctr.Str("restartPolicy") != "Always")
            {
                c.Add(FieldError.Forbidden(probePath, "may not be set for init containers without restartPolicy=Always"));
            }
            var handlers = s_probeHandlers.Where(h => probe.Get(h) is not null).ToList();
            if (handlers.Count == 0)
            {
                c.Add(FieldError.Required(probePath, "must specify a handler type"));
            }
            else if (handlers.Count > 1)
            {
                c.Add(FieldError.Forbidden(probePath + "." + handlers[1], "may not specify more than 1 handler type"));
            }
            if (c.Object(probe, "httpGet", probePath + ".httpGet") is { } http)
            {
                ValidatePortNumOrName(c.IntOrString(http, "port", probePath + ".httpGet.port"), probePath + ".httpGet.port", c);
            }
            if (c.Object(probe, "tcpSocket", probePath + ".tcpSocket") is { } tcp)
            {
                ValidatePortNumOrName(c.IntOrString(tcp, "port", probePath + ".tcpSocket.port"), probePath + ".tcpSocket.port", c);
            }
            if (c.Object(probe, "exec", probePath + ".exec") is { } exec)
            {
                c.Strings(exec, "command", probePath + ".exec.command");
            }
            foreach (string field in (ReadOnlySpan<string>)["initialDelaySeconds", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"])
            {
                if (c.Integer(probe, field, probePath + "." + field) is < 0 and var v)
                {
                    c.Add(FieldError.Invalid(probePath + "." + field, v, "must be greater than or equal to 0"));
                }
            }
        }
    }

    private static void ValidateDnsConfig(JsonObject? config, string? dnsPolicy, bool present, FieldChecker c)
    {
        if (dnsPolicy == "None" && !present)
        {
            c.Add(FieldError.Required("spec.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"));
        }
        if (config is null)
        {
            return;
        }
        var nameservers = c.Strings(config, "nameservers", "spec.dnsConfig.nameservers") ?? [];
        if (dnsPolicy == "None" && nameservers.Count == 0)
        {
            c.Add(FieldError.Required("spec.dnsConfig.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None"));
        }
        if (nameservers.Count > 3)
        {
            c.Add(FieldError.Invalid("spec.dnsConfig.nameservers", config["nameservers"], "must not have more than 3 nameservers"));
        }
        foreach (var (ns, p) in nameservers)
        {
            if (!IpSyntax.TryParseIp(ns, out _))
            {
                c.Add(FieldError.Invalid(p, ns, "must be valid IP address"));
            }
        }
        var searches = c.Strings(config, "searches", "spec.dnsConfig.searches") ?? [];
        if (searches.Count > 32)
        {
            c.Add(FieldError.Invalid("spec.dnsConfig.searches", config["searches"], "must not have more than 32 search paths"));
        }
        if (searches.Sum(s => s.Value.Length) + Math.Max(0, searches.Count - 1) > 2048)
        {
            c.Add(FieldError.Invalid("spec.dnsConfig.searches", config["searches"], "must not have more than 2048 characters (including spaces) in the search list"));
        }
        foreach (var (search, p) in searches)
        {
            if (search == ".")
            {
                continue; // allowed: "search ." disables search
            }
            string s = search.EndsWith('.') ? search[..^1] : search;
            c.Messages(p, s, NameRules.IsDns1123Subdomain(s));
        }
        foreach (var (option, p) in c.Items(config, "options", "spec.dnsConfig.options"))
        {
            if (string.IsNullOrEmpty(c.String(option, "name", p + ".name")))
            {
                c.Add(FieldError.Required(p + ".name", "must not be empty"));
            }
            c.String(option, "value", p + ".value");
        }
    }
}
