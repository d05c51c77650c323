using System.Runtime.InteropServices;

namespace Trellis.Shared;

/// <summary>
/// posix_spawn with a new session and redirected stdio: how Trellis starts processes that must
/// outlive their parent without holding its pipes (a runtime reading a CNI plugin's stdout waits
/// for EOF; a lab daemon must survive the shell that started it). Compiled into each executable
/// that needs it (a linked source file, not a library: it is one P/Invoke wrapper).
/// </summary>
internal static unsafe partial class PosixSpawn
{
    private const short POSIX_SPAWN_SETSID = 0x80; // glibc >= 2.26
    private const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_APPEND = 0x400;

    /// <summary>
    /// Starts argv (argv[0] looked up in PATH) detached: setsid, stdin from /dev/null, stdout and
    /// stderr appended to <paramref name="log"/> (or /dev/null). Returns the PID.
    /// </summary>
    public static int Detached(IReadOnlyList<string> argv, string? log, IReadOnlyList<string>? env)
    {
        var allocated = new List<nint>();
        byte* actions = stackalloc byte[512];   // glibc's posix_spawn_file_actions_t is 80 bytes
        byte* attr = stackalloc byte[1024];     // and posix_spawnattr_t 336: room to spare
        nint[] argvArr = new nint[argv.Count + 1];
        nint[] envArr = new nint[(env?.Count ?? 0) + 1];
        bool actionsReady = false, attrReady = false;
        try
        {
            for (int i = 0; i < argv.Count; i++)
            {
                allocated.Add(argvArr[i] = Marshal.StringToCoTaskMemUTF8(argv[i]));
            }
            for (int i = 0; i < (env?.Count ?? 0); i++)
            {
                allocated.Add(envArr[i] = Marshal.StringToCoTaskMemUTF8(env![i]));
            }
            Check(posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            actionsReady = true;
            Check(posix_spawnattr_init(attr), "posix_spawnattr_init");
            attrReady = true;
            if (log is null)
            {
                for (int fd = 0; fd <= 2; fd++)
                {
                    Check(posix_spawn_file_actions_addopen(actions, fd, "/dev/null", O_RDWR, 0), "addopen /dev/null");
                }
            }
            else
            {
                Check(posix_spawn_file_actions_addopen(actions, 0, "/dev/null", O_RDONLY, 0), "addopen stdin");
                Check(posix_spawn_file_actions_addopen(actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0x1A4 /* 0644 */), "addopen " + log);
                Check(posix_spawn_file_actions_adddup2(actions, 1, 2), "adddup2");
            }
            Check(posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID), "posix_spawnattr_setflags");
            fixed (nint* a = argvArr)
            fixed (nint* e = envArr)
            {
                Check(posix_spawnp(out int pid, argv[0], actions, attr, a, e), "posix_spawn " + argv[0]);
                return pid;
            }
        }
        finally
        {
            if (actionsReady)
            {
                _ = posix_spawn_file_actions_destroy(actions);
            }
            if (attrReady)
            {
                _ = posix_spawnattr_destroy(attr);
            }
            foreach (var p in allocated)
            {
                Marshal.FreeCoTaskMem(p);
            }
        }
    }

    private static void Check(int rc, string what)
    {
        if (rc != 0)
        {
            throw new IOException($"{what}: error {rc}");
        }
    }

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(byte* actions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(byte* actions);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawn_file_actions_addopen(byte* actions, int fd, string path, int flags, int mode);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_adddup2(byte* actions, int fd, int newfd);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_init(byte* attr);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_destroy(byte* attr);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setflags(byte* attr, short flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawnp(out int pid, string file, byte* actions, byte* attr, nint* argv, nint* envp);
}
