using System.Globalization;

namespace Trellis.Netlink;

/// <summary>
/// A failed netlink (or namespace) operation: the errno the kernel returned, the operation
/// ("RTM_NEWLINK"), the object it was applied to ("veth 'trl1234' (peer 'eth0')") and, when the
/// kernel sent one, its extended-ack message. Malformed replies are reported as EBADMSG.
/// </summary>
public sealed class NetlinkException : Exception
{
    public NetlinkException()
        : this(0, "netlink", null)
    {
    }

    public NetlinkException(string message)
        : base(message)
    {
        Operation = "netlink";
        ErrnoName = Netlink.Errno.Name(0);
    }

    public NetlinkException(string message, Exception innerException)
        : base(message, innerException)
    {
        Operation = "netlink";
        ErrnoName = Netlink.Errno.Name(0);
    }

    public NetlinkException(int errno, string operation, string? target, string? kernelMessage = null)
        : base(Format(errno, operation, target, kernelMessage))
    {
        Errno = errno;
        ErrnoName = Netlink.Errno.Name(errno);
        Operation = operation;
        Target = target;
        KernelMessage = kernelMessage;
    }

    /// <summary>Positive errno (EEXIST = 17).</summary>
    public int Errno { get; }

    /// <summary>Symbolic errno ("EEXIST").</summary>
    public string ErrnoName { get; }

    /// <summary>The request ("RTM_NEWLINK") or system call ("open") that failed.</summary>
    public string Operation { get; }

    /// <summary>The object of the operation, as written in the message ("link 'eth0'").</summary>
    public string? Target { get; }

    /// <summary>The kernel's extended-ack text (NLMSGERR_ATTR_MSG), when present.</summary>
    public string? KernelMessage { get; }

    /// <summary>The object does not exist (ENOENT, ENODEV, ESRCH, EADDRNOTAVAIL, ENXIO).</summary>
    public bool IsNotFound => IsNotFoundErrno(Errno);

    /// <summary>The object already exists (EEXIST).</summary>
    public bool IsExists => Errno == Netlink.Errno.EEXIST;

    /// <summary>A reply failed to parse (EBADMSG).</summary>
    public bool IsMalformed => Errno == Netlink.Errno.EBADMSG;

    internal static bool IsNotFoundErrno(int errno) =>
        errno is Netlink.Errno.ENOENT or Netlink.Errno.ENODEV or Netlink.Errno.ESRCH
            or Netlink.Errno.EADDRNOTAVAIL or Netlink.Errno.ENXIO;

    internal static NetlinkException Malformed(string detail) =>
        new(Netlink.Errno.EBADMSG, "decode", "malformed netlink message: " + detail);

    private static string Format(int errno, string operation, string? target, string? kernelMessage)
    {
        string text = string.IsNullOrEmpty(target) ? operation : operation + " " + target;
        string reason = errno == 0
            ? "failed"
            : string.Create(CultureInfo.InvariantCulture, $"{Netlink.Errno.Describe(errno)} ({Netlink.Errno.Name(errno)})");
        return string.IsNullOrEmpty(kernelMessage)
            ? text + ": " + reason
            : text + ": " + reason + ": " + kernelMessage;
    }
}
