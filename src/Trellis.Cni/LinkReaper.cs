using Trellis.Netlink;

namespace Trellis.Cni;

/// <summary>
/// Deleting a network device costs the kernel an RCU barrier: 15–25 ms measured on this kernel,
/// whoever asks (it is most of the reference bridge plugin's DEL). DEL therefore releases the
/// addresses, takes the host port down at once (no traffic passes it from then on), and hands
/// the unregistration to a detached copy of this binary that deletes the link by ifindex and
/// exits. ifindexes are not reused, so a reaper can never delete a newer link of the same name.
/// If the reaper is killed first, the link stays down and labelled with its attachment: the
/// next ADD of that attachment replaces it, and GC removes it.
/// </summary>
internal static class LinkReaper
{
    public const string Verb = "reap-link";

    /// <summary>Starts the reaper detached (own session, stdio on /dev/null so the runtime's pipes see EOF now).</summary>
    public static void Spawn(int ifIndex, string name)
    {
        string self = Environment.ProcessPath ?? "/proc/self/exe";
        string[] argv = [self, Verb, ifIndex.ToString(System.Globalization.CultureInfo.InvariantCulture), name];
        bool spawned;
        try
        {
            Trellis.Shared.PosixSpawn.Detached(argv, log: null, env: []);
            spawned = true;
        }
        catch (IOException)
        {
            spawned = false;
        }
        if (!spawned)
        {
            // Could not spawn (e.g. pid limit): pay the deletion here rather than leave it.
            using var nl = RtNetlink.Open();
            DeleteIfSame(nl, ifIndex, name);
        }
    }

    /// <summary>The reaper's main: delete the link if it is still the one DEL meant.</summary>
    public static int Run(string[] args)
    {
        if (args.Length != 3 || !int.TryParse(args[1], out int index))
        {
            return 2;
        }
        try
        {
            using var nl = RtNetlink.Open();
            DeleteIfSame(nl, index, args[2]);
            return 0;
        }
        catch (NetlinkException)
        {
            return 1;
        }
    }

    private static void DeleteIfSame(RtNetlink nl, int index, string name)
    {
        if (nl.LinkGetByIndex(index) is { } link && link.Name == name)
        {
            try
            {
                nl.LinkDel(index);
            }
            catch (NetlinkException e) when (e.IsNotFound)
            {
                // Gone with its netns meanwhile.
            }
        }
    }
}
