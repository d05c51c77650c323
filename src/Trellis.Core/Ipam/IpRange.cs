using System.Net;
using System.Net.Sockets;
using Trellis.Core.Cni;
using Trellis.Model;

namespace Trellis.Core.Ipam;

/// <summary>
/// One host-local range: addresses <see cref="RangeStart"/>..<see cref="RangeEnd"/> (inclusive) of
/// <see cref="Subnet"/>. The gateway may lie inside the range; it is never handed out.
/// </summary>
public sealed record IpRange(IPNetwork Subnet, IPAddress RangeStart, IPAddress RangeEnd, IPAddress? Gateway)
{
    public AddressFamily Family => Subnet.BaseAddress.AddressFamily;

    public bool IsIPv4 => Family == AddressFamily.InterNetwork;

    /// <summary>Within RangeStart..RangeEnd and the same family (host-local's Range.Contains).</summary>
    public bool Contains(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != Family)
        {
            return false;
        }
        var v = IPAddressMath.ToInteger(address);
        return v >= IPAddressMath.ToInteger(RangeStart) && v <= IPAddressMath.ToInteger(RangeEnd);
    }

    /// <summary>Inside the range and neither the gateway, the network address nor the IPv4 broadcast.</summary>
    public bool IsAllocatable(IPAddress address) =>
        Contains(address) && !address.Equals(Gateway) && IsHostAddress(Subnet, address);

    /// <summary>How many addresses this range can hand out.</summary>
    public UInt128 Capacity
    {
        get
        {
            var (lo, hi) = HostBounds(Subnet);
            var start = UInt128.Max(IPAddressMath.ToInteger(RangeStart), lo);
            var end = UInt128.Min(IPAddressMath.ToInteger(RangeEnd), hi);
            if (start > end)
            {
                return UInt128.Zero;
            }
            var n = end - start + 1;
            if (Gateway is not null && Gateway.AddressFamily == Family)
            {
                var g = IPAddressMath.ToInteger(Gateway);
                if (g >= start && g <= end)
                {
                    n--;
                }
            }
            return n;
        }
    }

    public bool Overlaps(IpRange other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Family != Family)
        {
            return false;
        }
        return !(IPAddressMath.Compare(RangeEnd, other.RangeStart) < 0 || IPAddressMath.Compare(other.RangeEnd, RangeStart) < 0);
    }

    public override string ToString() => $"{RangeStart}-{RangeEnd}";

    /// <summary>
    /// Applies host-local's defaults and checks, naming <paramref name="path"/> in errors (code 7):
    /// rangeStart defaults to network+1, rangeEnd to the last address (broadcast-1 for IPv4), the
    /// gateway to network+1. A subnet needs room for at least two hosts (host-local refuses /31 and
    /// /32, /127 and /128). Unlike host-local, a rangeStart/rangeEnd/gateway on the network or
    /// broadcast address is refused rather than handed out later.
    /// </summary>
    public static IpRange Create(IPNetwork subnet, IPAddress? rangeStart, IPAddress? rangeEnd, IPAddress? gateway, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var family = subnet.BaseAddress.AddressFamily;
        int bits = family == AddressFamily.InterNetwork ? 32 : 128;
        if (subnet.PrefixLength > bits - 2)
        {
            throw CniException.Invalid(ConfigObject.Join(path, "subnet"), $"network {subnet} is too small to allocate from (at most /{bits - 2})");
        }
        var (lo, hi) = HostBounds(subnet);

        gateway ??= IPAddressMath.FromInteger(lo, family);
        CheckHost(subnet, gateway, ConfigObject.Join(path, "gateway"));
        var start = rangeStart ?? IPAddressMath.FromInteger(lo, family);
        CheckHost(subnet, start, ConfigObject.Join(path, "rangeStart"));
        var end = rangeEnd ?? IPAddressMath.FromInteger(hi, family);
        CheckHost(subnet, end, ConfigObject.Join(path, "rangeEnd"));
        if (IPAddressMath.Compare(start, end) > 0)
        {
            throw CniException.Invalid(ConfigObject.Join(path, "rangeEnd"), $"{end} is before rangeStart {start}");
        }
        var range = new IpRange(subnet, start, end, gateway);
        if (range.Capacity == 0)
        {
            throw CniException.Invalid(path, $"range {range} has no allocatable address (its only address is the gateway {gateway})");
        }
        return range;
    }

    /// <summary>Lowest and highest address a host may use: IPv4 excludes network and broadcast, IPv6 the subnet-router anycast.</summary>
    internal static (UInt128 Lo, UInt128 Hi) HostBounds(IPNetwork subnet)
    {
        var net = IPAddressMath.ToInteger(subnet.BaseAddress);
        var last = IPAddressMath.ToInteger(IPAddressMath.LastAddress(subnet));
        bool v4 = subnet.BaseAddress.AddressFamily == AddressFamily.InterNetwork;
        return (net + 1, v4 ? last - 1 : last);
    }

    internal static bool IsHostAddress(IPNetwork subnet, IPAddress address)
    {
        if (address.AddressFamily != subnet.BaseAddress.AddressFamily || !subnet.Contains(address))
        {
            return false;
        }
        var (lo, hi) = HostBounds(subnet);
        var v = IPAddressMath.ToInteger(address);
        return v >= lo && v <= hi;
    }

    private static void CheckHost(IPNetwork subnet, IPAddress address, string field)
    {
        if (address.AddressFamily != subnet.BaseAddress.AddressFamily)
        {
            throw CniException.Invalid(field, $"{address} is {IpText.FamilyName(address.AddressFamily)} but subnet {subnet} is {IpText.FamilyName(subnet.BaseAddress.AddressFamily)}");
        }
        if (!subnet.Contains(address))
        {
            throw CniException.Invalid(field, $"{address} is not in subnet {subnet}");
        }
        if (address.Equals(subnet.BaseAddress))
        {
            throw CniException.Invalid(field, $"{address} is the network address of {subnet}");
        }
        if (!IsHostAddress(subnet, address))
        {
            throw CniException.Invalid(field, $"{address} is the broadcast address of {subnet}");
        }
    }
}
