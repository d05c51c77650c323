using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Trellis.Core.Objects;

/// <summary>The operators of k8s.io/apimachinery/pkg/selection.</summary>
public enum SelectorOperator
{
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// <summary>One term of a selector (labels.Requirement). Values are kept sorted.</summary>
public sealed record LabelRequirement(string Key, SelectorOperator Operator, ImmutableArray<string> Values)
{
    public bool Matches(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        bool has = labels.TryGetValue(Key, out var value);
        switch (Operator)
        {
            case SelectorOperator.In or SelectorOperator.Equals or SelectorOperator.DoubleEquals:
                return has && Values.Contains(value!, StringComparer.Ordinal);
            case SelectorOperator.NotIn or SelectorOperator.NotEquals:
                return !has || !Values.Contains(value!, StringComparer.Ordinal);
            case SelectorOperator.Exists:
                return has;
            case SelectorOperator.DoesNotExist:
                return !has;
            case SelectorOperator.GreaterThan or SelectorOperator.LessThan:
                if (!has || !long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long actual)
                    || Values.Length != 1 || !long.TryParse(Values[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long bound))
                {
                    return false;
                }
                return Operator == SelectorOperator.GreaterThan ? actual > bound : actual < bound;
            default:
                return false;
        }
    }

    /// <summary>kubectl's spelling: <c>a=b</c>, <c>a!=b</c>, <c>a in (x,y)</c>, <c>!a</c>.</summary>
    public override string ToString()
    {
        string values = string.Join(",", Values);
        return Operator switch
        {
            SelectorOperator.Equals => $"{Key}={values}",
            SelectorOperator.DoubleEquals => $"{Key}=={values}",
            SelectorOperator.NotEquals => $"{Key}!={values}",
            SelectorOperator.In => $"{Key} in ({values})",
            SelectorOperator.NotIn => $"{Key} notin ({values})",
            SelectorOperator.Exists => Key,
            SelectorOperator.DoesNotExist => "!" + Key,
            SelectorOperator.GreaterThan => $"{Key}>{values}",
            SelectorOperator.LessThan => $"{Key}<{values}",
            _ => Key,
        };
    }

    /// <summary>The problems NewRequirement reports for a key, operator and values (empty when valid).</summary>
    internal static IEnumerable<string> Problems(string key, SelectorOperator op, IReadOnlyList<string> values)
    {
        foreach (var msg in NameRules.IsQualifiedName(key))
        {
            yield return $"invalid label key \"{key}\": {msg}";
        }
        switch (op)
        {
            case SelectorOperator.In or SelectorOperator.NotIn when values.Count == 0:
                yield return "for 'in', 'notin' operators, values set can't be empty";
                break;
            case SelectorOperator.Equals or SelectorOperator.DoubleEquals or SelectorOperator.NotEquals when values.Count != 1:
                yield return "exact-match compatibility requires one single value";
                break;
            case SelectorOperator.Exists or SelectorOperator.DoesNotExist when values.Count != 0:
                yield return "values set must be empty for exists and does not exist";
                break;
            case SelectorOperator.GreaterThan or SelectorOperator.LessThan:
                if (values.Count != 1)
                {
                    yield return "for 'Gt', 'Lt' operators, exactly one value is required";
                }
                foreach (var v in values)
                {
                    if (!long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
                    {
                        yield return $"for 'Gt', 'Lt' operators, the value must be an integer: \"{v}\"";
                    }
                }
                break;
        }
        foreach (var v in values)
        {
            foreach (var msg in NameRules.IsValidLabelValue(v))
            {
                yield return $"invalid label value: \"{v}\": at key: \"{key}\": {msg}";
            }
        }
    }
}

/// <summary>
/// A label selector with the semantics of k8s.io/apimachinery/pkg/labels: all requirements must match;
/// <see cref="Everything"/> (no requirements) matches every label set; <see cref="Nothing"/> matches none.
/// Built from kubectl's <c>-l</c> syntax (<see cref="Parse"/>) or a metav1.LabelSelector (<see cref="FromJson"/>).
/// </summary>
public sealed partial class LabelSelector
{
    private LabelSelector(ImmutableArray<LabelRequirement> requirements, bool nothing)
    {
        Requirements = requirements;
        IsNothing = nothing;
    }

    public static LabelSelector Everything { get; } = new([], nothing: false);

    public static LabelSelector Nothing { get; } = new([], nothing: true);

