using Trellis.Core.Proxy;

namespace Trellis.Core.Tests.Proxy;

public class ProxyGoldenTests
{
    public static TheoryData<string> Cases => new(ProxyGolden.CaseNames());

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compiles_to_golden(string name)
    {
        var ruleset = ProxyCompiler.Compile(ProxyGolden.Read(name));
        ProxyGolden.AssertText(Path.Combine(ProxyGolden.Root, name, "expected.nft"), ProxyGolden.Text(ruleset));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compiling_twice_gives_the_same_text_and_an_empty_partial(string name)
    {
        var a = ProxyCompiler.Compile(ProxyGolden.Read(name));
        var b = ProxyCompiler.Compile(ProxyGolden.Read(name));
        Assert.Equal(a.Dump(), b.Dump());
        Assert.Equal("", ProxyTransaction.Partial(a, b));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_full_transaction_applies_to_an_empty_table_and_to_itself(string name)
    {
        var ruleset = ProxyCompiler.Compile(ProxyGolden.Read(name));
        var table = new FakeProxyTable();
        table.Apply(ruleset.Dump());
        string once = table.Dump();
        table.Apply(ruleset.Dump());
        Assert.Equal(once, table.Dump());
        Assert.Equal(ruleset.Chains.Keys.Order(StringComparer.Ordinal), table.ChainNames.Order(StringComparer.Ordinal));
        Assert.Equal(ruleset.Sets.Keys.Order(StringComparer.Ordinal), table.SetNames.Order(StringComparer.Ordinal));
    }
}
