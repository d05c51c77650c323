using System.Text.Json.Nodes;
using CsCheck;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Objects;

public class PrinterTests
{
    private static readonly DateTimeOffset s_now = Golden.CreatedAt;

    public static TheoryData<string> TableCases => Golden.Cases("print");

    /// <summary>testassets/objects/print/&lt;kind&gt;/input.yaml printed as table.txt, wide.txt and all-namespaces.txt.</summary>
    [Theory]
    [MemberData(nameof(TableCases))]
    public void Tables_match_golden(string name)
    {
        string dir = Golden.Dir("print", name);
        var objects = Manifests.Parse(File.ReadAllText(Path.Combine(dir, "input.yaml")), name);
        var kind = Kinds.Find(objects[0])!;
        Golden.AssertText(Path.Combine(dir, "table.txt"), TablePrinter.Print(kind, objects, s_now));
        Golden.AssertText(Path.Combine(dir, "wide.txt"), TablePrinter.Print(kind, objects, s_now, wide: true));
        Golden.AssertText(Path.Combine(dir, "all-namespaces.txt"), TablePrinter.Print(kind, objects, s_now, allNamespaces: true));
    }

    [Fact]
    public void Table_layout_is_kubectls_tabwriter()
    {
        var pod = Assert.Single(Manifests.Parse("""
            apiVersion: v1
            kind: Pod
            metadata: {name: nginx, namespace: default, creationTimestamp: "2025-01-02T03:04:00Z"}
            spec: {containers: [{name: nginx, image: nginx}]}
            status:
              phase: Running
              containerStatuses: [{name: nginx, ready: true, restartCount: 0, state: {running: {}}}]
            """, "p"));
        // The shape every kubectl user knows: min width 6, 3 spaces of padding, the last column unpadded.
        Assert.Equal(
            "NAME    READY   STATUS    RESTARTS   AGE\n" +
            "nginx   1/1     Running   0          5s\n",
            TablePrinter.Print(Kinds.Pod, [pod], s_now));
        Assert.Equal("", TablePrinter.Print(Kinds.Pod, [], s_now));
        Assert.Equal("No resources found in demo namespace.", TablePrinter.NoResourcesMessage("demo"));
    }

    // duration.HumanDuration, the AGE column.
    [Theory]
    [InlineData(-3, "<invalid>")]
    [InlineData(-1, "0s")]
    [InlineData(0, "0s")]
    [InlineData(5, "5s")]
    [InlineData(119, "119s")]
    [InlineData(120, "2m")]
    [InlineData(182, "3m2s")]
    [InlineData(599, "9m59s")]
    [InlineData(600, "10m")]
    [InlineData(3 * 3600 - 1, "179m")]
    [InlineData(3 * 3600, "3h")]
    [InlineData(3 * 3600 + 25 * 60, "3h25m")]
    [InlineData(8 * 3600, "8h")]
    [InlineData(47 * 3600 + 3599, "47h")]
    [InlineData(2 * 86400 + 3 * 3600, "2d3h")]
    [InlineData(7 * 86400, "7d")]
    [InlineData(8 * 86400 + 5 * 3600, "8d")]
    [InlineData(729 * 86400, "729d")]
    [InlineData(730 * 86400, "2y")]
    [InlineData(731 * 86400, "2y1d")]
    [InlineData(8 * 365 * 86400, "8y")]
    [InlineData(20 * 365 * 86400 + 86400, "20y")]
    public void Age_is_formatted_like_kubectl(long seconds, string expected)
    {
        Assert.Equal(expected, HumanDuration.Format(TimeSpan.FromSeconds(seconds)));
    }

    [Fact]
    public void Age_without_a_timestamp_is_unknown()
    {
        Assert.Equal("<unknown>", HumanDuration.Since(null, s_now));
        Assert.Equal("1s", HumanDuration.Since(s_now.AddMilliseconds(-1500), s_now));
    }

