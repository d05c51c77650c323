using System.Globalization;
using System.Runtime.InteropServices;

namespace Trellis.Netlink;

/// <summary>Linux errno values (asm-generic, identical on x86-64 and arm64) and their symbolic names.</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int ERANGE = 34;
    public const int EBADMSG = 74;
    public const int EMSGSIZE = 90;
    public const int EOPNOTSUPP = 95;
    public const int EAFNOSUPPORT = 97;
    public const int EADDRNOTAVAIL = 99;
    public const int ENETUNREACH = 101;
    public const int ENOBUFS = 105;
    public const int ETIMEDOUT = 110;

    public static string Name(int errno) => errno switch
    {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        5 => "EIO",
        ENXIO => "ENXIO",
        7 => "E2BIG",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        14 => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        18 => "EXDEV",
        ENODEV => "ENODEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        EINVAL => "EINVAL",
        23 => "ENFILE",
        24 => "EMFILE",
        28 => "ENOSPC",
        ERANGE => "ERANGE",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        61 => "ENODATA",
        EBADMSG => "EBADMSG",
        75 => "EOVERFLOW",
        EMSGSIZE => "EMSGSIZE",
        92 => "ENOPROTOOPT",
        93 => "EPROTONOSUPPORT",
        EOPNOTSUPP => "EOPNOTSUPP",
        96 => "EPFNOSUPPORT",
        EAFNOSUPPORT => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        EADDRNOTAVAIL => "EADDRNOTAVAIL",
        100 => "ENETDOWN",
        ENETUNREACH => "ENETUNREACH",
        ENOBUFS => "ENOBUFS",
        107 => "ENOTCONN",
        ETIMEDOUT => "ETIMEDOUT",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        524 => "ENOTSUPP", // kernel-internal, but leaks out of some drivers
        _ => "errno " + errno.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>strerror text ("File exists").</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
