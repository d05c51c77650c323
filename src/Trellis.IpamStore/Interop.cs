using System.Runtime.InteropServices;

namespace Trellis.IpamStore;

internal static partial class Interop
{
    internal const int LOCK_EX = 2;
    internal const int LOCK_NB = 4;
    internal const int EINTR = 4;
    internal const int O_RDWR = 2;
    internal const int O_CREAT = 0x40;
    internal const int O_CLOEXEC = 0x80000;

    internal const int O_WRONLY = 1;
    internal const int O_EXCL = 0x80;
    internal const int O_TRUNC = 0x200;
    internal const int EEXIST = 17;

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int flock(SafeHandle fd, int operation);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    internal static unsafe partial nint Write(int fd, byte* buf, nint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "symlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Symlink(string target, string linkPath);

    // Not File.OpenHandle: .NET emulates FileShare on Unix with its own non-blocking flock on the
    // same file, which collides with the blocking LOCK_EX we take and fails with a sharing violation.
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags, int mode);
}
