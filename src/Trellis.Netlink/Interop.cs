using System.Runtime.InteropServices;

namespace Trellis.Netlink;

/// <summary>The libc calls this library needs. Blittable signatures only, so the generated stubs are NativeAOT-safe.</summary>
internal static unsafe partial class Interop
{
    private const string Libc = "libc";

    public const int SOCK_RAW = 3;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;
    public const int CLONE_NEWNET = 0x40000000;
    public const int MSG_TRUNC = 0x20;
    public const int MSG_DONTWAIT = 0x40;
    public const int SOL_SOCKET = 1;
    public const int SO_RCVTIMEO = 20;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_INO = 0x100;

    /// <summary>struct sockaddr_nl</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SockAddrNetlink
    {
        public ushort Family;
        public ushort Pad;
        public uint PortId;
        public uint Groups;
    }

    /// <summary>struct timeval (64-bit)</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TimeVal
    {
        public long Seconds;
        public long Microseconds;
    }

    /// <summary>
    /// struct statx, only up to the fields read here; it is architecture-independent, unlike
    /// struct stat, which is why Identity() uses statx rather than fstat.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statx
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }

    // socket and open return a C int: they must not be declared as returning a SafeHandle,
    // whose native form is pointer-sized, or -1 would arrive as 0xffffffff and look valid.
    [LibraryImport(Libc, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Libc, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(FileDescriptorHandle fd, SockAddrNetlink* address, int addressLength);

    [LibraryImport(Libc, EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(FileDescriptorHandle fd, SockAddrNetlink* address, int* addressLength);

    [LibraryImport(Libc, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(FileDescriptorHandle fd, int level, int name, void* value, int valueLength);

    [LibraryImport(Libc, EntryPoint = "sendto", SetLastError = true)]
    public static partial nint SendTo(FileDescriptorHandle fd, byte* buffer, nuint length, int flags, SockAddrNetlink* address, int addressLength);

    [LibraryImport(Libc, EntryPoint = "recvfrom", SetLastError = true)]
    public static partial nint RecvFrom(FileDescriptorHandle fd, byte* buffer, nuint length, int flags, SockAddrNetlink* address, int* addressLength);

    [LibraryImport(Libc, EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(FileDescriptorHandle fd, int nsType);

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int StatX(FileDescriptorHandle dirFd, string path, int flags, uint mask, Statx* buffer);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}

/// <summary>An owned file descriptor, closed exactly once.</summary>
internal sealed class FileDescriptorHandle : SafeHandle
{
    public FileDescriptorHandle()
        : base(-1, ownsHandle: true)
    {
    }

    public FileDescriptorHandle(int fd)
        : base(-1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle < 0;

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Interop.Close((int)handle) == 0;
}
