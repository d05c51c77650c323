using CsCheck;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Objects;

public class ManifestParseTests
{
    private const string Pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n";

    [Fact]
    public void Multi_document_stream_skips_empty_documents_and_comments()
    {
        const string text = """
            # leading comment
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: a}   # trailing comment
            ---
            ---
            # only a comment
            ---
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}
            ---
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Namespace
              metadata: {name: c}
            - {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "d"}}
            ---
            """;
        var docs = Manifests.ParseDocuments(text, "all.yaml");
        Assert.Equal(["a", "b", "c", "d"], docs.Select(d => d.Json["metadata"]!["name"]!.GetValue<string>()));
        Assert.Equal([1, 4, 5, 5], docs.Select(d => d.Document));
        Assert.Equal([null, null, 0, 1], docs.Select(d => d.Item));
        Assert.Equal("all.yaml, document 5, items[1]", docs[3].Location);
        Assert.Equal(3, docs[0].Line);
    }

    [Fact]
    public void Empty_and_comment_only_input_gives_no_documents()
    {
        Assert.Empty(Manifests.Parse("", "x"));
        Assert.Empty(Manifests.Parse("# nothing\n\n", "x"));
        Assert.Empty(Manifests.Parse("---\n---\n", "x"));
        Assert.Empty(Manifests.Parse("~\n", "x"));
    }

    [Fact]
    public void Json_stream_of_concatenated_objects_is_read_as_kubectl_does()
    {
        var objs = Manifests.Parse("""
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"},"x":1.0,"y":1.5,"z":"80"}
            """, "ns.json");
        Assert.Equal(2, objs.Count);
        Assert.Equal("1", objs[1]["x"]!.ToJsonString());
        Assert.Equal("1.5", objs[1]["y"]!.ToJsonString());
        Assert.Equal("\"80\"", objs[1]["z"]!.ToJsonString());
    }

    [Fact]
    public void Json_with_a_byte_order_mark_and_leading_whitespace_is_json()
    {
        var obj = Assert.Single(Manifests.Parse("\uFEFF  \n {\"apiVersion\":\"v1\",\"kind\":\"Pod\"}", "x"));
        Assert.Equal("Pod", obj["kind"]!.GetValue<string>());
    }

    // YAML 1.2 core schema typing, as sigs.k8s.io/yaml gives for real manifests.
    [Theory]
    [InlineData("80", "80")]
    [InlineData("\"80\"", "\"80\"")]
    [InlineData("'80'", "\"80\"")]
    [InlineData("-5", "-5")]
    [InlineData("+5", "5")]
    [InlineData("0x1F", "31")]
    [InlineData("0o17", "15")]
    [InlineData("0644", "420")] // YAML 1.1 octal, which upstream manifests (defaultMode: 0644) rely on
    [InlineData("09", "9")]
    [InlineData("1.5", "1.5")]
    [InlineData("80.0", "80")]
    [InlineData("1e3", "1000")]
    [InlineData(".5", "0.5")]
    [InlineData("9223372036854775807", "9223372036854775807")]
    [InlineData("18446744073709551615", "18446744073709551615")]
    [InlineData("true", "true")]
    [InlineData("True", "true")]
    [InlineData("FALSE", "false")]
    [InlineData("\"true\"", "\"true\"")]
    [InlineData("yes", "\"yes\"")]
    [InlineData("on", "\"on\"")]
    [InlineData("null", "null")]
    [InlineData("~", "null")]
    [InlineData("", "null")]
    [InlineData("Null", "null")]
    [InlineData("\"\"", "\"\"")]
    [InlineData("1_000", "\"1_000\"")]
    [InlineData("1.2.3", "\"1.2.3\"")]
    [InlineData("10.96.0.10", "\"10.96.0.10\"")]
    [InlineData("1:30", "\"1:30\"")]
    [InlineData("0x", "\"0x\"")]
    [InlineData("-x", "\"-x\"")]
    [InlineData("!!str 80", "\"80\"")]
    [InlineData("! 80", "\"80\"")]
    [InlineData("!!int \"80\"", "80")]
    [InlineData("!!float 1", "1")]
    [InlineData("|\n  a\n  b", "\"a\\nb\\n\"")]
    [InlineData(">-\n  a\n  b", "\"a b\"")]
    [InlineData("[1, \"2\", x]", "[1,\"2\",\"x\"]")]
    [InlineData("{}", "{}")]
    [InlineData("\"\\u00e9\"", "\"\\u00E9\"")]
    public void Scalars_are_typed_by_the_core_schema(string yaml, string json)
    {
        var obj = Assert.Single(Manifests.Parse(Pod + "v: " + yaml + "\n", "t.yaml"));
        Assert.Equal(json, obj["v"]?.ToJsonString() ?? "null");
    }

    [Theory]
    [InlineData("80: a", "80")]
    [InlineData("true: a", "true")]
    [InlineData("~: a", "null")]
    [InlineData("0x10: a", "16")]
    [InlineData("\"quoted\": a", "quoted")]
    public void Keys_are_strings(string entry, string key)
    {
        var obj = Assert.Single(Manifests.Parse(Pod + "m:\n  " + entry + "\n", "t.yaml"));
        Assert.True(obj["m"]!.AsObject().ContainsKey(key));
    }

