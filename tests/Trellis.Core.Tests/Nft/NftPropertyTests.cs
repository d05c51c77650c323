using System.Net;
using CsCheck;
using Trellis.Core.Nft;

namespace Trellis.Core.Tests.Nft;

/// <summary>Properties of the model and tracer over generated input.</summary>
public class NftPropertyTests
{
    private const string Decl = """
        add table inet t
        add chain inet t c
        add chain inet t in { type filter hook input priority 0 ; }
        add set inet t s { type ipv4_addr . inet_service ; }
        add map inet t m { type ipv4_addr . inet_proto . inet_service : verdict ; }

        """;

    private static readonly Gen<string> s_key = Gen.Select(Gen.Int[0, 3], Gen.Int[0, 3], Gen.Int[1, 4])
        .Select((a, b, p) => $"10.{a}.{b}.1 . {p * 100}");

    private static readonly Gen<string> s_mapEntry = Gen.Select(Gen.Int[0, 5], Gen.OneOf("tcp", "udp", "sctp"), Gen.OneOf("accept", "drop", "goto c", "jump c"))
        .Select((a, proto, v) => ($"10.96.0.{a} . {proto} . 80", v)).Select(x => $"{x.Item1} : {x.v}");

    [Fact]
    public void Element_order_does_not_change_the_dump_and_the_dump_replays()
    {
        Gen.Select(s_key.Array[1, 12], Gen.Int).Sample((keys, seed) =>
        {
            var distinct = keys.Distinct().ToArray();
            var shuffled = distinct.OrderBy(k => HashCode.Combine(k, seed)).ToArray();
            var a = new NftModel();
            a.Apply(Decl + $"add element inet t s {{ {string.Join(", ", distinct)} }}\n");
            var b = new NftModel();
            b.Apply(Decl);
            foreach (var k in shuffled)
            {
                b.Apply($"add element inet t s {{ {k} }}");
            }
            Assert.Equal(a.Dump(), b.Dump());
            var c = new NftModel();
            c.Apply(a.Dump());
            Assert.Equal(a.Dump(), c.Dump());
        });
    }

    [Fact]
    public void Add_then_delete_a_subset_equals_adding_the_rest()
    {
        Gen.Select(s_mapEntry.Array[1, 10], Gen.Bool.Array[10]).Sample((entries, drop) =>
        {
            // One verdict per key, as the kernel insists.
            var unique = entries.GroupBy(e => e[..e.IndexOf(':', StringComparison.Ordinal)]).Select(g => g.First()).ToArray();
            var kept = unique.Where((_, i) => !drop[i]).ToArray();
            var removed = unique.Where((_, i) => drop[i]).ToArray();
            var a = new NftModel();
            a.Apply(Decl + $"add element inet t m {{ {string.Join(", ", unique)} }}\n");
            if (removed.Length > 0)
            {
                // Deleting by key alone, as the proxy compiler does.
                a.Apply($"delete element inet t m {{ {string.Join(", ", removed.Select(e => e[..e.IndexOf(':', StringComparison.Ordinal)].Trim()))} }}");
            }
            var b = new NftModel();
            b.Apply(Decl + (kept.Length > 0 ? $"add element inet t m {{ {string.Join(", ", kept)} }}\n" : ""));
            Assert.Equal(b.Dump(), a.Dump());
        });
    }

    private static readonly string[] s_vocabulary =
    [
        "add", "delete", "flush", "create", "insert", "table", "chain", "set", "map", "element", "rule", "ip", "inet", "t", "c", "in", "s", "m",
        "{", "}", ",", ";", ":", ".", "type", "filter", "nat", "hook", "input", "priority", "0", "-100", "policy", "drop", "accept",
        "ipv4_addr", "inet_service", "verdict", "flags", "interval", "saddr", "daddr", "10.0.0.1", "10.0.0.0/8", "80", "80-90",
        "tcp", "dport", "th", "meta", "l4proto", "mark", "&", "==", "!=", "0x4000", "vmap", "@s", "@m", "numgen", "random", "mod", "2",
        "jump", "goto", "return", "reject", "with", "ct", "state", "new", "fib", "local", "dnat", "to", "10.0.0.1:80", "masquerade",
        "counter", "log", "prefix", "\"x\"", "comment", "update", "\n", "\n", "#", "\\\n", "handle", "1", "iifname", "\"eth0\"",
    ];

    [Fact]
    public void Arbitrary_token_soup_is_applied_or_refused_with_an_nft_error_and_refusal_changes_nothing()
    {
        Gen.OneOf(s_vocabulary).Array[1, 30].Sample(words =>
        {
            var m = new NftModel();
            m.Apply(Decl);
            string before = m.Dump();
            try
            {
                m.Apply(string.Join(' ', words));
            }
            catch (NftException)
            {
                Assert.Equal(before, m.Dump());
                return;
            }
            // Whatever was accepted must dump to text that replays to itself.
            var again = new NftModel();
            again.Apply(m.Dump());
            Assert.Equal(m.Dump(), again.Dump());
        }, iter: 3000);
    }

    [Fact]
    public void Tracing_never_changes_the_model_and_is_deterministic()
    {
        var m = new NftModel();
        m.Apply(TracerRulesets.KubeProxy);
        m.Apply(TracerRulesets.Policy);
        string before = m.Dump();
        var tracer = new NftTracer(m, [IPAddress.Parse("172.30.0.11")]);
        var addr = Gen.OneOf("10.244.1.3", "10.244.1.5", "10.96.0.10", "10.96.0.20", "10.96.0.53", "172.30.0.11", "203.0.113.5", "192.0.2.10", "10.96.7.7");
        Gen.Select(addr, addr, Gen.OneOf("tcp", "udp", "sctp", "icmp"), Gen.OneOf(80, 81, 53, 30080, 30081, 8080), Gen.Bool, Gen.Bool).Sample((src, dst, proto, port, local, isNew) =>
        {
            var p = new TracePacket(IPAddress.Parse(src), IPAddress.Parse(dst), proto, 40000, port, local ? TraceOrigin.Local : TraceOrigin.Forwarded, NewConnection: isNew);
            var r1 = tracer.Trace(p);
            var r2 = tracer.Trace(p);
            Assert.NotEmpty(r1.Outcomes);
            Assert.Equal(r1.Outcomes.Select(o => o.ToString()), r2.Outcomes.Select(o => o.ToString()));
            Assert.All(r1.Outcomes, o => Assert.True(o.Verdict == TraceVerdict.Accept || o.Steps.Count > 0));
            Assert.Equal(before, m.Dump());
        }, iter: 300);
    }
}
