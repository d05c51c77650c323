using System.Security.Cryptography;
using Trellis.Netlink;

namespace Trellis.Nftables.Tests.Support;

/// <summary>
/// A throwaway network namespace "trl-agt-XXXXXXXX-nft", deleted on Dispose whatever the test did. Every nft
/// command of these tests runs in one (through <see cref="Client"/> or <see cref="Nft"/>), never in the host's.
/// </summary>
internal sealed class TestNetns : IDisposable
{
    private static readonly Lock s_ipLock = new();

    public TestNetns()
    {
        Name = "trl-agt-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)) + "-nft";
        lock (s_ipLock)
        {
            Cmd.Check("ip", "netns", "add", Name);
        }
        try
        {
            Ns = NetNs.Open(Path);
            Client = new NftClient(new NftClientOptions { NetnsPath = Path });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name { get; }

    public string Path => "/var/run/netns/" + Name;

    public NetNs Ns { get; } = null!;

    /// <summary>An nft client bound to this namespace.</summary>
    public NftClient Client { get; } = null!;

    /// <summary><c>ip netns exec NAME nft ARGS</c>, for cross-checks that do not go through the code under test.</summary>
    public (int ExitCode, string Stdout, string Stderr) Nft(params string[] args) => Cmd.Run("ip", ["netns", "exec", Name, "nft", .. args]);

    public void Dispose()
    {
        Ns?.Dispose();
        lock (s_ipLock)
        {
            Cmd.Run("ip", "netns", "del", Name);
        }
    }
}
