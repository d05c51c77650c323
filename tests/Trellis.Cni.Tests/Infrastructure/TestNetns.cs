namespace Trellis.Cni.Tests.Infrastructure;

/// <summary>
/// A throwaway network namespace ("trl-t-…", per the lab's safety rules) deleted on dispose,
/// so nothing a test does can reach the host's network.
/// </summary>
public sealed class TestNetns : IDisposable
{
    public TestNetns(string tag = "t")
    {
        Name = $"trl-{tag}-{Guid.NewGuid().ToString("N")[..8]}";
        Sh.Must("ip", "netns", "add", Name);
    }

    public string Name { get; }

    public string Path => "/var/run/netns/" + Name;

    public string Exec(params string[] args) => Sh.Must("ip", ["netns", "exec", Name, .. args]);

    public (int Exit, string Out, string Err) TryExec(params string[] args) => Sh.Run("ip", ["netns", "exec", Name, .. args]);

    public void Dispose() => Sh.Run("ip", "netns", "del", Name);
}

/// <summary>Skips when the tests cannot create network namespaces (not root).</summary>
public sealed class KernelFactAttribute : FactAttribute
{
    public KernelFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root to create network namespaces";
        }
    }
}
