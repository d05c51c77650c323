using System.Diagnostics;
using System.Net;
using Trellis.Bgp.Fsm;
using Xunit.Abstractions;

namespace Trellis.Bgp.Tests.Bench;

/// <summary>
/// Convergence (issue 8): 20 speakers on loopback (127.0.1.N), as a full iBGP mesh and as clients of one
/// reflector; a node joins (its speaker starts, the others add it as a peer, as trellisd does on a Node
/// event) and the clock runs until every other speaker holds its prefix. Repeated to get p50/p99. Opt-in
/// (TRELLIS_BGP_BENCH=1); results in bench/Trellis.Bench.Bgp/RESULTS.md. The kernel route install
/// (one RTM_NEWROUTE, well under a millisecond) is not included.
/// </summary>
public sealed class ConvergenceBench(ITestOutputHelper output)
{
    private const int Nodes = 20;
    private const int Rounds = 30;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Node_join_convergence(bool reflector)
    {
        if (Environment.GetEnvironmentVariable("TRELLIS_BGP_BENCH") != "1")
        {
            return;
        }
        static IPAddress Addr(int i) => IPAddress.Parse($"127.0.1.{i + 1}");
        const int port = 1790;
        var speakers = new List<BgpSpeaker>();
        // The reflector's and the joiner's logs, shown only when a round does not converge.
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        BgpSpeaker Make(int i, bool rr) => new(new BgpSpeakerOptions
        {
            Asn = 64512,
            RouterId = IPAddress.Parse($"10.1.0.{i + 1}"),
            Listen = new IPEndPoint(Addr(i), port + (reflector ? 100 : 0)),
            RouteReflectorClusterId = rr ? 1u : null,
            ConnectRetryMin = TimeSpan.FromMilliseconds(100),
            ConnectRetryMax = TimeSpan.FromMilliseconds(500),
            Log = i == 0 || i == Nodes - 1 ? line => log.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} [{i}] {line}") : null,
        });
        void Peer(BgpSpeaker s, int i, int j) => s.AddPeer(new BgpPeerConfig
        {
            Address = Addr(j),
            Asn = 64512,
            Port = port + (reflector ? 100 : 0),
            LocalAddress = Addr(i),
            RouteReflectorClient = reflector && i == 0,
        });
        bool Peers(int i, int j) => !reflector ? i != j : (i == 0) != (j == 0);
        for (int i = 0; i < Nodes - 1; i++)
        {
            var s = Make(i, reflector && i == 0);
            for (int j = 0; j < Nodes - 1; j++)
            {
                if (Peers(i, j))
                {
                    Peer(s, i, j);
                }
            }
            s.Announce(IPNetwork.Parse($"10.244.{i + 1}.0/24"));
            s.Start();
            speakers.Add(s);
        }
        Assert.True(SpinWait.SpinUntil(() => speakers.All(s => s.Peers().All(p => p.State == BgpState.Established)), TimeSpan.FromSeconds(60)));
        var times = new List<double>();
        int joiner = Nodes - 1;
        for (int round = 0; round < Rounds; round++)
        {
            var prefix = IPNetwork.Parse($"10.245.{round}.0/24");
            var clock = Stopwatch.StartNew();
            var s = Make(joiner, false);
            for (int j = 0; j < Nodes - 1; j++)
            {
                if (Peers(joiner, j))
                {
                    Peer(s, joiner, j);
                    speakers[j].AddPeer(new BgpPeerConfig { Address = Addr(joiner), Asn = 64512, Port = port + (reflector ? 100 : 0), LocalAddress = Addr(j), RouteReflectorClient = reflector && j == 0 });
                }
            }
            s.Announce(prefix);
            s.Start();
            bool converged = SpinWait.SpinUntil(() => speakers.All(x => x.Peers().Any(p => x.RoutesFrom(p.Address).Any(r => r.Prefix == prefix))), TimeSpan.FromSeconds(30));
            Assert.True(converged, $"round {round} did not converge; joiner's peers: "
                + string.Join("; ", s.Peers().Select(p => $"{p.Address} {p.State} {p.LastError}"))
                + "\nmissing at: " + string.Join(", ", speakers.Select((x, k) => (x, k)).Where(t => !t.x.Peers().Any(p => t.x.RoutesFrom(p.Address).Any(r => r.Prefix == prefix))).Select(t => t.k))
                + "\nlog:\n" + string.Join("\n", log.TakeLast(60)));
            times.Add(clock.Elapsed.TotalMilliseconds);
            // The node leaves again: the others drop it, its speaker stops.
            for (int j = 0; j < Nodes - 1; j++)
            {
                speakers[j].RemovePeer(Addr(joiner));
            }
            await s.DisposeAsync();
        }
        times.Sort();
        double P(double q) => times[Math.Min(times.Count - 1, (int)Math.Ceiling(q * times.Count) - 1)];
        string line = $"{(reflector ? "route reflector" : "full mesh")}, {Nodes} nodes, {Rounds} joins: p50 {P(0.5):F1} ms, p99 {P(0.99):F1} ms, max {times[^1]:F1} ms";
        output.WriteLine(line);
        File.AppendAllText("/tmp/trellis-bgp-convergence.txt", line + "\n");
        foreach (var sp in speakers)
        {
            await sp.DisposeAsync();
        }
    }
}
