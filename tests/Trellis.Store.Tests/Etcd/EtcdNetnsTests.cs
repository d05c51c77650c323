using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Trellis.Netlink;
using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests.Etcd;

/// <summary>
/// <see cref="ClusterStoreOptions.ConnectSocket"/> as the lab uses it: this process stays in its
/// own network namespace, etcd listens only inside a throwaway one (<c>trl-etcdtest-…</c>), and
/// the hook creates each socket on a thread that entered that namespace.
/// </summary>
public sealed class EtcdNetnsTests
{
    [EtcdNetnsFact]
    public async Task ConnectSocket_reaches_an_etcd_listening_only_inside_another_network_namespace()
    {
        string name = $"trl-etcdtest-{Guid.NewGuid():N}"[..21];
        Ip("netns", "add", name);
        try
        {
            Ip("-n", name, "link", "set", "lo", "up");
            await using var cluster = await EtcdCluster.StartAsync(1, EtcdTiming.Single, launcher: ["ip", "netns", "exec", name]);
            string url = cluster.Url; // 127.0.0.1:PORT, which in this namespace nobody listens on
            using var netns = NetNs.Open($"/var/run/netns/{name}");
            int hookCalls = 0;
            var options = new ClusterStoreOptions
            {
                RequestTimeout = TimeSpan.FromSeconds(1),
                ConnectSocket = async (endpoint, ct) =>
                {
                    Interlocked.Increment(ref hookCalls);
                    // A socket belongs to the namespace it is created in, whichever thread connects it.
                    var socket = netns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                    try
                    {
                        await socket.ConnectAsync(endpoint, ct);
                        return socket;
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            await using var store = ClusterStore.Open(url, options);
            await WaitReadyAsync(store, cluster.Members[0]);
            await using var watch = new WatchReader(store, "/ns/", 0);

            long r = await store.CreateAsync("/ns/a", Bytes.Utf8("from the host namespace"));

            Assert.Equal("from the host namespace", (await store.GetAsync("/ns/a"))!.Text());
            Assert.Equal(r, (await watch.NextAsync()).Revision);
            Assert.True(hookCalls > 0);
            // The same URL without the hook connects from this namespace, where nothing listens.
            await using var direct = ClusterStore.Open(url, new ClusterStoreOptions { RequestTimeout = TimeSpan.FromSeconds(0.5) });
            var ex = await Assert.ThrowsAsync<StoreUnavailableException>(() => direct.GetAsync("/ns/a"));
            Assert.Contains("connection refused", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            Ip("netns", "del", name);
        }
    }

    /// <summary>The member is only reachable through the hook, so readiness is asked through the store.</summary>
    private static async Task WaitReadyAsync(IClusterStore store, EtcdMember member)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                await store.CurrentRevisionAsync();
                return;
            }
            catch (StoreUnavailableException) when (DateTime.UtcNow < deadline && member.IsRunning)
            {
                await Task.Delay(20);
            }
            catch (StoreUnavailableException ex)
            {
                throw new InvalidOperationException($"etcd in the namespace never answered; log:\n{member.LogTail()}", ex);
            }
        }
    }

    private static void Ip(params string[] arguments)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', arguments)} failed ({process.ExitCode.ToString(CultureInfo.InvariantCulture)}): {error}");
        }
    }
}
