using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

public static partial class ObjectValidator
{
    private static void ValidateBgpPeer(JsonObject obj, FieldChecker c)
    {
        var spec = c.Object(obj, "spec", "spec");
        if (spec is null)
        {
            c.Add(FieldError.Required("spec"));
            return;
        }
        string? peerIp = c.String(spec, "peerIP", "spec.peerIP");
        if (string.IsNullOrEmpty(peerIp))
        {
            c.Add(FieldError.Required("spec.peerIP"));
        }
        else if (!BgpPeerView.TryParseEndpoint(peerIp, out _, out _))
        {
            c.Add(FieldError.Invalid("spec.peerIP", peerIp, "must be an IP address, optionally with a port (10.0.0.1 or 10.0.0.1:1179)"));
        }
        ValidateAsNumber(spec, "spec.asNumber", required: true, c);
        c.String(spec, "node", "spec.node");
        string? selector = c.String(spec, "nodeSelector", "spec.nodeSelector");
        if (!string.IsNullOrEmpty(selector) && !LabelSelector.TryParse(selector, out _, out var problem))
        {
            c.Add(FieldError.Invalid("spec.nodeSelector", selector, problem));
        }
        if (!string.IsNullOrEmpty(selector) && !string.IsNullOrEmpty(spec.Str("node")))
        {
            c.Add(FieldError.Forbidden("spec.nodeSelector", "may not be set together with spec.node"));
        }
        string? password = c.String(spec, "password", "spec.password");
        if (password is { Length: > 80 })
        {
            // TCP_MD5SIG_MAXKEYLEN
            c.Add(FieldError.TooLong("spec.password", 80));
        }
    }

    private static void ValidateBgpConfiguration(JsonObject obj, FieldChecker c)
    {
        string? name = obj.Obj("metadata").Str("name");
        if (name is not null && name != BgpConfigurationView.DefaultName)
        {
            c.Add(FieldError.Invalid("metadata.name", name, "the cluster has one BGPConfiguration, named \"default\""));
        }
        var spec = c.Object(obj, "spec", "spec");
        ValidateAsNumber(spec, "spec.asNumber", required: false, c);
        c.Boolean(spec, "nodeToNodeMeshEnabled", "spec.nodeToNodeMeshEnabled");
        if (c.Integer(spec, "listenPort", "spec.listenPort") is long port && port is < 1 or > 65535)
        {
            c.Add(FieldError.Invalid("spec.listenPort", port, "must be between 1 and 65535, inclusive"));
        }
        foreach (var field in new[] { "holdTime", "gracefulRestartTime" })
        {
            string? text = c.String(spec, field, "spec." + field);
            if (text is not null && !BgpConfigurationView.TryParseDuration(text, out _))
            {
                c.Add(FieldError.Invalid("spec." + field, text, "must be a duration like 90s or 2m"));
            }
            else if (field == "holdTime" && text is not null && BgpConfigurationView.TryParseDuration(text, out var d) && d != TimeSpan.Zero && (d < TimeSpan.FromSeconds(3) || d > TimeSpan.FromSeconds(65535)))
            {
                c.Add(FieldError.Invalid("spec.holdTime", text, "must be 0s or between 3s and 65535s (RFC 4271)"));
            }
        }
    }

    private static void ValidateAsNumber(JsonObject? spec, string path, bool required, FieldChecker c)
    {
        if (spec?["asNumber"] is null)
        {
            if (required)
            {
                c.Add(FieldError.Required(path));
            }
            return;
        }
        if (c.Integer(spec, "asNumber", path) is long asn && asn is < 1 or > uint.MaxValue)
        {
            c.Add(FieldError.Invalid(path, asn, "must be between 1 and 4294967295, inclusive"));
        }
    }
}
