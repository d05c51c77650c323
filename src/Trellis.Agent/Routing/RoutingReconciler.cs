using Trellis.Core.Routing;
using Trellis.Netlink;

namespace Trellis.Agent.Routing;

/// <summary>
/// Applies <see cref="RouteCompiler"/>'s desired state to one node's kernel through rtnetlink — flannel's
/// shared route reconciler, with ownership by name and route protocol instead of memory:
/// <list type="bullet">
/// <item><see cref="Observe"/> reads the kernel into <see cref="RoutingState"/> form;</item>
/// <item><see cref="Apply"/> executes a <see cref="RoutingPlan"/> with the netlink verb of each operation's
/// name, treating "exists" on add and "not found" on delete as done, and carrying on past failures;</item>
/// <item><see cref="Sync"/> does compile → observe → plan → apply → re-observe.</item>
/// </list>
/// It never flushes and never touches what <see cref="RoutingDiff"/> does not own: links other than
/// <c>trellis.N</c>, routes of other protocols, dynamic neighbours. Not thread-safe: one sync loop drives it.
/// </summary>
public sealed partial class RoutingReconciler
{
    private readonly RtNetlink _nl;
    private readonly string _underlayInterface;

    /// <param name="nl">A handle opened in the node's network namespace.</param>
    /// <param name="underlayInterface">The node's underlay device (<c>eth0</c>); every input synced must name it.</param>
    public RoutingReconciler(RtNetlink nl, string underlayInterface)
    {
        ArgumentNullException.ThrowIfNull(nl);
        if (!RoutingNames.IsValidInterfaceName(underlayInterface))
        {
            throw new ArgumentException($"'{underlayInterface}' is not a valid interface name", nameof(underlayInterface));
        }
        _nl = nl;
        _underlayInterface = underlayInterface;
    }

    public string UnderlayInterface => _underlayInterface;

    /// <summary>
    /// Compiles <paramref name="input"/>, plans against the kernel and applies. A fatal compile error (this
    /// node's own settings) changes nothing: reconciling towards no state would tear down working routes.
    /// </summary>
    public RoutingSyncResult Sync(RouteCompilerInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!string.Equals(input.UnderlayInterface, _underlayInterface, StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"underlayInterface: input names '{input.UnderlayInterface}', this reconciler manages '{_underlayInterface}'", nameof(input));
        }
        var compilation = RouteCompiler.Compile(input);
        if (compilation.Desired is not { } desired)
        {
            return new RoutingSyncResult(compilation, null, RoutingApplyResult.Nothing, null, Converged: false);
        }
        var before = Observe();
        var plan = RoutingDiff.Plan(desired, before);
        if (plan.IsEmpty)
        {
            return new RoutingSyncResult(compilation, plan, RoutingApplyResult.Nothing, before, IsConverged(desired, before));
        }
        var applied = Apply(plan);
        var after = Observe();
        if (!IsConverged(desired, after) && plan.Ops.Any(o => o is LinkSetOp { SetMac: true }))
        {
            // Changing a device's MAC makes the kernel flush its neighbour table, permanent entries included
            // (NETDEV_CHANGEADDR → neigh_changeaddr → neigh_flush_dev without skip_perm): the entries the plan
            // saw in place are gone. One more round puts them back rather than leaving it to the next resync.
            var again = RoutingDiff.Plan(desired, after);
            var second = Apply(again);
            after = Observe();
            plan = new RoutingPlan([.. plan.Ops, .. again.Ops], again.Conflicts);
            applied = new RoutingApplyResult(applied.Applied + second.Applied, applied.AlreadyConverged + second.AlreadyConverged,
                [.. applied.Errors, .. second.Errors]);
        }
        return new RoutingSyncResult(compilation, plan, applied, after, IsConverged(desired, after));
    }

    /// <summary>Whether the owned part of <paramref name="observed"/> is exactly <paramref name="desired"/>.</summary>
    public static bool IsConverged(RoutingState desired, RoutingState observed)
    {
        ArgumentNullException.ThrowIfNull(desired);
        return string.Equals(desired.Dump(), Owned(observed).Dump(), StringComparison.Ordinal);
    }

    /// <summary>
    /// The part of an observed state Trellis owns, in the form the compiler writes desired state: <c>trellis.N</c>
    /// devices, their non-link-local addresses, protocol-<see cref="RoutingNames.TrellisRouteProtocol"/> routes,
    /// permanent neighbour and FDB entries.
    /// </summary>
    public static RoutingState Owned(RoutingState observed)
    {
        ArgumentNullException.ThrowIfNull(observed);
        return new RoutingState
        {
            Devices = observed.Devices.Where(d => RoutingNames.IsVxlanDevice(d.Name)).ToList(),
            Addresses = observed.Addresses.Where(a => RoutingNames.IsVxlanDevice(a.Device) && !a.Address.Address.IsIPv6LinkLocal).ToList(),
            Routes = observed.Routes.Where(r => r.IsOwned).ToList(),
            Neighbours = observed.Neighbours.Where(n => n.Permanent && RoutingNames.IsVxlanDevice(n.Device)).ToList(),
            Fdb = observed.Fdb.Where(f => f.Permanent && RoutingNames.IsVxlanDevice(f.Device)).ToList(),
        };
    }
}
