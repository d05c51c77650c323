using System.Text.Json.Nodes;
using Trellis.Core.Objects;

namespace Trellis.Core.Tests.Objects;

/// <summary>
/// testassets/objects/cases/&lt;case&gt;/input.yaml goes through what <c>trellis apply</c> does before storing —
/// parse, default for create, validate — and must give expected.json (the stored objects) or
/// expected-errors.txt (one <c>path: message</c> per line, or the parse error).
/// </summary>
public class ManifestGoldenTests
{
    public static TheoryData<string> Cases => Golden.Cases("cases");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Admission_of_manifest_matches_golden(string name)
    {
        string dir = Golden.Dir("cases", name);
        string input = File.ReadAllText(Path.Combine(dir, "input.yaml"));
        string errorsPath = Path.Combine(dir, "expected-errors.txt");
        string jsonPath = Path.Combine(dir, "expected.json");

        var (objects, errors) = Admit(input, name + "/input.yaml");

        bool expectErrors = Golden.Update ? errors.Count > 0 : File.Exists(errorsPath);
        if (expectErrors)
        {
            Golden.AssertText(errorsPath, string.Join("\n", errors) + "\n");
            return;
        }
        Assert.True(errors.Count == 0, $"{name}: unexpected errors:\n{string.Join("\n", errors)}");
        Golden.AssertJson(jsonPath, new JsonArray([.. objects]));
    }

    internal static (List<JsonObject> Objects, List<string> Errors) Admit(string input, string source)
    {
        var objects = new List<JsonObject>();
        var errors = new List<string>();
        IReadOnlyList<ManifestDocument> docs;
        try
        {
            docs = Manifests.ParseDocuments(input, source);
        }
        catch (ManifestException e)
        {
            errors.Add(e.Message);
            return (objects, errors);
        }
        int n = 0;
        foreach (var doc in docs)
        {
            n++;
            var obj = ObjectDefaults.ForCreate(doc.Json, $"00000000-0000-0000-0000-{n:D12}", Golden.CreatedAt);
            var problems = ObjectValidator.Validate(obj);
            errors.AddRange(problems.Select(p => docs.Count > 1 ? $"{doc.Location}: {p}" : p.ToString()));
            objects.Add(obj);
        }
        return (objects, errors);
    }
}