    /// <summary>Sorted by key, as the Go selector keeps them.</summary>
    public ImmutableArray<LabelRequirement> Requirements { get; }

    public bool IsNothing { get; }

    public bool IsEverything => !IsNothing && Requirements.IsEmpty;

    public bool Matches(IReadOnlyDictionary<string, string>? labels)
    {
        if (IsNothing)
        {
            return false;
        }
        labels ??= JsonAccess.Empty;
        foreach (var r in Requirements)
        {
            if (!r.Matches(labels))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>A selector from requirements; each must be valid (see <see cref="LabelRequirement"/>).</summary>
    public static LabelSelector Create(IEnumerable<LabelRequirement> requirements)
    {
        var list = requirements.Select(r => r with { Values = [.. r.Values.Order(StringComparer.Ordinal)] }).ToList();
        foreach (var r in list)
        {
            if (LabelRequirement.Problems(r.Key, r.Operator, r.Values).FirstOrDefault() is { } problem)
            {
                throw new ArgumentException(problem, nameof(requirements));
            }
        }
        // Stable, so two requirements on one key keep their order (Go's sort is not stable; the result is the same set).
        return new([.. list.OrderBy(r => r.Key, StringComparer.Ordinal)], nothing: false);
    }

    /// <summary><c>labels.SelectorFromSet</c>: key=value for each entry; an empty set selects everything.</summary>
    public static LabelSelector FromSet(IReadOnlyDictionary<string, string> set)
    {
        ArgumentNullException.ThrowIfNull(set);
        return Create(set.Select(p => new LabelRequirement(p.Key, SelectorOperator.Equals, [p.Value])));
    }

    /// <summary>
    /// <c>metav1.LabelSelectorAsSelector</c>: a missing (null) selector selects nothing, <c>{}</c> selects everything,
    /// otherwise matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) must all hold.
    /// </summary>
    public static LabelSelector FromJson(JsonNode? node) =>
        TryFromJson(node, out var selector, out var error) ? selector : throw new FormatException(error);

    public static bool TryFromJson(JsonNode? node, [NotNullWhen(true)] out LabelSelector? selector, [NotNullWhen(false)] out string? error)
    {
        selector = null;
        error = null;
        if (node is null)
        {
            selector = Nothing;
            return true;
        }
        if (node is not JsonObject obj)
        {
            error = "a label selector must be an object";
            return false;
        }
        var reqs = new List<LabelRequirement>();
        if (obj.Get("matchLabels") is { } ml)
        {
            if (ml is not JsonObject labels)
            {
                error = "matchLabels must be an object";
                return false;
            }
            foreach (var (k, v) in labels)
            {
                if (JsonAccess.AsString(v) is not { } s)
                {
                    error = $"matchLabels[{k}] must be a string";
                    return false;
                }
                reqs.Add(new LabelRequirement(k, SelectorOperator.Equals, [s]));
            }
        }
        if (obj.Get("matchExpressions") is { } me)
        {
            if (me is not JsonArray exprs)
            {
                error = "matchExpressions must be a list";
                return false;
            }
            foreach (var e in exprs)
            {
                var expr = e as JsonObject;
                string key = expr.Str("key") ?? "";
                string op = expr.Str("operator") ?? "";
                SelectorOperator? sop = op switch
                {
                    "In" => SelectorOperator.In,
                    "NotIn" => SelectorOperator.NotIn,
                    "Exists" => SelectorOperator.Exists,
                    "DoesNotExist" => SelectorOperator.DoesNotExist,
                    _ => null,
                };
                if (sop is null)
                {
                    error = $"\"{op}\" is not a valid label selector operator";
                    return false;
                }
                reqs.Add(new LabelRequirement(key, sop.Value, [.. expr.StrList("values")]));
            }
        }
        foreach (var r in reqs)
        {
            if (LabelRequirement.Problems(r.Key, r.Operator, r.Values).FirstOrDefault() is { } problem)
            {
                error = problem;
                return false;
            }
        }
        selector = reqs.Count == 0 ? Everything : Create(reqs);
        return true;
    }

    /// <summary>
    /// kubectl's spelling (<c>labels.Selector.String()</c>): requirements sorted by key and joined with ','; "" for
    /// everything. <see cref="Nothing"/> prints as "&lt;nothing&gt;" (it has no -l spelling).
    /// </summary>
    public override string ToString() => IsNothing ? "<nothing>" : string.Join(",", Requirements);
}
