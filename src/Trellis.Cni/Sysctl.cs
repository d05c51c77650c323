namespace Trellis.Cni;

/// <summary>
/// The node must forward for its pods when the bridge is their gateway. /proc/sys/net reflects
/// the netns of the process that opens it: the plugin runs in the node's netns, so this never
/// touches any other namespace.
/// </summary>
internal static class Sysctl
{
    public static void EnsureForwarding(bool ipv4)
    {
        string path = ipv4 ? "/proc/sys/net/ipv4/ip_forward" : "/proc/sys/net/ipv6/conf/all/forwarding";
        // Read first: a write on every ADD would be a needless syscall storm and noise in audits.
        if (File.ReadAllText(path).Trim() != "1")
        {
            File.WriteAllText(path, "1");
        }
    }
}
