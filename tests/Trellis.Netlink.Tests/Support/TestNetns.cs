using System.Security.Cryptography;

namespace Trellis.Netlink.Tests.Support;

/// <summary>
/// A throwaway network namespace "trl-nltest-XXXXXXXX" with an open <see cref="RtNetlink"/>
/// inside it; deleted on Dispose, whatever the test did. Nothing touches the host namespace.
/// </summary>
internal sealed class TestNetns : IDisposable
{
    // `ip netns add` sets up the /run/netns mount on first use; serialise so parallel test
    // classes do not race on it.
    private static readonly Lock s_ipLock = new();

    public TestNetns()
    {
        Name = "trl-nltest-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        lock (s_ipLock)
        {
            Cmd.Check("ip", "netns", "add", Name);
        }
        try
        {
            Ns = NetNs.Open(Path);
            Nl = RtNetlink.OpenIn(Ns);
        }
        catch
        {
            Ns?.Dispose();
            Delete();
            throw;
        }
    }

    public string Name { get; }

    public string Path => "/var/run/netns/" + Name;

    public NetNs Ns { get; }

    public RtNetlink Nl { get; }

    /// <summary><c>ip -n NAME ARGS</c></summary>
    public string Ip(params string[] args) => Cmd.Ip(Name, args);

    public void Dispose()
    {
        Nl?.Dispose();
        Ns?.Dispose();
        Delete();
    }

    private void Delete()
    {
        lock (s_ipLock)
        {
            Cmd.Run("ip", "netns", "del", Name);
        }
    }
}
