using System.Net;
using Trellis.Core.Cni;
using Trellis.Core.Ipam;

namespace Trellis.Core.Tests.Ipam;

public class IpAllocatorTests
{
    private static IpRange Range(string subnet, string? start = null, string? end = null, string? gateway = null) =>
        IpRange.Create(IPNetwork.Parse(subnet), Ip(start), Ip(end), Ip(gateway), "r");

    private static RangeSet Set(params IpRange[] ranges) => new(0, "ipam.ranges[0]", ranges);

    private static IPAddress? Ip(string? s) => s is null ? null : IPAddress.Parse(s);

    private static Func<IPAddress, bool> Taken(params string[] ips)
    {
        var set = ips.Select(IPAddress.Parse).ToHashSet();
        return set.Contains;
    }

    private static string Next(RangeSet set, string? last, params string[] taken) =>
        IpAllocator.Allocate(set, Taken(taken), Ip(last), null).Address.ToString();

    [Fact]
    public void First_allocation_skips_the_gateway_and_carries_prefix_and_gateway()
    {
        var a = IpAllocator.Allocate(Set(Range("10.244.1.0/24")), Taken(), null, null);
        Assert.Equal("10.244.1.2/24", a.Address.ToString());
        Assert.Equal(IPAddress.Parse("10.244.1.1"), a.Gateway);
    }

    [Fact]
    public void Round_robin_continues_after_the_last_reserved_address()
    {
        var set = Set(Range("10.244.1.0/24"));
        Assert.Equal("10.244.1.11/24", Next(set, "10.244.1.10"));
        Assert.Equal("10.244.1.13/24", Next(set, "10.244.1.10", "10.244.1.11", "10.244.1.12"));
        // An earlier address that was released is not reused before the range has cycled.
        Assert.Equal("10.244.1.11/24", Next(set, "10.244.1.10", "10.244.1.2"));
    }

    [Fact]
    public void Wraps_around_to_the_range_start_and_tries_the_last_reserved_address_last()
    {
        var set = Set(Range("10.244.1.0/24", "10.244.1.10", "10.244.1.12"));
        Assert.Equal("10.244.1.10/24", Next(set, "10.244.1.12"));
        Assert.Equal("10.244.1.11/24", Next(set, "10.244.1.12", "10.244.1.10"));
        Assert.Equal("10.244.1.12/24", Next(set, "10.244.1.12", "10.244.1.10", "10.244.1.11"));
    }

    [Fact]
    public void Last_reserved_outside_the_set_restarts_at_the_first_range()
    {
        var set = Set(Range("10.244.1.0/24", "10.244.1.50", "10.244.1.60"));
        Assert.Equal("10.244.1.50/24", Next(set, "10.9.9.9"));
        Assert.Equal("10.244.1.50/24", Next(set, "fd00::1"));
    }

    [Fact]
    public void Gateway_inside_an_explicit_range_is_skipped()
    {
        var set = Set(Range("10.244.1.0/24", "10.244.1.100", "10.244.1.102", "10.244.1.101"));
        Assert.Equal("10.244.1.102/24", Next(set, "10.244.1.100"));
        Assert.Equal("10.244.1.100/24", Next(set, "10.244.1.102"));
        Assert.Equal(UInt128.One + UInt128.One, IpAllocator.Capacity(set));
    }

    [Fact]
    public void Walks_across_several_ranges_of_one_set()
    {
        var set = Set(Range("10.244.1.0/24", "10.244.1.253"), Range("10.244.2.0/24", "10.244.2.10", "10.244.2.11"));
        Assert.Equal("10.244.1.254/24", Next(set, "10.244.1.253"));
        var a = IpAllocator.Allocate(set, Taken(), IPAddress.Parse("10.244.1.254"), null);
        Assert.Equal("10.244.2.10/24", a.Address.ToString());
        Assert.Equal(IPAddress.Parse("10.244.2.1"), a.Gateway);
        Assert.Equal("10.244.1.253/24", Next(set, "10.244.2.11"));
    }

    [Fact]
    public void Exhausted_set_is_error_999_naming_the_set()
    {
        var set = Set(Range("10.244.1.0/29"));
        var all = Enumerable.Range(2, 5).Select(i => $"10.244.1.{i}").ToArray();
        var e = Assert.Throws<CniException>(() => Next(set, null, all));
        Assert.Equal(CniErrorCode.Internal, e.Code);
        Assert.Equal("ipam.ranges[0]: no IP addresses available in range set 10.244.1.1-10.244.1.6", e.Message);
        Assert.Equal(UInt128.Zero, IpAllocator.CountFree(set, all.Select(IPAddress.Parse)));
        Assert.Equal((UInt128)5, IpAllocator.Capacity(set));
    }

