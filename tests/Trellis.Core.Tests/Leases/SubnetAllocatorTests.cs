using System.Net;
using Trellis.Core.Leases;
using Trellis.Core.Routing;

namespace Trellis.Core.Tests.Leases;

public class SubnetAllocatorTests
{
    private static readonly DateTimeOffset s_now = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly IPNetwork s_cluster = IPNetwork.Parse("10.244.0.0/16");

    /// <summary>Always picks the first candidate: the allocator's choice becomes the lowest free subnet.</summary>
    private sealed class FirstRandom : Random
    {
        public override int Next(int maxValue) => 0;
    }

    private static VersionedLease Lease(string subnet, string node, bool expired = false, long revision = 7) =>
        new(new SubnetLease(IPNetwork.Parse(subnet), node, IPAddress.Parse("172.30.0.99"), MacAddress.ForNode(node),
            expired ? s_now.AddMinutes(-1) : s_now.AddHours(12)), revision);

    private static SubnetChoice Choose(IReadOnlyList<VersionedLease> existing, string node = "node-1", string? previous = null,
        string cluster = "10.244.0.0/16", int length = 24, Random? rng = null) =>
        SubnetAllocator.Choose(IPNetwork.Parse(cluster), length, existing, node,
            previous is null ? null : IPNetwork.Parse(previous), s_now, rng ?? new FirstRandom());

