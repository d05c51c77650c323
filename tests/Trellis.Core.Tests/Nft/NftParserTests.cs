using Trellis.Core.Nft;
using Trellis.Core.Tests.NodeFirewall;
using NftCli = Trellis.Core.Tests.NodeFirewall.Nft;

namespace Trellis.Core.Tests.Nft;

/// <summary>
/// Every match and statement form of the subset parses (one row each), prints back canonically, and is real nft
/// (the same rows go through <c>nft -c -f</c>); malformed or unsupported text fails naming the line.
/// </summary>
public class NftParserTests
{
    /// <summary>Objects the rule rows refer to, in both families.</summary>
    internal static string Preamble(string family) => $$"""
        add table {{family}} t
        add chain {{family}} t c
        add chain {{family}} t other
        add chain {{family}} t nat-pre { type nat hook prerouting priority -100 ; }
        add chain {{family}} t nat-post { type nat hook postrouting priority 100 ; }
        add chain {{family}} t filter-in { type filter hook input priority -110 ; policy accept ; }
        add set {{family}} t addrs { type ipv4_addr ; }
        add set {{family}} t cidrs { type ipv4_addr ; flags interval ; }
        add set {{family}} t aff { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
        add set {{family}} t pairs { type ipv4_addr . inet_service ; flags interval ; }
        add map {{family}} t svc { type ipv4_addr . inet_proto . inet_service : verdict ; }
        add map {{family}} t ports { type inet_proto . inet_service : verdict ; }
        add map {{family}} t byaddr { type ipv4_addr : verdict ; flags interval ; }

        """;

