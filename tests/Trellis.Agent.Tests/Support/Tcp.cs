using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trellis.Agent.Tests.Support;

/// <summary>
/// One TCP exchange between two pods: the listener is created on a thread that entered the server pod's
/// namespace, the client socket on one that entered the client pod's (a socket keeps the namespace it was
/// made in), then both are driven from here.
/// </summary>
internal static class Tcp
{
    private static int s_port = 20000;

    /// <summary>Connects from <paramref name="from"/>'s pod to <paramref name="to"/>'s pod IP; returns the peer address the server saw and its greeting.</summary>
    public static async Task<(IPAddress SeenSource, string Reply)> Exchange(TestCluster cluster, TestNode from, TestNode to, int timeoutSeconds = 5)
    {
        // A fresh port each time, so no TIME_WAIT of an earlier exchange is in the way.
        int port = Interlocked.Increment(ref s_port);
        using var listener = to.PodNs.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(to.PodIp, port));
            s.Listen(4);
            return s;
        });
        using var client = from.PodNs.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            var accepting = listener.AcceptAsync(cts.Token).AsTask();
            await client.ConnectAsync(new IPEndPoint(to.PodIp, port), cts.Token);
            using var server = await accepting;
            var seen = ((IPEndPoint)server.RemoteEndPoint!).Address;
            await server.SendAsync(Encoding.ASCII.GetBytes("hello from " + to.Name + "\n"), cts.Token);
            server.Shutdown(SocketShutdown.Send);
            var buffer = new byte[256];
            var reply = new StringBuilder();
            int n;
            while ((n = await client.ReceiveAsync(buffer, cts.Token)) > 0)
            {
                reply.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
            return (seen, reply.ToString());
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException($"TCP {from.PodIp} ({from.Name}) -> {to.PodIp}:{port} ({to.Name}) failed: {e.Message}\n{cluster.Describe()}");
        }
    }

    /// <summary>Asserts pod-to-pod TCP works both ways and each side sees the other's pod IP (no NAT).</summary>
    public static async Task AssertPodsTalk(TestCluster cluster, TestNode a, TestNode b)
    {
        var (seenByB, replyFromB) = await Exchange(cluster, a, b);
        Assert.Equal(a.PodIp, seenByB);
        Assert.Equal($"hello from {b.Name}\n", replyFromB);
        var (seenByA, _) = await Exchange(cluster, b, a);
        Assert.Equal(b.PodIp, seenByA);
    }
}