    [Fact]
    public void Requested_address_is_given_when_free_and_refused_otherwise()
    {
        var set = Set(Range("10.244.1.0/24", "10.244.1.10", "10.244.1.20"));
        var a = IpAllocator.Allocate(set, Taken(), null, IPAddress.Parse("10.244.1.15"));
        Assert.Equal("10.244.1.15/24", a.Address.ToString());

        Assert.Contains("requested IP 10.244.1.15", Assert.Throws<CniException>(() => IpAllocator.Allocate(set, Taken("10.244.1.15"), null, IPAddress.Parse("10.244.1.15"))).Message, StringComparison.Ordinal);
        Assert.Contains("requested IP 10.244.1.30", Assert.Throws<CniException>(() => IpAllocator.Allocate(set, Taken(), null, IPAddress.Parse("10.244.1.30"))).Message, StringComparison.Ordinal);
        var gw = Set(Range("10.244.1.0/24"));
        var e = Assert.Throws<CniException>(() => IpAllocator.Allocate(gw, Taken(), null, IPAddress.Parse("10.244.1.1")));
        Assert.Equal(CniErrorCode.Internal, e.Code);
        Assert.Contains("gateway", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Multiple_range_sets_get_one_requested_address_each()
    {
        var v4 = new RangeSet(0, "ipam.ranges[0]", [Range("10.244.1.0/24")]);
        var v6 = new RangeSet(1, "ipam.ranges[1]", [Range("fd00:10:244:1::/64")]);
        var other = new RangeSet(2, "ipam.ranges[2]", [Range("10.250.0.0/24")]);
        var assigned = IpAllocator.AssignRequested([v4, v6, other], [IPAddress.Parse("fd00:10:244:1::9"), IPAddress.Parse("10.244.1.9")]);
        Assert.Equal([IPAddress.Parse("10.244.1.9"), IPAddress.Parse("fd00:10:244:1::9"), null], assigned);

        // Per set: the requested one, else round robin. One address per set.
        var sets = new[] { v4, v6, other };
        var got = sets.Select((s, i) => IpAllocator.Allocate(s, Taken(), null, assigned[i]).Address.ToString()).ToArray();
        Assert.Equal(["10.244.1.9/24", "fd00:10:244:1::9/64", "10.250.0.2/24"], got);

        var e = Assert.Throws<CniException>(() => IpAllocator.AssignRequested([v4, v6], [IPAddress.Parse("10.244.1.9"), IPAddress.Parse("10.244.1.10")]));
        Assert.Equal(CniErrorCode.Internal, e.Code);
        Assert.StartsWith("requested IP 10.244.1.10:", e.Message, StringComparison.Ordinal);
        Assert.Throws<CniException>(() => IpAllocator.AssignRequested([v4], [IPAddress.Parse("192.168.0.1")]));
    }

    [Fact]
    public void IPv6_allocates_from_network_plus_two_and_skips_no_broadcast()
    {
        var set = Set(Range("fd00:10:244:1::/120"));
        Assert.Equal("fd00:10:244:1::2/120", Next(set, null));
        var last = IpAllocator.Allocate(set, Taken(), IPAddress.Parse("fd00:10:244:1::fe"), null);
        Assert.Equal("fd00:10:244:1::ff/120", last.Address.ToString());
        Assert.Equal("fd00:10:244:1::2/120", Next(set, "fd00:10:244:1::ff"));
        Assert.Equal((UInt128)254, IpAllocator.Capacity(set));
    }

    [Fact]
    public void Huge_IPv6_set_allocates_without_enumerating()
    {
        var set = Set(Range("fd00::/8"));
        Assert.Equal("fd00::2/8", Next(set, null));
        Assert.Equal(UInt128.MaxValue >> 8, IpAllocator.Capacity(set) + 1 + 0);
        Assert.Equal(IpAllocator.Capacity(set) - 2, IpAllocator.CountFree(set, [IPAddress.Parse("fd00::2"), IPAddress.Parse("fd00::2"), IPAddress.Parse("fd00::3"), IPAddress.Parse("fd00::1"), IPAddress.Parse("10.0.0.1")]));
    }

    [Fact]
    public void Network_and_broadcast_are_never_handed_out_even_if_a_range_claims_them()
    {
        // Built directly, bypassing IpRange.Create's checks, as a store could rebuild it.
        var raw = new IpRange(IPNetwork.Parse("10.244.1.0/30"), IPAddress.Parse("10.244.1.0"), IPAddress.Parse("10.244.1.3"), IPAddress.Parse("10.244.1.1"));
        var set = Set(raw);
        Assert.Equal("10.244.1.2/30", Next(set, null));
        Assert.Equal("10.244.1.2/30", Next(set, "10.244.1.2"));
        Assert.Equal(UInt128.One, raw.Capacity);
        Assert.Throws<CniException>(() => IpAllocator.Allocate(set, Taken(), null, IPAddress.Parse("10.244.1.3")));
    }

    [Fact]
    public void CountFree_ignores_addresses_outside_the_set_and_the_gateway()
    {
        var set = Set(Range("10.244.1.0/24"));
        Assert.Equal((UInt128)251, IpAllocator.CountFree(set, new[] { "10.244.1.2", "10.244.1.3", "10.244.1.1", "10.9.0.1", "10.244.1.3" }.Select(IPAddress.Parse)));
    }
}
