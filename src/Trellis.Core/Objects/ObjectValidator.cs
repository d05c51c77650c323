using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// What the API server would refuse, for the supported kinds and the fields Trellis uses, with its field paths
/// and wording. Run on defaulted objects (<see cref="ObjectDefaults"/>): fields that defaulting fills are
/// checked only when present. Fields Trellis does not model are passed through unchecked.
/// </summary>
public static partial class ObjectValidator
{
    internal static readonly string[] Protocols = ["SCTP", "TCP", "UDP"];

    /// <summary>Annotations may total at most 256 KiB (keys and values), as in apimachinery.</summary>
    public const int TotalAnnotationSizeLimitBytes = 256 * 1024;

    public static IReadOnlyList<FieldError> Validate(JsonObject obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var c = new FieldChecker();
        var kind = CheckKind(obj, c);
        if (kind is null)
        {
            return c.Errors;
        }
        ValidateMeta(obj, kind, c);
        if (kind == Kinds.Pod)
        {
            ValidatePod(obj, c);
        }
        else if (kind == Kinds.Service)
        {
            ValidateService(obj, c);
        }
        else if (kind == Kinds.EndpointSlice)
        {
            ValidateEndpointSlice(obj, c);
        }
        else if (kind == Kinds.NetworkPolicy)
        {
            ValidateNetworkPolicy(obj, c);
        }
        else if (kind == Kinds.Node)
        {
            ValidateNode(obj, c);
        }
        else if (kind == Kinds.BgpPeer)
        {
            ValidateBgpPeer(obj, c);
        }
        else if (kind == Kinds.BgpConfiguration)
        {
            ValidateBgpConfiguration(obj, c);
        }
        return c.Errors;
    }

    private static KindInfo? CheckKind(JsonObject obj, FieldChecker c)
    {
        string? apiVersion = c.String(obj, "apiVersion", "apiVersion");
        string? kind = c.String(obj, "kind", "kind");
        if (string.IsNullOrEmpty(apiVersion))
        {
            c.Add(FieldError.Required("apiVersion"));
        }
        if (string.IsNullOrEmpty(kind))
        {
            c.Add(FieldError.Required("kind"));
        }
        if (c.Errors.Count > 0)
        {
            return null;
        }
        if (Kinds.Find(apiVersion, kind) is { } found)
        {
            return found;
        }
        var sameKind = Kinds.All.Where(k => k.Kind == kind).Select(k => k.ApiVersion).ToList();
        c.Add(sameKind.Count > 0
            ? FieldError.NotSupported("apiVersion", apiVersion!, sameKind)
            : FieldError.NotSupported("kind", kind!, Kinds.All.Select(k => k.Kind)));
        return null;
    }

    private static Func<string, IReadOnlyList<string>> NameRule(KindInfo kind) =>
        // Namespaces are DNS labels (ValidateNamespaceName); Services DNS-1035 labels (ValidateServiceName:
        // the name becomes a DNS label and an environment variable prefix, so it must start with a letter).
        kind == Kinds.Namespace ? NameRules.IsDns1123Label
        : kind == Kinds.Service ? NameRules.IsDns1035Label
        : NameRules.IsDns1123Subdomain;