    [Fact]
    public void Json_output_is_the_bare_object_by_name_and_a_List_otherwise()
    {
        var objs = Manifests.Parse(File.ReadAllText(Golden.Dir("print", "namespaces", "input.yaml")), "ns");
        string one = ObjectPrinter.Print(Kinds.Namespace, [objs[1]], OutputFormat.Json, s_now, byName: true);
        Assert.Equal("""
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": "demo",
                    "creationTimestamp": "2025-01-02T03:00:05Z"
                },
                "status": {
                    "phase": "Active"
                }
            }

            """.ReplaceLineEndings("\n"), one);
        var list = JsonNode.Parse(ObjectPrinter.Print(Kinds.Namespace, objs, OutputFormat.Json, s_now))!.AsObject();
        Assert.Equal(["apiVersion", "kind", "items"], list.Select(p => p.Key));
        Assert.Equal("List", list["kind"]!.GetValue<string>());
        Assert.Equal(3, list["items"]!.AsArray().Count);
        Assert.Equal("""{"apiVersion":"v1","kind":"List","items":[]}""", JsonNode.Parse(ObjectPrinter.Print(Kinds.Pod, [], OutputFormat.Json, s_now))!.ToJsonString());
        // A get without a name lists even a single match.
        Assert.Equal("List", JsonNode.Parse(ObjectPrinter.Print(Kinds.Namespace, [objs[0]], OutputFormat.Json, s_now))!["kind"]!.GetValue<string>());
        Assert.Contains("\"x\\u003Cy\"", ObjectPrinter.ToJson(new JsonObject { ["a"] = "x<y" }), StringComparison.Ordinal);
        Assert.Contains("\"é\"", ObjectPrinter.ToJson(new JsonObject { ["a"] = "é" }), StringComparison.Ordinal);
    }

    [Fact]
    public void Yaml_output_matches_golden_and_reads_back_equal()
    {
        string input = File.ReadAllText(Golden.Dir("yaml", "input.yaml"));
        var objects = Manifests.Parse(input, "yaml/input.yaml");
        string yaml = ObjectPrinter.Print(Kinds.Service, objects, OutputFormat.Yaml, s_now, byName: true);
        Golden.AssertText(Golden.Dir("yaml", "expected.yaml"), yaml);
        var back = Assert.Single(Manifests.Parse(yaml, "round-trip"));
        Assert.Null(Golden.JsonDiff(objects[0], back, "$"));
    }

    [Fact]
    public void Every_golden_manifest_round_trips_through_yaml_and_json()
    {
        foreach (var dir in Directory.GetDirectories(Golden.Dir("cases")).Where(d => File.Exists(Path.Combine(d, "expected.json"))))
        {
            var objects = Manifests.Parse(File.ReadAllText(Path.Combine(dir, "input.yaml")), dir);
            var list = ObjectPrinter.List(objects);
            var viaYaml = Manifests.Parse(ObjectPrinter.ToYaml(list), "yaml");
            var viaJson = Manifests.Parse(ObjectPrinter.ToJson(list), "json");
            Assert.Equal(objects.Count, viaYaml.Count);
            for (int i = 0; i < objects.Count; i++)
            {
                Assert.Null(Golden.JsonDiff(objects[i], viaYaml[i], dir));
                Assert.Null(Golden.JsonDiff(objects[i], viaJson[i], dir));
                Assert.Equal(objects[i].ToJsonString(), viaYaml[i].ToJsonString());
            }
        }
    }

