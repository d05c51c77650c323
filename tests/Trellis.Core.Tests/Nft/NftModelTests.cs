using Trellis.Core.Nft;
using Trellis.Core.Tests.NodeFirewall;
using NftCli = Trellis.Core.Tests.NodeFirewall.Nft;

namespace Trellis.Core.Tests.Nft;

/// <summary>Transactions behave as the kernel's: idempotent add, errors for missing/in-use objects, atomic failure.</summary>
public class NftModelTests
{
    private static NftModel With(string text)
    {
        var m = new NftModel();
        m.Apply(text);
        return m;
    }

    private const string Base = """
        add table ip t
        add chain ip t a
        add chain ip t b
        add chain ip t in { type filter hook input priority 0 ; }
        add set ip t s { type ipv4_addr ; }
        add map ip t m { type ipv4_addr : verdict ; }

        """;

    [Fact]
    public void Dump_is_canonical_and_replayable()
    {
        var m = With(Base + """
            add element ip t s { 10.0.0.2, 10.0.0.1 }
            add element ip t m { 10.0.0.9 : goto b, 10.0.0.3 : drop }
            add rule ip t a ip daddr @s jump b
            add rule ip t a   ip   daddr   10.0.0.1   accept   comment "x y"
            add table inet z
            add chain inet z p { type nat hook postrouting priority srcnat ; policy accept ; }
            """);
        Assert.Equal("""
            add table ip t
            add chain ip t a
            add chain ip t b
            add chain ip t in { type filter hook input priority 0 ; policy accept ; }
            add map ip t m { type ipv4_addr : verdict ; }
            add set ip t s { type ipv4_addr ; }
            add element ip t m { 10.0.0.3 : drop, 10.0.0.9 : goto b }
            add element ip t s { 10.0.0.1, 10.0.0.2 }
            add rule ip t a ip daddr @s jump b
            add rule ip t a ip daddr 10.0.0.1 accept comment "x y"
            add table inet z
            add chain inet z p { type nat hook postrouting priority 100 ; policy accept ; }

            """, m.Dump());
        Assert.Equal(m.Dump(), With(m.Dump()).Dump());
    }

    [Fact]
    public void Add_is_idempotent_create_is_not()
    {
        var m = With(Base + "add element ip t s { 10.0.0.1 }\nadd element ip t m { 10.0.0.1 : goto a }\n");
        string before = m.Dump();
        m.Apply(Base + "add element ip t s { 10.0.0.1 }\nadd element ip t m { 10.0.0.1 : goto a }\n");
        Assert.Equal(before, m.Dump());
        foreach (string create in new[] { "create table ip t", "create chain ip t a", "create set ip t s { type ipv4_addr ; }", "create element ip t s { 10.0.0.1 }" })
        {
            var e = Assert.Throws<NftApplyException>(() => m.Apply(create));
            Assert.True(e.IsExists, create);
        }
        Assert.Equal(before, m.Dump());
    }

    [Theory]
    [InlineData("add set ip t s { type inet_service ; }", NftErrorKind.Exists)]
    [InlineData("add map ip t s { type ipv4_addr : verdict ; }", NftErrorKind.Exists)]
    [InlineData("add element ip t m { 10.0.0.1 : goto b }", NftErrorKind.Exists)]
    [InlineData("add chain ip t a { type filter hook input priority 0 ; }", NftErrorKind.Exists)]
    [InlineData("add chain ip t in { type filter hook input priority 5 ; }", NftErrorKind.Invalid)]
    [InlineData("add chain ip t n { type nat hook forward priority 0 ; }", NftErrorKind.Invalid)]
    [InlineData("delete table ip nope", NftErrorKind.NotFound)]
    [InlineData("add chain ip nope x", NftErrorKind.NotFound)]
    [InlineData("delete chain ip t nope", NftErrorKind.NotFound)]
    [InlineData("flush chain ip t nope", NftErrorKind.NotFound)]
    [InlineData("delete set ip t nope", NftErrorKind.NotFound)]
    [InlineData("flush map ip t nope", NftErrorKind.NotFound)]
    [InlineData("delete element ip t s { 10.9.9.9 }", NftErrorKind.NotFound)]
    [InlineData("add element ip t nope { 10.9.9.9 }", NftErrorKind.NotFound)]
    [InlineData("add rule ip t nope accept", NftErrorKind.NotFound)]
    [InlineData("add rule ip t a jump nope", NftErrorKind.NotFound)]
    [InlineData("add rule ip t a jump in", NftErrorKind.Invalid)]
    [InlineData("add rule ip t a ip daddr @nope accept", NftErrorKind.NotFound)]
    [InlineData("add rule ip t a th dport @s accept", NftErrorKind.Invalid)]
    [InlineData("add rule ip t a ip daddr vmap @s", NftErrorKind.Invalid)]
    [InlineData("add rule ip t a ip6 daddr ::1 accept", NftErrorKind.Invalid)]
    [InlineData("add rule ip t a meta nfproto ipv4 accept", NftErrorKind.Invalid)]
    [InlineData("add element ip t m { 10.0.0.7 : goto nope }", NftErrorKind.NotFound)]
    [InlineData("delete chain ip t b", NftErrorKind.Busy)]
    [InlineData("delete set ip t s", NftErrorKind.Busy)]
    [InlineData("delete map ip t m", NftErrorKind.Busy)]
    [InlineData("delete chain ip t c", NftErrorKind.Busy)]
    [InlineData("delete rule ip t a handle 999", NftErrorKind.NotFound)]
    [InlineData("add rule ip t in masquerade", NftErrorKind.Invalid)]
    [InlineData("add rule ip t in meta l4proto tcp dnat to 10.0.0.1:80", NftErrorKind.Invalid)]
    [InlineData("add rule ip t b masquerade", NftErrorKind.Invalid)]
    [InlineData("add rule ip t c jump a", NftErrorKind.Invalid)]
    [InlineData("add chain ip t p { type filter hook postrouting priority 0 ; }\nadd rule ip t p reject", NftErrorKind.Invalid)]
    public void Kernel_refusals_are_typed_errors_and_change_nothing(string statement, NftErrorKind kind)
    {
        var m = With(RefusalSetup);
        string before = m.Dump();
        var e = Assert.Throws<NftApplyException>(() => m.Apply("add chain ip t fresh\n" + statement));
        Assert.Equal(kind, e.Kind);
        Assert.Equal(before, m.Dump());
    }

