using System.Runtime.InteropServices;

namespace Trellis.IpamStore;

internal static partial class Interop
{
    internal const int LOCK_EX = 2;
    internal const int EINTR = 4;
    internal const int O_RDWR = 2;
    internal const int O_CREAT = 0x40;
    internal const int O_CLOEXEC = 0x80000;

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int flock(SafeHandle fd, int operation);

    // Not File.OpenHandle: .NET emulates FileShare on Unix with its own non-blocking flock on the
    // same file, which collides with the blocking LOCK_EX we take and fails with a sharing violation.
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags, int mode);
}
