using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Trellis.Netlink;

/// <summary>
/// A network namespace held open by a file descriptor (a bind mount under /var/run/netns, or
/// /proc/PID/ns/net). Holding the fd keeps the namespace alive even if its mount goes away.
/// </summary>
public sealed class NetNs : IDisposable
{
    private readonly FileDescriptorHandle _handle;
    private readonly string _path;

    private NetNs(FileDescriptorHandle handle, string path)
    {
        _handle = handle;
        _path = path;
    }

    public SafeHandle Handle => _handle;

    public int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.Fd;
        }
    }

    /// <summary>The path this namespace was opened from.</summary>
    public string Path => _path;

    /// <summary>Opens a namespace file ("/var/run/netns/x", "/proc/123/ns/net").</summary>
    public static NetNs Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        int fd = Interop.Open(path, Interop.O_RDONLY | Interop.O_CLOEXEC);
        if (fd < 0)
        {
            throw new NetlinkException(Marshal.GetLastPInvokeError(), "open", "netns '" + path + "'");
        }
        return new NetNs(new FileDescriptorHandle(fd), path);
    }

    /// <summary>The calling thread's network namespace.</summary>
    // thread-self, not self: after setns only this thread is in the new namespace, and
    // /proc/self/ns/net names the namespace of the thread-group leader.
    public static NetNs Current() => Open("/proc/thread-self/ns/net");

    /// <summary>Runs <paramref name="action"/> on a new thread that has entered this namespace; exceptions propagate.</summary>
    public T Run<T>(Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        // setns changes the calling *thread* for good and there is no safe way back on a shared
        // thread, so this never runs on the caller's or a thread-pool thread: a dedicated thread
        // enters the namespace, does the work and exits, taking the namespace switch with it.
        var thread = new Thread(() =>
        {
            try
            {
                Enter();
                result = action();
            }
#pragma warning disable CA1031 // rethrown on the calling thread below
            catch (Exception e)
#pragma warning restore CA1031
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "trellis-netns",
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    /// <summary>Runs <paramref name="action"/> on a new thread that has entered this namespace; exceptions propagate.</summary>
    public void Run(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        Run<bool>(() =>
        {
            action();
            return true;
        });
    }

    /// <summary>The nsfs device and inode, which identify a namespace (equal pairs = same namespace).</summary>
    public unsafe (ulong Dev, ulong Ino) Identity()
    {
        Interop.Statx buffer = default;
        if (Interop.StatX(_handle, "", Interop.AT_EMPTY_PATH, Interop.STATX_INO, &buffer) != 0)
        {
            throw new NetlinkException(Marshal.GetLastPInvokeError(), "statx", "netns '" + _path + "'");
        }
        return (MakeDev(buffer.DevMajor, buffer.DevMinor), buffer.Ino);
    }

    public void Dispose() => _handle.Dispose();

    public override string ToString() => "netns '" + _path + "'";

    /// <summary>setns(2) on the calling thread; only ever called on a thread created for it.</summary>
    private void Enter()
    {
        if (Interop.SetNs(_handle, Interop.CLONE_NEWNET) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            // EINVAL here means the fd is not a network namespace (e.g. a regular file).
            throw new NetlinkException(errno, "setns", "netns '" + _path + "'");
        }
    }

    // glibc's gnu_dev_makedev, so Dev matches st_dev from stat(1).
    private static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8)
        | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);
}
