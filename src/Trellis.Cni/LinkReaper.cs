using System.Runtime.InteropServices;
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
internal static partial class LinkReaper
{
    public const string Verb = "reap-link";

    /// <summary>Starts the reaper detached (own session, stdio on /dev/null so the runtime's pipes see EOF now).</summary>
    public static void Spawn(int ifIndex, string name)
    {
        string self = Environment.ProcessPath ?? "/proc/self/exe";
        string[] argv = [self, Verb, ifIndex.ToString(System.Globalization.CultureInfo.InvariantCulture), name];
        if (!Interop.SpawnDetached(self, argv))
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

    private static unsafe partial class Interop
    {
        private const short POSIX_SPAWN_SETSID = 0x80; // glibc >= 2.26
        private const int O_RDWR = 2;

        [LibraryImport("libc")]
        private static partial int posix_spawn_file_actions_init(byte* actions);

        [LibraryImport("libc")]
        private static partial int posix_spawn_file_actions_destroy(byte* actions);

        [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
        private static partial int posix_spawn_file_actions_addopen(byte* actions, int fd, string path, int flags, int mode);

        [LibraryImport("libc")]
        private static partial int posix_spawnattr_init(byte* attr);

        [LibraryImport("libc")]
        private static partial int posix_spawnattr_destroy(byte* attr);

        [LibraryImport("libc")]
        private static partial int posix_spawnattr_setflags(byte* attr, short flags);

        [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
        private static partial int posix_spawn(out int pid, string path, byte* actions, byte* attr, nint* argv, nint* envp);

        public static bool SpawnDetached(string path, string[] args)
        {
            // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336; room to spare.
            byte* actions = stackalloc byte[512];
            byte* attr = stackalloc byte[1024];
            var strings = new nint[args.Length];
            nint* argv = stackalloc nint[args.Length + 1];
            nint* envp = stackalloc nint[1];
            try
            {
                for (int i = 0; i < args.Length; i++)
                {
                    strings[i] = Marshal.StringToCoTaskMemUTF8(args[i]);
                    argv[i] = strings[i];
                }
                argv[args.Length] = 0;
                envp[0] = 0;
                if (posix_spawn_file_actions_init(actions) != 0)
                {
                    return false;
                }
                if (posix_spawnattr_init(attr) != 0)
                {
                    _ = posix_spawn_file_actions_destroy(actions);
                    return false;
                }
                int rc = 0;
                for (int fd = 0; fd <= 2 && rc == 0; fd++)
                {
                    rc = posix_spawn_file_actions_addopen(actions, fd, "/dev/null", O_RDWR, 0);
                }
                if (rc == 0)
                {
                    rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID);
                }
                if (rc == 0)
                {
                    rc = posix_spawn(out _, path, actions, attr, argv, envp);
                }
                _ = posix_spawn_file_actions_destroy(actions);
                _ = posix_spawnattr_destroy(attr);
                return rc == 0;
            }
            finally
            {
                foreach (var s in strings)
                {
                    Marshal.FreeCoTaskMem(s);
                }
            }
        }
    }
}