    private static void ValidateMeta(JsonObject obj, KindInfo kind, FieldChecker c)
    {
        var meta = c.Object(obj, "metadata", "metadata");
        string? name = c.String(meta, "name", "metadata.name");
        if (string.IsNullOrEmpty(name))
        {
            c.Add(FieldError.Required("metadata.name", "name or generateName is required"));
        }
        else
        {
            c.Messages("metadata.name", name, NameRule(kind)(name));
        }
        string? ns = c.String(meta, "namespace", "metadata.namespace");
        if (kind.Namespaced)
        {
            if (string.IsNullOrEmpty(ns))
            {
                c.Add(FieldError.Required("metadata.namespace"));
            }
            else
            {
                c.Messages("metadata.namespace", ns, NameRules.IsDns1123Label(ns));
            }
        }
        else if (!string.IsNullOrEmpty(ns))
        {
            c.Add(FieldError.Forbidden("metadata.namespace", "not allowed on this type"));
        }
        ValidateLabels(c.StringMap(meta, "labels", "metadata.labels"), "metadata.labels", c);
        if (c.StringMap(meta, "annotations", "metadata.annotations") is { } annotations)
        {
            long total = 0;
            foreach (var (k, v) in annotations)
            {
                c.Messages("metadata.annotations", k, NameRules.IsQualifiedName(k.ToLowerInvariant()));
                total += System.Text.Encoding.UTF8.GetByteCount(k) + System.Text.Encoding.UTF8.GetByteCount(v);
            }
            if (total > TotalAnnotationSizeLimitBytes)
            {
                c.Add(FieldError.TooLong("metadata.annotations", TotalAnnotationSizeLimitBytes));
            }
        }
        c.String(meta, "uid", "metadata.uid");
        c.String(meta, "resourceVersion", "metadata.resourceVersion");
        foreach (string ts in (ReadOnlySpan<string>)["creationTimestamp", "deletionTimestamp"])
        {
            if (c.String(meta, ts, "metadata." + ts) is { } text && Timestamps.Parse(text) is null)
            {
                c.Add(FieldError.Invalid("metadata." + ts, text, "must be an RFC 3339 time (e.g. 2006-01-02T15:04:05Z)"));
            }
        }
    }

    internal static void ValidateLabels(List<KeyValuePair<string, string>>? labels, string path, FieldChecker c)
    {
        if (labels is null)
        {
            return;
        }
        foreach (var (k, v) in labels)
        {
            c.Messages(path, k, NameRules.IsQualifiedName(k));
            c.Messages(path, v, NameRules.IsValidLabelValue(v));
        }
    }

    /// <summary>metav1 ValidateLabelSelector: matchLabels as labels; each expression's operator, key and values.</summary>
    internal static void ValidateLabelSelector(JsonObject? selector, string path, FieldChecker c)
    {
        if (selector is null)
        {
            return;
        }
        ValidateLabels(c.StringMap(selector, "matchLabels", path + ".matchLabels"), path + ".matchLabels", c);
        foreach (var (expr, ep) in c.Items(selector, "matchExpressions", path + ".matchExpressions"))
        {
            string key = c.String(expr, "key", ep + ".key") ?? "";
            string op = c.String(expr, "operator", ep + ".operator") ?? "";
            var values = c.Strings(expr, "values", ep + ".values") ?? [];
            switch (op)
            {
                case "In" or "NotIn":
                    if (values.Count == 0)
                    {
                        c.Add(FieldError.Required(ep + ".values", "must be specified when `operator` is 'In' or 'NotIn'"));
                    }
                    break;
                case "Exists" or "DoesNotExist":
                    if (values.Count > 0)
                    {
                        c.Add(FieldError.Forbidden(ep + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
                    }
                    break;
                default:
                    c.Add(FieldError.Invalid(ep + ".operator", op, "not a valid selector operator"));
                    break;
            }
            c.Messages(ep + ".key", key, NameRules.IsQualifiedName(key));
            foreach (var (v, vp) in values)
            {
                c.Messages(vp, v, NameRules.IsValidLabelValue(v));
            }
        }
    }

    /// <summary>ValidatePortNumOrName: a number 1–65535 or an IANA service name.</summary>
    internal static void ValidatePortNumOrName(IntOrString? port, string path, FieldChecker c)
    {
        if (port is not { } p)
        {
            return;
        }
        if (p.IsInt)
        {
            c.Messages(path, p.IntValue, NameRules.IsValidPortNum(p.IntValue));
        }
        else
        {
            c.Messages(path, p.StringValue!, NameRules.IsValidPortName(p.StringValue!));
        }
    }

    internal static void ValidateIp(string value, string path, FieldChecker c)
    {
        if (!IpSyntax.TryParseIp(value, out _))
        {
            c.Add(FieldError.Invalid(path, value, IpSyntax.IpExample));
        }
    }

    internal static bool ValidateCidr(string value, string path, FieldChecker c)
    {
        if (IpSyntax.TryParseCidr(value, out _))
        {
            return true;
        }
        c.Add(FieldError.Invalid(path, value, IpSyntax.CidrExample));
        return false;
    }
}
