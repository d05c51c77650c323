using System.Globalization;
using System.Text;
using Trellis.Core.Routing;

namespace Trellis.Agent.Routing;

/// <summary>One operation the kernel refused (or that could not be mapped onto it), with why.</summary>
public sealed record RoutingOpError(RoutingOp Op, Exception Error)
{
    public override string ToString() => $"{Op}: {Error.Message}";
}

/// <summary>
/// What <see cref="RoutingReconciler.Apply"/> did: <see cref="Applied"/> operations changed the kernel,
/// <see cref="AlreadyConverged"/> found it already so ("exists" on add, "not found" on delete), the rest failed.
/// </summary>
public sealed record RoutingApplyResult(int Applied, int AlreadyConverged, IReadOnlyList<RoutingOpError> Errors)
{
    public static readonly RoutingApplyResult Nothing = new(0, 0, []);

    public bool Succeeded => Errors.Count == 0;

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Applied} applied, {AlreadyConverged} already converged, {Errors.Count} failed");
}

/// <summary>One compile → observe → plan → apply → re-observe pass.</summary>
/// <param name="Compilation">The compiler's answer; its <c>Errors</c> name nodes that got no route.</param>
/// <param name="Plan">Null when compilation failed fatally (nothing was observed or changed).</param>
/// <param name="Observed">The kernel after the pass (as <see cref="RoutingReconciler.Observe"/> reads it).</param>
/// <param name="Converged">The owned part of <see cref="Observed"/> is exactly the desired state.</param>
public sealed record RoutingSyncResult(
    RouteCompilation Compilation,
    RoutingPlan? Plan,
    RoutingApplyResult Apply,
    RoutingState? Observed,
    bool Converged)
{
    /// <summary>A log-friendly summary: the plan, failed operations, conflicts and compile errors.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        text.Append(Converged ? "converged" : "not converged").Append("; ").Append(Apply).Append('\n');
        if (Plan is not null)
        {
            text.Append(Plan.Dump());
        }
        foreach (var e in Apply.Errors)
        {
            text.Append("# failed: ").Append(e).Append('\n');
        }
        foreach (var e in Compilation.Errors)
        {
            text.Append("# compile error: ").Append(e).Append('\n');
        }
        return text.ToString();
    }
}