    // (chain, rule as written, canonical text or null when the same)
    public static TheoryData<string, string, string?> Rules => new()
    {
        { "c", "ip saddr 10.0.0.1 accept", null },
        { "c", "ip daddr 10.0.0.0/8 drop", null },
        { "c", "ip daddr != 10.0.0.0/8 return", null },
        { "c", "ip saddr == 10.0.0.1 accept", null },
        { "c", "ip saddr 10.0.0.1-10.0.0.9 accept", null },
        { "c", "ip daddr @addrs accept", null },
        { "c", "ip daddr != @cidrs drop", null },
        { "c", "ip saddr { 10.0.0.1, 10.1.0.0/16 } accept", null },
        { "c", "ip saddr != {10.0.0.1,10.1.0.0/16} accept", "ip saddr != { 10.0.0.1, 10.1.0.0/16 } accept" },
        { "c", "meta l4proto tcp accept", null },
        { "c", "meta l4proto != udp drop", null },
        { "c", "meta l4proto { tcp, udp } accept", null },
                { "c", "tcp dport 80 accept", null },
        { "c", "udp dport 53 accept", null },
        { "c", "sctp dport 9 accept", null },
        { "c", "tcp sport 1024-65535 accept", null },
        { "c", "th dport 80 accept", null },
        { "c", "th dport 80-90 accept", null },
        { "c", "th dport { 80, 443 } accept", null },
        { "c", "th dport != 22 drop", null },
        { "c", "ct state new accept", null },
        { "c", "ct state established,related accept", "ct state established, related accept" },
        { "c", "ct state { established, related } accept", null },
        { "c", "ct state invalid drop", null },
        { "c", "fib daddr type local accept", null },
        { "c", "fib saddr type local accept", null },
        { "c", "fib daddr type != local drop", null },
        { "c", "meta mark & 0x4000 == 0x4000 accept", null },
        { "c", "meta mark & 0x4000 != 0x4000 return", null },
        { "c", "mark and 0x4000 == 0 return", null },
        { "c", "iifname \"eth0\" accept", null },
        { "c", "oifname != \"veth*\" drop", null },
        { "c", "meta iifname { \"a\", \"b\" } accept", null },
        { "c", "ip daddr . meta l4proto . th dport vmap @svc", null },
        { "c", "meta l4proto . th dport vmap @ports", null },
        { "c", "ip daddr vmap @byaddr", null },
        { "c", "ip saddr . th dport @pairs accept", null },
        { "c", "ip saddr . th dport { 10.0.0.0/8 . 80-90 } accept", null },
        { "c", "numgen random mod 2 vmap { 0 : goto other, 1 : goto other }", null },
        { "c", "numgen random mod 2 vmap { 0: goto other, 1: jump other }", "numgen random mod 2 vmap { 0 : goto other, 1 : jump other }" },
        { "c", "meta mark set meta mark | 0x4000", null },
        { "c", "meta mark set meta mark ^ 0x4000", null },
        { "c", "mark set mark or 0x4000", null },
        { "c", "meta mark set 0x10", null },
        { "c", "update @aff { ip saddr }", null },
        { "c", "ip saddr @aff goto other", null },
        { "c", "counter", null },
        { "c", "counter packets 0 bytes 0 accept", null },
        { "c", "log prefix \"dropped: \" drop", null },
        { "c", "log prefix \"x\" level info", null },
        { "c", "jump other", null },
        { "c", "goto other", null },
        { "c", "return", null },
        { "c", "accept", null },
        { "c", "drop", null },
        { "c", "reject", null },
        { "c", "reject with icmp type port-unreachable", null },
        { "c", "reject with tcp reset", null },
        { "c", "ip daddr 10.0.0.1 tcp dport 80 ip saddr != 10.0.0.0/8 jump other comment \"masq\"", null },
        { "nat-pre", "meta l4proto tcp dnat to 10.180.0.1:80", null },
        { "nat-pre", "dnat to 10.180.0.1", null },
        { "nat-post", "masquerade", null },
        { "nat-post", "masquerade fully-random", null },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void Rule_form_parses_to_canonical_text(string chain, string rule, string? canonical)
    {
        foreach (string family in new[] { "ip", "inet" })
        {
            var m = new NftModel();
            string dnatIp = family == "inet" ? rule.Replace("dnat to", "dnat ip to", StringComparison.Ordinal) : rule;
            m.Apply(Preamble(family) + $"add rule {family} t {chain} {dnatIp}\n");
            var table = m.FindTable(family == "ip" ? NftFamily.Ip : NftFamily.Inet, "t")!;
            var stored = Assert.Single(table.Chains[chain].Rules);
            string expected = canonical ?? rule;
            Assert.Equal(family == "inet" ? expected.Replace("dnat to", "dnat ip to", StringComparison.Ordinal) : expected, stored.Text);
            // The canonical text reparses to itself.
            var again = new NftModel();
            again.Apply(m.Dump());
            Assert.Equal(m.Dump(), again.Dump());
        }
    }

    [NftTheory]
    [MemberData(nameof(Rules))]
    public void Rule_form_is_accepted_by_real_nft(string chain, string rule, string? canonical)
    {
        foreach (string family in new[] { "ip", "inet" })
        {
            string r = family == "inet" ? rule.Replace("dnat to", "dnat ip to", StringComparison.Ordinal) : rule;
            var (code, output) = NftCli.Check(Preamble(family) + $"add rule {family} t {chain} {r}\n");
            Assert.True(code == 0, $"nft -c refused '{r}' ({family}):\n{output}");
            if (canonical is not null)
            {
                (code, output) = NftCli.Check(Preamble(family) + $"add rule {family} t {chain} {canonical}\n");
                Assert.True(code == 0, $"nft -c refused canonical '{canonical}' ({family}):\n{output}");
            }
        }
    }

    // (rule, a fragment of the error)
    public static TheoryData<string, string> BadRules => new()
    {
        { "ip saddr 10.0.0.300 accept", "'10.0.0.300' is not a ipv4_addr" },
        { "ip saddr 10.0.0.0/33 accept", "prefix" },
        { "ip tos 3 accept", "unsupported 'ip tos'" },
        { "meta skuid 0 accept", "unsupported 'meta skuid'" },
        { "tcp dport 70000 accept", "not a port" },
        { "th dport 90-80 accept", "first value above its last" },
        { "ct state bogus accept", "unknown ct state 'bogus'" },
        { "fib daddr type broadcast drop", "only local" },
        { "frobnicate", "unknown or unsupported syntax 'frobnicate'" },
        { "accept drop", "after the rule's verdict" },
        { "ip daddr 10.0.0.1 comment \"x\" accept", "a comment ends the rule" },
        { "ip daddr", "expected a value" },
        { "jump", "expected a chain name" },
        { "numgen random mod 0 vmap { 0 : goto other }", "modulus" },
        { "ip daddr . th dport vmap { 10.0.0.1 : goto other }", "expected '.'" },
        { "meta mark set meta mark + 1", "unsupported mark operator" },
        { "reject with icmp type bogus", "unknown reject type" },
        { "log prefix unquoted", "quoted" },
        { "comment unquoted", "quoted" },
    };

    [Theory]
    [MemberData(nameof(BadRules))]
    public void Bad_rule_is_a_parse_error_naming_the_line(string rule, string fragment)
    {
        var m = new NftModel();
        string before = m.Dump();
        string text = Preamble("ip") + $"# a comment line\nadd rule ip t c {rule}\nadd rule ip t c accept\n";
        var e = Assert.Throws<NftParseException>(() => m.Apply(text));
        Assert.Equal(15, e.Line);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.Contains(rule.Split(' ')[0], e.Statement, StringComparison.Ordinal);
        Assert.Equal(before, m.Dump());
    }

    // (statement, fragment)
    public static TheoryData<string, string> BadStatements => new()
    {
        { "list ruleset", "unknown command 'list'" },
        { "add counter ip t x", "unknown object 'counter'" },
        { "add table ip6 t", "family 'ip6' is not supported" },
        { "add chain ip t x { type route hook output priority 0 ; }", "unsupported chain type 'route'" },
        { "add chain ip t x { type filter hook ingress priority 0 ; }", "unsupported hook 'ingress'" },
        { "add chain ip t x { type filter hook input priority bogus ; }", "not a priority" },
        { "add chain ip t x { type filter hook input priority 0 ; policy reject ; }", "not a chain policy" },
        { "add chain ip t x { policy drop ; }", "needs a base chain" },
        { "add chain ip t x { devices = { eth0 } ; }", "unsupported declaration" },
        { "add set ip t x { type ether_addr ; }", "unsupported data type 'ether_addr'" },
        { "add set ip t x { flags interval ; }", "needs a 'type'" },
        { "add set ip t x", "needs { type" },
        { "add map ip t x { type ipv4_addr : ipv4_addr ; }", "only verdict maps" },
        { "add set ip t x { type ipv4_addr ; flags bogus ; }", "unsupported set flag" },
        { "add element ip t addrs { 10.0.0.0/8 }", "not an interval set" },
        { "add element ip t svc { 10.0.0.1 . tcp . 80 }", "needs ': verdict'" },
        { "add element ip t addrs { 10.0.0.1 : accept }", "is a set" },
        { "add element ip t ports { tcp . 80 : bounce }", "not a verdict" },
        { "add element ip t addrs { 10.0.0.1", "unbalanced '{'" },
        { "add table ip t }", "unbalanced '}'" },
        { "add rule ip t c log prefix \"open", "unterminated string" },
        { "add chain ip t 9bad", "not a valid chain name" },
        { "flush rule ip t c", "flush rule is not a command" },
        { "insert chain ip t x", "insert applies only to rules" },
    };

    [Theory]
    [MemberData(nameof(BadStatements))]
    public void Bad_statement_is_a_parse_error_naming_the_line(string statement, string fragment)
    {
        var m = new NftModel();
        m.Apply(Preamble("ip"));
        string before = m.Dump();
        var e = Assert.Throws<NftParseException>(() => m.Apply($"add chain ip t fine\n\n{statement}\n"));
        Assert.Equal(3, e.Line);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.Equal(before, m.Dump());
    }

    [Fact]
    public void Multi_line_element_lists_and_semicolons_and_continuations_are_statements()
    {
        var m = new NftModel();
        m.Apply(Preamble("ip") + "add element ip t addrs {\n  10.0.0.2,\n  10.0.0.1\n}\nadd chain ip t a; add chain ip t b\nadd rule ip t a \\\n  accept\n");
        var t = m.FindTable(NftFamily.Ip, "t")!;
        Assert.Equal(2, t.Sets["addrs"].Elements.Count);
        Assert.True(t.Chains.ContainsKey("b"));
        Assert.Equal("accept", t.Chains["a"].Rules[0].Text);
        var e = Assert.Throws<NftParseException>(() => m.Apply("add chain ip t x\nadd element ip t addrs {\n 10.0.0.3,\n nope }\n"));
        Assert.Equal(2, e.Line);
    }

    [Fact]
    public void Named_priorities_and_offsets()
    {
        var m = new NftModel();
        m.Apply("add table ip t\nadd chain ip t a { type nat hook prerouting priority dstnat ; }\nadd chain ip t b { type filter hook input priority filter - 10 ; }\n");
        var t = m.FindTable(NftFamily.Ip, "t")!;
        Assert.Equal(-100, t.Chains["a"].Base!.Priority);
        Assert.Equal(-10, t.Chains["b"].Base!.Priority);
    }
}