    // b is jumped to from "in", c is a map target; s and m are used by rules.
    private const string RefusalSetup = Base + """
        add chain ip t c
        add element ip t m { 10.0.0.1 : goto c }
        add rule ip t in jump a
        add rule ip t a jump b
        add rule ip t a ip daddr @s accept
        add rule ip t a ip daddr vmap @m

        """;

    public static TheoryData<string> RefusalRows => [.. typeof(NftModelTests).GetMethod(nameof(Kernel_refusals_are_typed_errors_and_change_nothing))!
        .GetCustomAttributes(typeof(InlineDataAttribute), false).Cast<InlineDataAttribute>().Select(a => (string)a.GetData(null!).Single()[0])];

    [NftTheory]
    [MemberData(nameof(RefusalRows))]
    public void Real_nft_refuses_what_the_model_refuses(string statement)
    {
        var (code, output) = NftCli.InFreshNetns("nft -f \"$1\" || exit 99; nft -f \"$2\"", RefusalSetup, "add chain ip t fresh\n" + statement + "\n");
        Assert.True(code != 99, "setup refused: " + output);
        Assert.True(code != 0, $"real nft accepted what the model refuses: {statement}");
    }

    [Fact]
    public void Failure_late_in_a_transaction_undoes_its_earlier_statements()
    {
        var m = With(Base);
        string before = m.Dump();
        var e = Assert.Throws<NftApplyException>(() => m.Apply("""
            add table ip other
            add element ip t s { 10.0.0.1 }
            flush chain ip t a
            delete chain ip t b
            add rule ip t a jump missing
            """));
        Assert.Equal(5, e.Line);
        Assert.Contains("missing", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, m.Dump());
        Assert.Null(m.FindTable(NftFamily.Ip, "other"));
    }

    [Fact]
    public void Flush_and_delete()
    {
        var m = With(Base + """
            add element ip t s { 10.0.0.1, 10.0.0.2 }
            add element ip t m { 10.0.0.1 : goto b, 10.0.0.2 : accept }
            add rule ip t a counter
            add rule ip t in jump a
            """);
        m.Apply("flush table ip t");
        var t = m.FindTable(NftFamily.Ip, "t")!;
        Assert.Empty(t.Chains["a"].Rules);
        Assert.Empty(t.Chains["in"].Rules);
        Assert.Equal(2, t.Sets["s"].Elements.Count); // as nft: flush table keeps set elements

        m.Apply("delete element ip t s { 10.0.0.1 }\ndelete element ip t m { 10.0.0.1 : goto b }\ndelete element ip t m { 10.0.0.2 }");
        t = m.FindTable(NftFamily.Ip, "t")!;
        Assert.Equal("10.0.0.2", t.Sets["s"].FormatElement(Assert.Single(t.Sets["s"].Elements)));
        Assert.Empty(t.Sets["m"].Elements);

        m.Apply("flush set ip t s\ndelete chain ip t b\ndelete map ip t m\ndelete set ip t s");
        t = m.FindTable(NftFamily.Ip, "t")!;
        Assert.False(t.Chains.ContainsKey("b"));
        Assert.Empty(t.Sets);

        m.Apply("delete table ip t");
        Assert.Empty(m.Tables);
    }

    [Fact]
    public void Chain_with_its_own_rules_can_be_deleted_once_nothing_jumps_to_it()
    {
        var m = With(Base + "add rule ip t a jump b\nadd rule ip t b counter\n");
        Assert.Equal(NftErrorKind.Busy, Assert.Throws<NftApplyException>(() => m.Apply("delete chain ip t b")).Kind);
        m.Apply("delete chain ip t a\ndelete chain ip t b");
        Assert.Equal(["in"], m.FindTable(NftFamily.Ip, "t")!.Chains.Keys);
    }

