using System.Text;
using System.Text.Json.Nodes;

namespace Trellis.Lab.Tests.NetworkPolicy;

/// <summary>
/// Connectivity between the nine model pods (x, y, z × a, b, c), as upstream's reachability.go keeps it:
/// rows are clients, columns servers. A pod to itself is never compared (upstream ignores loopback: CNIs
/// disagree on it, and probe does not try it). An observed cell may be unknown (the pair was not reported).
/// </summary>
public sealed class TruthTable
{
    public static readonly string[] Namespaces = ["x", "y", "z"];
    public static readonly string[] PodNames = ["a", "b", "c"];
    public static readonly string[] Pods = [.. Namespaces.SelectMany(n => PodNames.Select(p => $"{n}/{p}"))];

    private readonly bool?[,] _cells = new bool?[Pods.Length, Pods.Length];
    private readonly Dictionary<(int, int), string> _errors = [];

    public bool? this[string from, string to] => _cells[Index(from), Index(to)];

    public static TruthTable Expected(IEnumerable<ReachRule> rules)
    {
        var t = new TruthTable();
        for (int i = 0; i < Pods.Length; i++)
        {
            for (int j = 0; j < Pods.Length; j++)
            {
                t._cells[i, j] = true;
            }
        }
        foreach (var rule in rules)
        {
            for (int i = 0; i < Pods.Length; i++)
            {
                for (int j = 0; j < Pods.Length; j++)
                {
                    if (rule.From.Matches(Pods[i]) && rule.To.Matches(Pods[j]))
                    {
                        t._cells[i, j] = rule.Allow;
                    }
                }
            }
        }
        return t;
    }

    /// <summary>From `trellis probe -o json` (DESIGN.md §6); pods outside the model are ignored.</summary>
    public static TruthTable Observed(JsonNode probe)
    {
        var t = new TruthTable();
        foreach (var r in probe["results"]!.AsArray())
        {
            string from = r!["from"]!.GetValue<string>(), to = r["to"]!.GetValue<string>();
            if (Array.IndexOf(Pods, from) is int i and >= 0 && Array.IndexOf(Pods, to) is int j and >= 0)
            {
                t._cells[i, j] = r["connected"]!.GetValue<bool>();
                if (r["error"]?.GetValue<string>() is { } e)
                {
                    t._errors[(i, j)] = e;
                }
            }
        }
        return t;
    }

    /// <summary>The pairs (loopback excluded) where the two tables disagree.</summary>
    public IReadOnlyList<(string From, string To)> Mismatches(TruthTable observed)
    {
        var result = new List<(string, string)>();
        for (int i = 0; i < Pods.Length; i++)
        {
            for (int j = 0; j < Pods.Length; j++)
            {
                if (i != j && _cells[i, j] != observed._cells[i, j])
                {
                    result.Add((Pods[i], Pods[j]));
                }
            }
        }
        return result;
    }

    public bool AllAllowed => Enumerable.Range(0, Pods.Length).All(i => Enumerable.Range(0, Pods.Length).All(j => i == j || _cells[i, j] == true));

    /// <summary>Upstream's printout: "." connected, "X" not, "?" not reported; the diagonal is "-" (not compared).</summary>
    public string Render() => Grid((i, j) => i == j ? "-" : _cells[i, j] switch { true => ".", false => "X", null => "?" });

    /// <summary>Upstream's comparison table: "." where the observation matches, "X" where it does not.</summary>
    public string Comparison(TruthTable observed) => Grid((i, j) => i == j ? "-" : _cells[i, j] == observed._cells[i, j] ? "." : "X");

    /// <summary>The expected, observed and comparison tables, with the error probe gave for each wrong pair.</summary>
    public string Diff(TruthTable observed)
    {
        var sb = new StringBuilder();
        sb.Append("expected:\n").Append(Render()).Append("observed:\n").Append(observed.Render()).Append("comparison:\n").Append(Comparison(observed));
        foreach (var (from, to) in Mismatches(observed))
        {
            sb.Append("  ").Append(from).Append(" -> ").Append(to).Append(": expected ").Append(Word(this[from, to]))
                .Append(", observed ").Append(Word(observed[from, to]));
            if (observed._errors.TryGetValue((Index(from), Index(to)), out var e))
            {
                sb.Append(" (").Append(e).Append(')');
            }
            sb.Append('\n');
        }
        return sb.ToString();

        static string Word(bool? b) => b switch { true => "connected", false => "blocked", null => "not reported" };
    }

    private static string Grid(Func<int, int, string> cell)
    {
        var sb = new StringBuilder("-");
        foreach (var p in Pods)
        {
            sb.Append('\t').Append(p);
        }
        sb.Append('\n');
        for (int i = 0; i < Pods.Length; i++)
        {
            sb.Append(Pods[i]);
            for (int j = 0; j < Pods.Length; j++)
            {
                sb.Append('\t').Append(cell(i, j));
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static int Index(string pod) => Array.IndexOf(Pods, pod) is int i and >= 0 ? i : throw new ArgumentException($"{pod} is not a model pod", nameof(pod));
}
