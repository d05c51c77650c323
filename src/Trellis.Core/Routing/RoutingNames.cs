using System.Globalization;

namespace Trellis.Core.Routing;

/// <summary>The names and numbers by which Trellis recognises what it owns in the kernel's routing state.</summary>
public static class RoutingNames
{
    /// <summary>
    /// rtm_protocol of every route Trellis writes; the reconciler owns exactly the routes carrying it.
    /// 201 is unassigned in the kernel's rtnetlink.h (which stops at 192 = eigrp) and in iproute2's
    /// rt_protos, and is neither BIRD's 12 nor the 80 that Calico's Felix writes, so routes of a
    /// routing daemon sharing the node are never mistaken for ours. Flannel marks its routes with no
    /// protocol at all (boot), which is why it can only find them again by remembering them in memory;
    /// a protocol number lets a restarted agent see its own routes — and only those — in one dump.
    /// Add "201 trellis" to /etc/iproute2/rt_protos.d/trellis.conf and <c>ip route</c> prints the name.
    /// </summary>
    public const byte TrellisRouteProtocol = 201;

    /// <summary>
    /// Routes the <c>bgp</c> backend learned over BGP. Separate from 201 so the host-gw/vxlan reconciler and
    /// the BGP route reconciler each own exactly their own routes; unassigned like 201 (BIRD uses 12, Felix 80,
    /// FRR 186). "203 trellis-bgp" in rt_protos.d names it for <c>ip route</c>.
    /// </summary>
    public const byte TrellisBgpRouteProtocol = 203;

    /// <summary>
    /// The metric the kernel gives an IPv6 route added without one (IP6_RT_PRIO_USER). IPv4's is 0. Desired
    /// routes carry the value the kernel will report, or the diff would see a different route every sync.
    /// </summary>
    public const int IPv6DefaultMetric = 1024;

    public const string VxlanDevicePrefix = "trellis.";

    /// <summary>Linux interface names hold at most 15 bytes (IFNAMSIZ − 1).</summary>
    public const int MaxInterfaceName = 15;

    /// <summary>The VXLAN device for a VNI, flannel's <c>flannel.&lt;vni&gt;</c> scheme: <c>trellis.1</c>.</summary>
    public static string VxlanDevice(int vni) => VxlanDevicePrefix + vni.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Whether a link of that name is a Trellis VXLAN device (<c>trellis.&lt;digits&gt;</c>) — also one
    /// left behind by an earlier VNI, which the reconciler then deletes.
    /// </summary>
    public static bool IsVxlanDevice(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!name.StartsWith(VxlanDevicePrefix, StringComparison.Ordinal) || name.Length == VxlanDevicePrefix.Length)
        {
            return false;
        }
        foreach (char c in name.AsSpan(VxlanDevicePrefix.Length))
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>What the kernel accepts as an interface name (dev_valid_name): 1–15 bytes, no '/', ':' or whitespace, not "." or "..".</summary>
    public static bool IsValidInterfaceName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxInterfaceName || name is "." or "..")
        {
            return false;
        }
        foreach (char c in name)
        {
            if (c is '/' or ':' || char.IsWhiteSpace(c) || c > '~' || c < '!')
            {
                return false;
            }
        }
        return true;
    }
}