    [Fact]
    public void Anchors_aliases_and_merge_keys_work_as_in_kubectl()
    {
        var obj = Assert.Single(Manifests.Parse(Pod + """
            base: &base {a: 1, b: 2}
            copy: *base
            merged:
              <<: *base
              b: 3
            """, "t.yaml"));
        Assert.Equal("""{"a":1,"b":2}""", obj["copy"]!.ToJsonString());
        Assert.Equal("""{"b":3,"a":1}""", obj["merged"]!.ToJsonString());
        // The alias is a copy: changing one leaves the other.
        obj["copy"]!["a"] = 9;
        Assert.Equal(1, obj["base"]!["a"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("a: b: c\n", 1, 5, 5, "invalid mapping")]
    [InlineData("a:\n  - x\n - y\n", 1, 7, 2, "did not find expected key")]
    [InlineData("key: \"unterminated\n", 1, 5, 6, "")]
    [InlineData("m:\n  x: 1\n  x: 2\n", 1, 7, 3, "duplicate key \"x\"")]
    [InlineData("v: *nowhere\n", 1, 5, 4, "unknown anchor 'nowhere'")]
    [InlineData("v: !foo bar\n", 1, 5, 4, "unsupported tag !foo")]
    [InlineData("v: !!int abc\n", 1, 5, 4, "cannot read \"abc\" as !!int")]
    [InlineData("v: .inf\n", 1, 5, 4, "cannot be represented in JSON")]
    [InlineData("v: [a, b\n", 1, 0, 0, "")]
    public void Yaml_errors_name_source_document_line_and_column(string body, int doc, int line, int column, string problem)
    {
        var e = Assert.Throws<ManifestException>(() => Manifests.Parse(Pod + body, "bad.yaml"));
        Assert.Equal("bad.yaml", e.SourceName);
        Assert.Equal(doc, e.Document);
        Assert.NotNull(e.Line);
        if (line > 0)
        {
            Assert.Equal(line, e.Line);
            Assert.Equal(column, e.Column);
        }
        Assert.Contains(problem, e.Problem, StringComparison.Ordinal);
        Assert.StartsWith($"bad.yaml: document {doc} (line {e.Line}, column {e.Column}): ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_error_in_a_later_document_names_that_document()
    {
        var e = Assert.Throws<ManifestException>(() => Manifests.Parse(Pod + "---\n" + Pod + "---\nkind: Pod\n", "m.yaml"));
        Assert.Equal(3, e.Document);
        Assert.Contains("apiVersion: Required value", e.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("- a\n- b\n", "a manifest must be an object, not a list")]
    [InlineData("just text\n", "a manifest must be an object, not a string")]
    [InlineData("42\n", "a manifest must be an object, not a number")]
    [InlineData("kind: Pod\n", "apiVersion: Required value")]
    [InlineData("apiVersion: v1\n", "kind: Required value")]
    [InlineData("apiVersion: v1\nkind: \"\"\n", "kind: Required value")]
    [InlineData("apiVersion: 1\nkind: Pod\n", "apiVersion: must be a string, not a number")]
    [InlineData("apiVersion: v1\nkind: List\nitems: {}\n", "items: must be a list")]
    [InlineData("apiVersion: v1\nkind: List\nitems: [1]\n", "items[0]: must be an object, not a number")]
    [InlineData("apiVersion: v1\nkind: List\nitems: [{kind: Pod}]\n", "items[0].apiVersion: Required value")]
    public void Documents_must_be_objects_with_apiVersion_and_kind(string text, string problem)
    {
        var e = Assert.Throws<ManifestException>(() => Manifests.Parse(text, "x.yaml"));
        Assert.StartsWith(problem, e.Problem, StringComparison.Ordinal);
        Assert.Equal(1, e.Document);
    }

    [Theory]
    [InlineData("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",}", 1, 1, "")]
    [InlineData("{\"apiVersion\":\"v1\",\n \"kind\":\"Pod\",\n \"kind\":\"Pod\"}", 1, 3, "duplicate key \"kind\"")]
    [InlineData("{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}\n{\"kind\":1e999}", 2, 2, "out of range")]
    [InlineData("{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}\n[1]", 2, 2, "a manifest must be an object, not a list")]
    public void Json_errors_name_the_document_and_line(string text, int doc, int line, string problem)
    {
        var e = Assert.Throws<ManifestException>(() => Manifests.Parse(text, "x.json"));
        Assert.Contains(problem, e.Problem, StringComparison.Ordinal);
        Assert.Equal(doc, e.Document);
        Assert.Equal(line, e.Line);
    }

    [Fact]
    public void Alias_expansion_bombs_are_refused()
    {
        var sb = new System.Text.StringBuilder(Pod);
        sb.Append("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i < 9; i++)
        {
            sb.Append($"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n");
        }
        var e = Assert.Throws<ManifestException>(() => Manifests.Parse(sb.ToString(), "bomb.yaml"));
        Assert.Contains("alias expansion", e.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Deep_nesting_is_refused_without_exhausting_the_stack()
    {
        string deep = new string('[', 5000) + new string(']', 5000);
        var e = Assert.Throws<ManifestException>(() => Manifests.Parse(Pod + "v: " + deep + "\n", "deep.yaml"));
        Assert.Contains("nesting deeper", e.Problem, StringComparison.Ordinal);
        var j = Assert.Throws<ManifestException>(() => Manifests.Parse("{\"a\":" + deep + "}", "deep.json"));
        Assert.Equal("deep.json", j.SourceName);
    }

    [Fact]
    public void Arbitrary_text_never_crashes_the_reader()
    {
        Gen.String[Gen.Char["{}[]:,-#&*!|>'\"%@` \n\tab01.~"], 0, 60].Sample(text =>
        {
            try
            {
                Manifests.Parse(text, "fuzz");
            }
            catch (ManifestException)
            {
            }
        }, iter: 10000);
    }

    [Fact]
    public void Parse_returns_json_objects_that_serialize()
    {
        var obj = Assert.Single(Manifests.Parse(Pod + "spec: {containers: [{name: a, image: b}]}\n", "x"));
        Assert.IsType<JsonObject>(obj);
        Assert.Equal("""{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"b"}]}}""", obj.ToJsonString());
    }
}
