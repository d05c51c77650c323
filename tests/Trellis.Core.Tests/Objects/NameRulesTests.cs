using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Objects;

public class NameRulesTests
{
    [Theory]
    [InlineData("a", true)]
    [InlineData("web-0", true)]
    [InlineData("123-abc", true)]
    [InlineData("-a", false)]
    [InlineData("a-", false)]
    [InlineData("A", false)]
    [InlineData("a.b", false)]
    [InlineData("", false)]
    [InlineData("abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghi", false)]
    [InlineData("abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefghij-abcdefgh", true)]
    public void Dns1123_label(string value, bool valid) => Assert.Equal(valid, NameRules.IsDns1123Label(value).Count == 0);

    [Theory]
    [InlineData("web", true)]
    [InlineData("1web", false)]
    [InlineData("web-1", true)]
    public void Dns1035_label(string value, bool valid) => Assert.Equal(valid, NameRules.IsDns1035Label(value).Count == 0);

    [Theory]
    [InlineData("example.com", true)]
    [InlineData("a.b-c.d", true)]
    [InlineData("a..b", false)]
    [InlineData(".a", false)]
    [InlineData("a_b", false)]
    [InlineData("Example.com", false)]
    public void Dns1123_subdomain(string value, bool valid) => Assert.Equal(valid, NameRules.IsDns1123Subdomain(value).Count == 0);

    [Theory]
    [InlineData("app", true)]
    [InlineData("App_Name.v1", true)]
    [InlineData("kubernetes.io/metadata.name", true)]
    [InlineData("node-role.kubernetes.io/control-plane", true)]
    [InlineData("a/b/c", false)]
    [InlineData("/a", false)]
    [InlineData("a/", false)]
    [InlineData("_a", false)]
    [InlineData("Example.com/a", false)]
    public void Qualified_name(string value, bool valid) => Assert.Equal(valid, NameRules.IsQualifiedName(value).Count == 0);

    [Theory]
    [InlineData("", true)]
    [InlineData("v1.2_3-x", true)]
    [InlineData("-x", false)]
    [InlineData("a b", false)]
    public void Label_value(string value, bool valid) => Assert.Equal(valid, NameRules.IsValidLabelValue(value).Count == 0);

    [Theory]
    [InlineData("http", new string[0])]
    [InlineData("serve-80-tcp", new string[0])]
    [InlineData("a-b-c-d-e-f-g-hi", new[] { "must be no more than 15 characters" })]
    [InlineData("80", new[] { "must contain at least one letter (a-z)" })]
    [InlineData("a--b", new[] { "must not contain consecutive hyphens" })]
    [InlineData("-ab", new[] { "must not begin or end with a hyphen" })]
    [InlineData("HTTP", new[] { "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)", "must contain at least one letter (a-z)" })]
    public void Port_names_are_IANA_service_names(string value, string[] problems) => Assert.Equal(problems, NameRules.IsValidPortName(value));

    [Theory]
    [InlineData("10.96.0.10", true)]
    [InlineData("fd00::1", true)]
    [InlineData("::ffff:10.0.0.1", true)]
    [InlineData("010.1.1.1", false)]
    [InlineData("10.1", false)]
    [InlineData("10.0.0.256", false)]
    [InlineData("fe80::1%eth0", false)]
    [InlineData("[::1]", false)]
    [InlineData(" 10.0.0.1", false)]
    public void Ip_syntax_is_strict(string value, bool valid)
    {
        var svc = JsonNode.Parse("""{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"d"},"spec":{"type":"ClusterIP","ports":[{"port":80,"protocol":"TCP","targetPort":80}],"sessionAffinity":"None","internalTrafficPolicy":"Cluster"}}""")!.AsObject();
        svc["spec"]!["clusterIP"] = value;
        Assert.Equal(valid, ObjectValidator.Validate(svc).Count == 0);
    }

    [Fact]
    public void Validation_of_undefaulted_objects_reports_missing_namespace()
    {
        var pod = Assert.Single(Manifests.Parse("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n", "p"));
        Assert.Equal(["metadata.namespace: Required value"], ObjectValidator.Validate(pod).Select(e => e.ToString()));
        var node = Assert.Single(Manifests.Parse("apiVersion: v1\nkind: Node\nmetadata: {name: n, namespace: x}\n", "n"));
        Assert.Equal(["metadata.namespace: Forbidden: not allowed on this type"], ObjectValidator.Validate(node).Select(e => e.ToString()));
    }

    [Fact]
    public void Field_errors_quote_values_as_go_does()
    {
        Assert.Equal("a: Invalid value: \"x\\\"y\\n\": bad", FieldError.Invalid("a", "x\"y\n", "bad").ToString());
        Assert.Equal("a: Invalid value: 5: bad", FieldError.Invalid("a", 5, "bad").ToString());
        Assert.Equal("a: Invalid value: [1]: bad", FieldError.Invalid("a", new JsonArray(1), "bad").ToString());
        Assert.Equal("a: Unsupported value: \"x\": supported values: \"A\", \"B\"", FieldError.NotSupported("a", "x", ["B", "A"]).ToString());
        Assert.Equal("a: Required value", FieldError.Required("a").ToString());
    }
}
