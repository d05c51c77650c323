using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>
/// trellis.dev/v1alpha1 BGPPeer: Calico's fields — spec.peerIP ("IP" or "IPv4:port"), spec.asNumber, and
/// optionally spec.node (only that node peers) or spec.nodeSelector (a Kubernetes label selector over Node
/// labels; Calico's own selector syntax is not supported); no node and no selector: every node peers. An
/// inline spec.password sets TCP MD5 (RFC 2385), where Calico points at a Secret.
/// </summary>
public sealed class BgpPeerView(JsonObject json) : ObjectView(json)
{
    public string? PeerIP => Spec.Str("peerIP");

    public long? AsNumber => Spec.Int("asNumber");

    public string? Node => Spec.Str("node");

    public string? NodeSelector => Spec.Str("nodeSelector");

    public string? Password => Spec.Str("password");

    /// <summary>The peer's address and port (179 unless peerIP says otherwise); false when peerIP does not parse.</summary>
    public bool TryEndpoint(out IPAddress address, out int port) => TryParseEndpoint(PeerIP, out address, out port);

    public static bool TryParseEndpoint(string? text, out IPAddress address, out int port)
    {
        port = 179;
        address = IPAddress.None;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        // One colon: IPv4 with a port; none: IPv4; several without brackets: a bare IPv6 address.
        if (!text.StartsWith('[') && text.Count(ch => ch == ':') != 1)
        {
            if (!IPAddress.TryParse(text, out var plain))
            {
                return false;
            }
            address = plain;
            return true;
        }
        if (IPEndPoint.TryParse(text, out var ep) && ep.Port > 0)
        {
            address = ep.Address;
            port = ep.Port;
            return true;
        }
        return false;
    }
}

/// <summary>
/// trellis.dev/v1alpha1 BGPConfiguration "default": spec.asNumber (64512), spec.nodeToNodeMeshEnabled (true),
/// spec.listenPort (179) as in Calico, plus Trellis' spec.holdTime (90s) and spec.gracefulRestartTime (120s),
/// durations like "9s" or "2m" — short ones make failure tests fast.
/// </summary>
public sealed class BgpConfigurationView(JsonObject json) : ObjectView(json)
{
    public const string DefaultName = "default";
    public const uint DefaultAsNumber = 64512;

    public uint AsNumber => Spec.Int("asNumber") is long n and > 0 and <= uint.MaxValue ? (uint)n : DefaultAsNumber;

    public bool NodeToNodeMeshEnabled => Spec.Bool("nodeToNodeMeshEnabled") ?? true;

    public int ListenPort => Spec.Int("listenPort") is long p and > 0 and < 65536 ? (int)p : 179;

    public TimeSpan HoldTime => TryParseDuration(Spec.Str("holdTime"), out var d) ? d : TimeSpan.FromSeconds(90);

    public TimeSpan GracefulRestartTime => TryParseDuration(Spec.Str("gracefulRestartTime"), out var d) ? d : TimeSpan.FromSeconds(120);

    /// <summary>"30s", "2m", "1h": a whole number and one unit.</summary>
    public static bool TryParseDuration(string? text, out TimeSpan duration)
    {
        duration = default;
        if (text is not { Length: >= 2 } || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out long n))
        {
            return false;
        }
        duration = text[^1] switch
        {
            's' => TimeSpan.FromSeconds(n),
            'm' => TimeSpan.FromMinutes(n),
            'h' => TimeSpan.FromHours(n),
            _ => TimeSpan.MinValue,
        };
        return duration != TimeSpan.MinValue;
    }
}

/// <summary>How a Node takes part in BGP, from its annotations (as Calico's kube datastore mode reads them).</summary>
public static class BgpNodeAnnotations
{
    /// <summary>Calico's: a node with this annotation is a route reflector with that cluster id (an IPv4-formatted id, e.g. 244.0.0.1).</summary>
    public const string CalicoRouteReflectorClusterId = "projectcalico.org/RouteReflectorClusterID";

    public const string RouteReflectorClusterId = "trellis.dev/route-reflector-cluster-id";

    /// <summary>The node's cluster id when it reflects; null when it does not or the value is not an IPv4 address.</summary>
    public static IPAddress? ClusterId(NodeView node)
    {
        ArgumentNullException.ThrowIfNull(node);
        string? text = node.Metadata.Annotation(RouteReflectorClusterId) ?? node.Metadata.Annotation(CalicoRouteReflectorClusterId);
        return IPAddress.TryParse(text, out var id) && id.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && text.Count(c => c == '.') == 3 ? id : null;
    }
}