    public static TheoryData<string, VersionedLease[], string?, SubnetChoiceKind, SubnetChoiceReason, string?, long> Table() => new()
    {
        // name, existing, previous, kind, reason, subnet, expected revision
        { "empty store: lowest free, never subnet 0", [], null, SubnetChoiceKind.Create, SubnetChoiceReason.Free, "10.244.1.0/24", 0 },
        { "previous subnet, free", [], "10.244.7.0/24", SubnetChoiceKind.Create, SubnetChoiceReason.Previous, "10.244.7.0/24", 0 },
        { "own live lease is renewed", [Lease("10.244.5.0/24", "node-1", revision: 11)], null, SubnetChoiceKind.Update, SubnetChoiceReason.OwnLease, "10.244.5.0/24", 11 },
        { "own expired lease is renewed too", [Lease("10.244.5.0/24", "node-1", expired: true, revision: 12)], null, SubnetChoiceKind.Update, SubnetChoiceReason.OwnLease, "10.244.5.0/24", 12 },
        { "own lease beats previous", [Lease("10.244.5.0/24", "node-1")], "10.244.7.0/24", SubnetChoiceKind.Update, SubnetChoiceReason.OwnLease, "10.244.5.0/24", 7 },
        { "previous held by an expired lease is taken back", [Lease("10.244.7.0/24", "node-9", expired: true, revision: 13)], "10.244.7.0/24", SubnetChoiceKind.Update, SubnetChoiceReason.PreviousExpired, "10.244.7.0/24", 13 },
        { "previous held by a live lease is not stolen", [Lease("10.244.7.0/24", "node-9")], "10.244.7.0/24", SubnetChoiceKind.Create, SubnetChoiceReason.Free, "10.244.1.0/24", 0 },
        { "taken subnets are skipped", [Lease("10.244.1.0/24", "node-2"), Lease("10.244.2.0/24", "node-3")], null, SubnetChoiceKind.Create, SubnetChoiceReason.Free, "10.244.3.0/24", 0 },
        { "expired leases are not free while never-used subnets remain", [Lease("10.244.1.0/24", "node-2", expired: true)], null, SubnetChoiceKind.Create, SubnetChoiceReason.Free, "10.244.2.0/24", 0 },
        { "previous subnet 0 is not given back", [], "10.244.0.0/24", SubnetChoiceKind.Create, SubnetChoiceReason.Free, "10.244.1.0/24", 0 },
        { "previous of another length is ignored", [], "10.244.7.0/25", SubnetChoiceKind.Create, SubnetChoiceReason.Free, "10.244.1.0/24", 0 },
        { "previous outside the cluster is ignored", [], "10.245.7.0/24", SubnetChoiceKind.Create, SubnetChoiceReason.Free, "10.244.1.0/24", 0 },
        { "a live lease of another shape blocks what it covers", [Lease("10.244.0.0/23", "old"), Lease("10.244.2.0/25", "old2", expired: true)], null, SubnetChoiceKind.Create, SubnetChoiceReason.Free, "10.244.3.0/24", 0 },
        { "previous covered by a lease of another shape is not taken", [Lease("10.244.6.0/23", "old")], "10.244.7.0/24", SubnetChoiceKind.Create, SubnetChoiceReason.Free, "10.244.1.0/24", 0 },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Chooses_like_flannel(string name, VersionedLease[] existing, string? previous, SubnetChoiceKind kind, SubnetChoiceReason reason, string? subnet, long revision)
    {
        var choice = Choose(existing, previous: previous);
        Assert.True(kind == choice.Kind, $"{name}: {choice}");
        Assert.Equal(reason, choice.Reason);
        Assert.Equal(subnet is null ? null : IPNetwork.Parse(subnet), choice.Subnet);
        Assert.Equal(revision, choice.ExpectedRevision);
        Assert.Equal(subnet is null ? null : SubnetLease.KeyFor(IPNetwork.Parse(subnet)), choice.Key);
    }

    [Fact]
    public void Subnet_zero_is_never_chosen_even_when_it_is_the_only_one_left()
    {
        // /16 in /17s: subnet 0 (10.244.0.0/17) and subnet 1 (10.244.128.0/17); 1 is taken.
        var choice = Choose([Lease("10.244.128.0/17", "node-2")], length: 17);
        Assert.Equal(SubnetChoiceKind.Refused, choice.Kind);
        Assert.Equal(SubnetChoiceReason.Exhausted, choice.Reason);
        Assert.Equal("no /17 left in 10.244.0.0/16: 1 leased; the first, 10.244.0.0/17, is never leased", choice.Message);
    }

    [Fact]
    public void Exhaustion_says_how_many_are_leased()
    {
        var all = Enumerable.Range(1, 255).Select(i => Lease($"10.244.{i}.0/24", $"node-{i + 1}")).ToArray();
        var choice = Choose(all);
        Assert.Equal(SubnetChoiceKind.Refused, choice.Kind);
        Assert.Null(choice.Subnet);
        Assert.Equal("no /24 left in 10.244.0.0/16: 255 leased; the first, 10.244.0.0/24, is never leased", choice.Message);
    }

    [Fact]
    public void When_full_an_expired_lease_of_another_node_is_reclaimed_by_revision()
    {
        var all = Enumerable.Range(1, 255).Select(i => Lease($"10.244.{i}.0/24", $"node-{i + 1}", expired: i == 200, revision: i)).ToArray();
        var choice = Choose(all);
        Assert.Equal(SubnetChoiceKind.Update, choice.Kind);
        Assert.Equal(SubnetChoiceReason.ReclaimExpired, choice.Reason);
        Assert.Equal(IPNetwork.Parse("10.244.200.0/24"), choice.Subnet);
        Assert.Equal(200, choice.ExpectedRevision);
        Assert.Contains("node-201", choice.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Own_duplicate_and_misfit_leases_are_released()
    {
        var keep = Lease("10.244.5.0/24", "node-1", revision: 1);
        var dup = Lease("10.244.9.0/24", "node-1", revision: 2);
        var misfit = Lease("10.250.0.0/24", "node-1", revision: 3);
        var choice = Choose([dup, misfit, keep], previous: "10.244.5.0/24");
        Assert.Equal(SubnetChoiceReason.OwnLease, choice.Reason);
        Assert.Equal(IPNetwork.Parse("10.244.5.0/24"), choice.Subnet);
        Assert.Equal([2L, 3L], choice.Release.Select(l => l.Revision).Order());
    }

    [Fact]
    public void An_own_lease_that_no_longer_fits_is_released_and_a_new_one_chosen()
    {
        var old = Lease("10.244.5.0/25", "node-1", revision: 4); // the subnet length changed from /25 to /24
        var choice = Choose([old]);
        Assert.Equal(SubnetChoiceKind.Create, choice.Kind);
        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), choice.Subnet);
        Assert.Equal(4, Assert.Single(choice.Release).Revision);
    }

    [Fact]
    public void A_random_pick_stays_among_the_first_hundred_free_subnets()
    {
        var taken = Enumerable.Range(1, 10).Select(i => Lease($"10.244.{i}.0/24", $"n{i}")).ToArray();
        var seen = new HashSet<IPNetwork>();
        var rng = new Random(1234);
        for (int i = 0; i < 500; i++)
        {
            var choice = Choose(taken, rng: rng);
            Assert.Equal(SubnetChoiceReason.Free, choice.Reason);
            var index = (IPAddressIndex(choice.Subnet!.Value) - IPAddressIndex(s_cluster)) >> 8;
            Assert.InRange(index, 11, 110);
            seen.Add(choice.Subnet.Value);
        }
        Assert.True(seen.Count > 50, $"only {seen.Count} distinct picks");

        static long IPAddressIndex(IPNetwork n) => (long)Trellis.Model.IPAddressMath.ToInteger(n.BaseAddress);
    }

    [Fact]
    public void Huge_ipv6_spaces_are_searched_without_walking_them()
    {
        var choice = SubnetAllocator.Choose(IPNetwork.Parse("fd00:10:244::/48"), 64, [Lease("fd00:10:244:1::/64", "node-2")], "node-1", null, s_now, new FirstRandom());
        Assert.Equal(IPNetwork.Parse("fd00:10:244:2::/64"), choice.Subnet);

        // A /16 in /112s is 2^96 subnets; one odd lease covering the first /17 is skipped in one step.
        choice = SubnetAllocator.Choose(IPNetwork.Parse("fd00::/16"), 112, [Lease("fd00::/17", "old")], "node-1", null, s_now, new FirstRandom());
        Assert.Equal(IPNetwork.Parse("fd00:8000::/112"), choice.Subnet);
    }

    [Theory]
    [InlineData("10.244.0.0/16", 16)]
    [InlineData("10.244.0.0/16", 15)]
    [InlineData("10.244.0.0/16", 31)]
    [InlineData("fd00::/48", 127)]
    public void Impossible_splits_are_refused_with_the_reason(string cluster, int length)
    {
        var choice = Choose([], cluster: cluster, length: length);
        Assert.Equal(SubnetChoiceKind.Refused, choice.Kind);
        Assert.Equal(SubnetChoiceReason.InvalidConfig, choice.Reason);
        Assert.Contains($"/{length}", choice.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cas_loop_with_two_nodes_racing_ends_with_distinct_subnets()
    {
        // A tiny in-memory "store": key -> (lease, revision). Both nodes list, then node-b's create loses.
        var store = new Dictionary<string, VersionedLease>();
        long revision = 0;
        bool Create(SubnetLease l)
        {
            if (store.ContainsKey(l.Key))
            {
                return false;
            }
            store[l.Key] = new VersionedLease(l, ++revision);
            return true;
        }

        var snapshot = store.Values.ToList();
        var a = Choose(snapshot, node: "node-a");
        var b = Choose(snapshot, node: "node-b");
        Assert.Equal(a.Subnet, b.Subnet); // same view, same deterministic pick: a conflict
        Assert.True(Create(new SubnetLease(a.Subnet!.Value, "node-a", IPAddress.Parse("172.30.0.11"), null, s_now.AddHours(24))));
        Assert.False(Create(new SubnetLease(b.Subnet!.Value, "node-b", IPAddress.Parse("172.30.0.12"), null, s_now.AddHours(24))));

        b = Choose(store.Values.ToList(), node: "node-b"); // re-list, choose again
        Assert.True(Create(new SubnetLease(b.Subnet!.Value, "node-b", IPAddress.Parse("172.30.0.12"), null, s_now.AddHours(24))));
        Assert.NotEqual(a.Subnet, b.Subnet);

        // And a restart of node-a finds its own lease again.
        Assert.Equal(SubnetChoiceReason.OwnLease, Choose(store.Values.ToList(), node: "node-a").Reason);
    }
}
