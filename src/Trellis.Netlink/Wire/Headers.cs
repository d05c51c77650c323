using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Trellis.Netlink.Wire;

// Fixed headers of the rtnetlink families, laid out exactly as in the UAPI headers. All fields are
// in host byte order, and every size is a multiple of NLMSG_ALIGNTO (4), so the attributes that
// follow start right after the header.

/// <summary>struct nlmsghdr</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NlMsgHdr
{
    public uint Length;
    public ushort Type;
    public ushort Flags;
    public uint Sequence;
    public uint PortId;
}

/// <summary>struct ifinfomsg (RTM_*LINK)</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IfInfoMsg
{
    public byte Family;
    public byte Pad;
    public ushort Type;
    public int Index;
    public uint Flags;
    public uint Change;
}

/// <summary>struct ifaddrmsg (RTM_*ADDR)</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IfAddrMsg
{
    public byte Family;
    public byte PrefixLength;
    public byte Flags;
    public byte Scope;
    public int Index;
}

/// <summary>struct rtmsg (RTM_*ROUTE)</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct RtMsg
{
    public byte Family;
    public byte DstLength;
    public byte SrcLength;
    public byte Tos;
    public byte Table;
    public byte Protocol;
    public byte Scope;
    public byte Type;
    public uint Flags;
}

/// <summary>struct ndmsg (RTM_*NEIGH, also the bridge FDB with family AF_BRIDGE)</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NdMsg
{
    public byte Family;
    public byte Pad1;
    public ushort Pad2;
    public int Index;
    public ushort State;
    public byte Flags;
    public byte Type;
}

internal static class Headers
{
    public const int NlMsgHdrSize = 16;

    public static int Align(int length) => (length + 3) & ~3;

    /// <summary>
    /// Reads the family header at the start of a message payload and returns the attribute
    /// area after it; a payload too short for the header is a malformed message.
    /// </summary>
    public static T Read<T>(ReadOnlySpan<byte> payload, string name, out ReadOnlySpan<byte> attributes)
        where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        if (payload.Length < size)
        {
            throw NetlinkException.Malformed($"{name} needs {size} bytes, the payload has {payload.Length}");
        }
        attributes = payload.Slice(size);
        return MemoryMarshal.Read<T>(payload);
    }
}
