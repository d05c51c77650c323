using System.Text.Json.Nodes;
using CsCheck;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Objects;

public class LabelSelectorTests
{
    private static Dictionary<string, string> Labels(string spec) =>
        spec.Length == 0 ? [] : spec.Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);

    // selector, labels, matches — the semantics of labels.Requirement.Matches.
    [Theory]
    [InlineData("", "", true)]
    [InlineData("", "app=web", true)]
    [InlineData("app=web", "app=web", true)]
    [InlineData("app==web", "app=web,tier=front", true)]
    [InlineData("app=web", "app=db", false)]
    [InlineData("app=web", "", false)]
    [InlineData("app!=web", "", true)]
    [InlineData("app!=web", "app=db", true)]
    [InlineData("app!=web", "app=web", false)]
    [InlineData("app in (web,db)", "app=db", true)]
    [InlineData("app in (web,db)", "app=cache", false)]
    [InlineData("app in (web,db)", "", false)]
    [InlineData("app notin (web,db)", "", true)]
    [InlineData("app notin (web,db)", "app=cache", true)]
    [InlineData("app notin (web,db)", "app=web", false)]
    [InlineData("app", "app=", true)]
    [InlineData("app", "tier=x", false)]
    [InlineData("!app", "tier=x", true)]
    [InlineData("!app", "app=x", false)]
    [InlineData("app=web,tier", "app=web,tier=x", true)]
    [InlineData("app=web,tier", "app=web", false)]
    [InlineData("app=web, tier!=db , !canary", "app=web,tier=front", true)]
    [InlineData("app=", "app=", true)]
    [InlineData("app=", "app=x", false)]
    [InlineData("app in (a,)", "app=", true)]
    [InlineData("app in ()", "app=", true)]
    [InlineData("example.com/role=db", "example.com/role=db", true)]
    [InlineData("gen>3", "gen=4", true)]
    [InlineData("gen>3", "gen=3", false)]
    [InlineData("gen<3", "gen=-1", true)]
    [InlineData("gen<3", "gen=x", false)]
    [InlineData("gen<3", "", false)]
    [InlineData("in=in", "in=in", true)]
    [InlineData("a in (in,notin)", "a=notin", true)]
    public void Kubectl_selector_matches_as_upstream(string selector, string labels, bool matches)
    {
        var s = LabelSelector.Parse(selector);
        Assert.Equal(matches, s.Matches(Labels(labels)));
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("  ", "")]
    [InlineData("b=2,a=1", "a=1,b=2")]
    [InlineData("a==1", "a==1")]
    [InlineData("x in (c, a ,b)", "x in (a,b,c)")]
    [InlineData("x notin (b,a)", "x notin (a,b)")]
    [InlineData("!z,y", "y,!z")]
    [InlineData("a!=1", "a!=1")]
    [InlineData("a > 5", "a>5")]
    public void Parsed_selector_prints_in_kubectl_normal_form(string text, string normal)
    {
        Assert.Equal(normal, LabelSelector.Parse(text).ToString());
    }

    [Theory]
    [InlineData("a in b", "\"a in b\"", "expected: '('")]
    [InlineData("app=web,x in (a", "\"x in (a\"", "expected: ')'")]
    [InlineData("app=web,=x", "\"=x\"", "expected: identifier")]
    [InlineData("a b", "\"a b\"", "expected: '=', '!=', '==', 'in', 'notin', '>' or '<'")]
    [InlineData("app=we b", "\"app=we b\"", "expected: ',' or end of string")]
    [InlineData("app=web,", "ends with ','", "")]
    [InlineData("!a=b", "\"!a=b\"", "expected: ',' or end of string")]
    [InlineData("a/b/c=x", "\"a/b/c=x\"", "invalid label key \"a/b/c\"")]
    [InlineData("app=web!", "\"app=web!\"", "expected: ',' or end of string")]
    [InlineData("app=-bad-", "\"app=-bad-\"", "invalid label value: \"-bad-\"")]
    [InlineData("gen>x", "\"gen>x\"", "must be an integer")]
    [InlineData("a in (x y)", "\"a in (x y)\"", "expected: ',', ')' or identifier")]
    [InlineData("a,(", "\"(\"", "expected: identifier")]
    public void Bad_selectors_name_the_term_at_fault(string text, string term, string problem)
    {
        Assert.False(LabelSelector.TryParse(text, out _, out var error));
        Assert.Contains(term, error, StringComparison.Ordinal);
        Assert.Contains(problem, error, StringComparison.Ordinal);
        var e = Assert.Throws<FormatException>(() => LabelSelector.Parse(text));
        Assert.Equal(error, e.Message);
    }

    [Fact]
    public void Json_selector_null_matches_nothing_and_empty_matches_everything()
    {
        Assert.True(LabelSelector.FromJson(null).IsNothing);
        Assert.False(LabelSelector.FromJson(null).Matches(Labels("a=b")));
        Assert.False(LabelSelector.FromJson(null).Matches(null));
        var empty = LabelSelector.FromJson(new JsonObject());
        Assert.True(empty.IsEverything);
        Assert.True(empty.Matches(null));
        Assert.True(empty.Matches(Labels("a=b")));
        Assert.True(LabelSelector.FromJson(JsonNode.Parse("""{"matchLabels":{},"matchExpressions":[]}""")).IsEverything);
    }

    [Theory]
    [InlineData("""{"matchLabels":{"role":"db"}}""", "role=db", true, "role=db")]
    [InlineData("""{"matchLabels":{"role":"db"}}""", "role=web", false, "role=db")]
    [InlineData("""{"matchExpressions":[{"key":"ns","operator":"NotIn","values":["x"]}]}""", "ns=y", true, "ns notin (x)")]
    [InlineData("""{"matchExpressions":[{"key":"ns","operator":"NotIn","values":["x"]}]}""", "", true, "ns notin (x)")]
    [InlineData("""{"matchExpressions":[{"key":"pod","operator":"In","values":["c","b"]}]}""", "pod=b", true, "pod in (b,c)")]
    [InlineData("""{"matchExpressions":[{"key":"k","operator":"Exists"}]}""", "k=", true, "k")]
    [InlineData("""{"matchExpressions":[{"key":"k","operator":"DoesNotExist"}]}""", "k=v", false, "!k")]
    [InlineData("""{"matchLabels":{"z":"1","a":"2"},"matchExpressions":[{"key":"m","operator":"Exists"}]}""", "a=2,m=x,z=1", true, "a=2,m,z=1")]
    public void Json_selector_matches_and_prints_as_metav1(string json, string labels, bool matches, string printed)
    {
        var s = LabelSelector.FromJson(JsonNode.Parse(json));
        Assert.Equal(matches, s.Matches(Labels(labels)));
        Assert.Equal(printed, s.ToString());
    }

    [Theory]
    [InlineData("""{"matchExpressions":[{"key":"k","operator":"Equals","values":["v"]}]}""", "\"Equals\" is not a valid label selector operator")]
    [InlineData("""{"matchExpressions":[{"key":"k","operator":"In"}]}""", "values set can't be empty")]
    [InlineData("""{"matchExpressions":[{"key":"k","operator":"Exists","values":["v"]}]}""", "values set must be empty")]
    [InlineData("""{"matchLabels":{"-k":"v"}}""", "invalid label key \"-k\"")]
    [InlineData("""{"matchLabels":{"k":3}}""", "matchLabels[k] must be a string")]
    [InlineData("""[]""", "must be an object")]
    public void Invalid_json_selectors_are_errors(string json, string problem)
    {
        Assert.False(LabelSelector.TryFromJson(JsonNode.Parse(json), out _, out var error));
        Assert.Contains(problem, error, StringComparison.Ordinal);
    }

    [Fact]
    public void FromSet_is_the_service_selector_semantics()
    {
        var s = LabelSelector.FromSet(new Dictionary<string, string> { ["app"] = "web", ["tier"] = "front" });
        Assert.True(s.Matches(Labels("app=web,tier=front,x=y")));
        Assert.False(s.Matches(Labels("app=web")));
        Assert.Equal("app=web,tier=front", s.ToString());
        Assert.True(LabelSelector.FromSet(new Dictionary<string, string>()).IsEverything);
    }

    private static readonly Gen<string> s_name = Gen.String[Gen.Char["abcxyz019"], 1, 5];
    private static readonly Gen<LabelRequirement> s_requirement =
        Gen.Select(s_name, Gen.Int[0, 8], s_name.Array[1, 3])
            .Select((key, op, values) => (SelectorOperator)op switch
            {
                SelectorOperator.Exists or SelectorOperator.DoesNotExist => new LabelRequirement(key, (SelectorOperator)op, []),
                SelectorOperator.In or SelectorOperator.NotIn => new LabelRequirement(key, (SelectorOperator)op, [.. values.Distinct()]),
                SelectorOperator.GreaterThan or SelectorOperator.LessThan => new LabelRequirement(key, (SelectorOperator)op, [values.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)]),
                _ => new LabelRequirement(key, (SelectorOperator)op, [values[0]]),
            });

    [Fact]
    public void Printed_selectors_parse_back_to_the_same_matches()
    {
        var labelsGen = Gen.Dictionary(s_name, Gen.OneOf(s_name, Gen.Int[0, 5].Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))))[0, 4];
        Gen.Select(s_requirement.Array[0, 4], labelsGen.Array[1, 6]).Sample((reqs, labelSets) =>
        {
            var selector = LabelSelector.Create(reqs);
            var reparsed = LabelSelector.Parse(selector.ToString());
            Assert.Equal(selector.ToString(), reparsed.ToString());
            foreach (var labels in labelSets)
            {
                Assert.Equal(selector.Matches(labels), reparsed.Matches(labels));
                Assert.Equal(reqs.All(r => r.Matches(labels)), selector.Matches(labels));
            }
        }, iter: 2000);
    }
}
