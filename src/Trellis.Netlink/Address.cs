using System.Net;
using Trellis.Model;

namespace Trellis.Netlink;

/// <summary>An interface address as RTM_NEWADDR describes it (<c>ip addr show</c>).</summary>
/// <param name="Flags">IFA_F_* (permanent, nodad, tentative, ...), from IFA_FLAGS when present.</param>
/// <param name="Label">IFA_LABEL (IPv4 only).</param>
public sealed record Address(int Index, IPCidr Cidr, RouteScope Scope, uint Flags, string? Label)
{
    public IPAddress? Broadcast { get; init; }

    public override string ToString() => $"{Cidr} dev {Index} scope {Scope}";
}

/// <summary>Options for <see cref="RtNetlink.AddrAdd"/> and <see cref="RtNetlink.AddrReplace"/>.</summary>
public sealed record AddrOptions
{
    /// <summary>IPv4 broadcast; when null it is computed (the last address of the subnet) for prefixes shorter than /31.</summary>
    public IPAddress? Broadcast { get; init; }

    public RouteScope Scope { get; init; }

    /// <summary>IFA_F_NODAD: skip IPv6 duplicate address detection, so the address is usable at once.</summary>
    public bool NoDad { get; init; }
}
