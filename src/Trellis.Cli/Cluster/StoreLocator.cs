using Trellis.Cli.Lab;
using Trellis.Cli.Workload;
using Trellis.Core.Lab;

namespace Trellis.Cli.Cluster;

/// <summary>
/// Finds the cluster store the way DESIGN.md §5 orders it: --store URL, else $TRELLIS_STORE,
/// else the lab named by --lab or $TRELLIS_LAB, else the lab named "default", else fail.
/// </summary>
public static class StoreLocator
{
    public static string Resolve(string? storeFlag, string? labFlag)
    {
        if (!string.IsNullOrEmpty(storeFlag))
        {
            return storeFlag;
        }
        if (Environment.GetEnvironmentVariable("TRELLIS_STORE") is { Length: > 0 } env)
        {
            return env;
        }
        string? lab = labFlag is { Length: > 0 } ? labFlag : Environment.GetEnvironmentVariable("TRELLIS_LAB");
        if (lab is { Length: > 0 })
        {
            return LabState.Load(lab)?.Store
                ?? throw new UsageException($"--lab: no lab named '{lab}' is running (trellis lab up --name {lab})");
        }
        return LabState.Load(LabConfig.DefaultName)?.Store
            ?? throw new UsageException("no lab is running: start one with `trellis lab up`, or pass --store URL / set TRELLIS_STORE");
    }

    /// <summary>
    /// Opens the store <see cref="Resolve"/> finds. A URL from a lab's state opens as the lab's
    /// (through its underlay when the lab runs its own etcd: the host netns cannot route there);
    /// an explicit --store or $TRELLIS_STORE connects from here.
    /// </summary>
    public static Trellis.Store.IClusterStore Open(string? storeFlag, string? labFlag)
    {
        string url = Resolve(storeFlag, labFlag);
        if (string.IsNullOrEmpty(storeFlag) && Environment.GetEnvironmentVariable("TRELLIS_STORE") is not { Length: > 0 })
        {
            string lab = labFlag is { Length: > 0 } ? labFlag : Environment.GetEnvironmentVariable("TRELLIS_LAB") is { Length: > 0 } e ? e : LabConfig.DefaultName;
            if (LabState.Load(lab) is { } state && state.Store == url)
            {
                return LabEtcd.Open(state);
            }
        }
        return Trellis.Store.ClusterStore.Open(url);
    }

    /// <summary>The lab whose state applies (for commands that need namespaces, not just the store).</summary>
    public static LabState ResolveLab(string? labFlag)
    {
        string lab = labFlag is { Length: > 0 } ? labFlag : Environment.GetEnvironmentVariable("TRELLIS_LAB") is { Length: > 0 } e ? e : LabConfig.DefaultName;
        return LabState.Load(lab) ?? throw new UsageException($"no lab named '{lab}' is running: start one with `trellis lab up`");
    }
}