    [Fact]
    public void Rules_get_handles_insert_prepends_and_delete_by_handle()
    {
        var m = With(Base + "add rule ip t a counter\nadd rule ip t a accept\ninsert rule ip t a drop\n");
        var rules = m.FindTable(NftFamily.Ip, "t")!.Chains["a"].Rules;
        Assert.Equal(["drop", "counter", "accept"], rules.Select(r => r.Text));
        long h = rules[1].Handle;
        m.Apply($"delete rule ip t a handle {h}");
        Assert.Equal(["drop", "accept"], m.FindTable(NftFamily.Ip, "t")!.Chains["a"].Rules.Select(r => r.Text));
    }

    [Fact]
    public void Base_chain_policy_can_be_changed_by_add()
    {
        var m = With(Base + "add chain ip t in { type filter hook input priority 0 ; policy drop ; }\n");
        Assert.Equal(NftVerdictKind.Drop, m.FindTable(NftFamily.Ip, "t")!.Chains["in"].Base!.Policy);
        m.Apply("add chain ip t in");
        Assert.Equal(NftVerdictKind.Drop, m.FindTable(NftFamily.Ip, "t")!.Chains["in"].Base!.Policy);
    }

    [Fact]
    public void Interval_elements_overlap_is_refused_equal_is_fine()
    {
        var m = With("""
            add table inet t
            add set inet t c { type ipv4_addr ; flags interval ; }
            add set inet t p { type ipv4_addr . inet_service ; flags interval ; }
            add element inet t c { 10.0.0.0/8, 192.168.0.0-192.168.0.9 }
            add element inet t p { 10.0.0.0/8 . 80-90 }
            """);
        m.Apply("add element inet t c { 10.0.0.0/8 }");
        Assert.True(Assert.Throws<NftApplyException>(() => m.Apply("add element inet t c { 10.1.0.0/16 }")).IsExists);
        Assert.True(Assert.Throws<NftApplyException>(() => m.Apply("add element inet t p { 10.1.0.0/16 . 85 }")).IsExists);
        m.Apply("add element inet t p { 10.1.0.0/16 . 91 }"); // overlaps in one field only: fine
        Assert.Contains("add element inet t c { 10.0.0.0/8, 192.168.0.0-192.168.0.9 }", m.Dump(), StringComparison.Ordinal);
        Assert.Contains("add element inet t p { 10.0.0.0/8 . 80-90, 10.1.0.0/16 . 91 }", m.Dump(), StringComparison.Ordinal);
    }

    [Fact]
    public void Chain_loops_reachable_from_a_base_chain_are_refused()
    {
        var m = With(Base + "add rule ip t a jump b\n");
        // Not reachable from a base chain: the kernel accepts it (it validates loops from base chains only).
        m.Apply("add rule ip t b jump a");
        string before = m.Dump();
        var e = Assert.Throws<NftApplyException>(() => m.Apply("add rule ip t in jump a"));
        Assert.Contains("loop", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, m.Dump());
        // Through a verdict map element, too.
        var m2 = With(Base + "add rule ip t in jump a\nadd rule ip t a ip daddr vmap @m\n");
        Assert.Contains("loop", Assert.Throws<NftApplyException>(() => m2.Apply("add element ip t m { 10.0.0.1 : jump a }")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inet_tables_take_nfproto_ip6_and_need_dnat_ip()
    {
        var m = With("""
            add table inet t
            add chain inet t c
            add chain inet t n { type nat hook output priority -100 ; }
            add rule inet t c meta nfproto ipv6 ip6 saddr fe80::/10 accept
            add rule inet t n meta l4proto tcp dnat ip to 10.0.0.1:80
            """);
        Assert.Equal(2, m.Tables.Single().Chains["c"].Rules.Count + m.Tables.Single().Chains["n"].Rules.Count);
        Assert.Equal(NftErrorKind.Invalid, Assert.Throws<NftApplyException>(() => m.Apply("add rule inet t n meta l4proto tcp dnat to 10.0.0.1:80")).Kind);
    }

    [Fact]
    public void Map_keys_can_be_tested_like_a_set_as_nft_allows()
    {
        var m = With(Base + "add element ip t m { 10.0.0.1 : accept }\nadd rule ip t a ip daddr @m counter\nadd rule ip t a update @s { ip saddr }\n");
        Assert.Equal(2, m.FindTable(NftFamily.Ip, "t")!.Chains["a"].Rules.Count);
    }

    [Fact]
    public void Flush_ruleset_empties_everything()
    {
        var m = With(Base);
        m.Apply("flush ruleset");
        Assert.Equal("", m.Dump());
    }

    [Fact]
    public void Empty_and_comment_only_transactions_change_nothing()
    {
        var m = With(Base);
        string before = m.Dump();
        m.Apply("");
        m.Apply("# nothing\n\n   \n");
        Assert.Equal(before, m.Dump());
    }
}