    [Theory]
    [InlineData("80")]
    [InlineData("true")]
    [InlineData("yes")]
    [InlineData("Off")]
    [InlineData("null")]
    [InlineData("~")]
    [InlineData("")]
    [InlineData("1e3")]
    [InlineData("0x10")]
    [InlineData("0644")]
    [InlineData("1_000")]
    [InlineData("1:30")]
    [InlineData(".inf")]
    [InlineData("- x")]
    [InlineData("a: b")]
    [InlineData("#comment")]
    [InlineData(" lead")]
    [InlineData("trail ")]
    [InlineData("line1\nline2\n")]
    [InlineData("line1\nline2")]
    [InlineData("tab\there")]
    [InlineData("quote\"s and 'single'")]
    [InlineData("{\"VNI\":1,\"VtepMAC\":\"0a:58:0a:f4:01:01\"}")]
    [InlineData("*alias")]
    [InlineData("&anchor")]
    [InlineData("!tag")]
    [InlineData("%percent")]
    [InlineData("@at")]
    [InlineData("`tick")]
    [InlineData("<<")]
    [InlineData("trailing space \nline")]
    [InlineData("\u00e9t\u00e9 \U0001F600")]
    [InlineData("ctl\u0001")]
    public void Strings_that_would_read_back_as_something_else_are_quoted(string value)
    {
        var obj = new JsonObject { ["apiVersion"] = "v1", ["kind"] = "ConfigMap", ["v"] = value, [value.Length == 0 ? "empty" : value] = 1 };
        string yaml = ObjectPrinter.ToYaml(obj);
        var back = Assert.Single(Manifests.Parse(yaml, "t"));
        Assert.Equal(value, back["v"]!.GetValue<string>());
        Assert.True(back.ContainsKey(value.Length == 0 ? "empty" : value), yaml);
    }

    [Fact]
    public void Yaml_is_block_style_with_kubectl_indentation()
    {
        var obj = JsonNode.Parse("""{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{}},"spec":{"containers":[{"name":"c","ports":[{"containerPort":80}],"args":[]}]},"n":null,"f":1.5,"b":false}""")!;
        Assert.Equal("""
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
              labels: {}
            spec:
              containers:
              - name: c
                ports:
                - containerPort: 80
                args: []
            "n": null
            f: 1.5
            b: false

            """.ReplaceLineEndings("\n"), ObjectPrinter.ToYaml(obj));
    }

    private static readonly Gen<string> s_text = Gen.OneOf(
        Gen.String[Gen.Char["ab019 .:-#'\"\n\t{}[],&*!|>%@`~\\"], 0, 12],
        Gen.OneOf("80", "true", "no", "null", "~", "1.5", "0x1F", "-", "---", "...", "? x", "a: b", "- a", "0644", "1e5", ".nan"),
        Gen.String[0, 6]);

    private static readonly Gen<JsonNode?> s_leaf = Gen.OneOf<JsonNode?>(
        s_text.Select(s => (JsonNode?)JsonValue.Create(s)),
        Gen.Long.Select(l => (JsonNode?)JsonValue.Create(l)),
        Gen.Double[-1e6, 1e6].Select(d => (JsonNode?)JsonValue.Create(Math.Round(d, 3) + 0.5)),
        Gen.Bool.Select(b => (JsonNode?)JsonValue.Create(b)),
        Gen.Const<JsonNode?>(() => null));

    private static Gen<JsonNode?> Tree(int depth) => depth == 0
        ? s_leaf
        : Gen.Frequency(
            (3, s_leaf),
            (1, Gen.Dictionary(s_text, Tree(depth - 1))[0, 4].Select(d => (JsonNode?)new JsonObject(d.Select(p => KeyValuePair.Create(p.Key, p.Value))))),
            (1, Tree(depth - 1).Array[0, 4].Select(a => (JsonNode?)new JsonArray(a))));

    [Fact]
    public void Any_json_tree_survives_yaml_and_json_round_trips()
    {
        Tree(3).Array[0, 5].Sample(values =>
        {
            var obj = new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Thing" };
            for (int i = 0; i < values.Length; i++)
            {
                obj["k" + i] = values[i];
            }
            string yaml = ObjectPrinter.ToYaml(obj);
            var back = Assert.Single(Manifests.Parse(yaml, "y"));
            Assert.True(Golden.JsonDiff(obj, back, "$") is null, yaml + "\n" + Golden.JsonDiff(obj, back, "$"));
            Assert.Equal(yaml, ObjectPrinter.ToYaml(back));
            var viaJson = Assert.Single(Manifests.Parse(ObjectPrinter.ToJson(obj), "j"));
            Assert.Null(Golden.JsonDiff(obj, viaJson, "$"));
        }, iter: 2000);
    }
}
