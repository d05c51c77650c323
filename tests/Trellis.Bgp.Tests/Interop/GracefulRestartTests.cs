using System.Collections.Concurrent;
using System.Net;
using Trellis.Bgp.Fsm;
using Trellis.Bgp.Tests.Support;

namespace Trellis.Bgp.Tests.Interop;

/// <summary>RFC 4724 both ways with BIRD: BIRD keeps our routes across our restart, and we keep BIRD's across its crash.</summary>
public sealed class GracefulRestartTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    private static BgpSpeaker NewSpeaker(BgpLab lab, IPAddress bird, bool restarting, ConcurrentDictionary<IPNetwork, BgpRoute> learned)
    {
        var speaker = new BgpSpeaker(new BgpSpeakerOptions
        {
            Asn = 65001,
            RouterId = IPAddress.Parse("10.77.0.1"),
            Listen = new IPEndPoint(IPAddress.Any, 179),
            HoldTime = 9,
            Namespace = lab.SpeakerNs,
            Restarting = restarting,
            ForwardingPreserved = restarting,
            RestartTime = 30,
        });
        speaker.RoutesChanged += c =>
        {
            foreach (var r in c.Added)
            {
                learned[r.Prefix] = r;
            }
            foreach (var p in c.Withdrawn)
            {
                learned.TryRemove(p, out _);
            }
        };
        speaker.AddPeer(new BgpPeerConfig { Address = bird, Asn = 65002 });
        speaker.Announce(IPNetwork.Parse("10.10.0.0/24"));
        speaker.Start();
        return speaker;
    }

    [InteropFact(Routers.Bird)]
    public async Task Bird_keeps_our_routes_across_a_speaker_restart_but_drops_them_on_a_cease()
    {
        using var lab = new BgpLab();
        var bird = lab.AddRouter("grbird");
        var process = Routers.StartBird(lab, bird.Ns, "bird", bird.RouterAddress, 65002, bird.SpeakerAddress, 65001, null, ["10.20.0.0/24"]);
        var learned = new ConcurrentDictionary<IPNetwork, BgpRoute>();
        bool BirdHasOurs() => Routers.Birdc(lab, bird.Ns, "bird", "show route 10.10.0.0/24").Contains("10.10.0.0/24", StringComparison.Ordinal);

        var first = NewSpeaker(lab, bird.RouterAddress, restarting: false, learned);
        Assert.True(BgpLab.WaitFor(BirdHasOurs, s_timeout));
        Assert.True(BgpLab.WaitFor(() => learned.ContainsKey(IPNetwork.Parse("10.20.0.0/24")), s_timeout));

        // Crash-like stop: no NOTIFICATION, so BIRD holds our route as stale for the restart time.
        await first.AbortAsync();
        Thread.Sleep(2000);
        Assert.True(BirdHasOurs(), Routers.Birdc(lab, bird.Ns, "bird", "show protocols all trellis"));

        learned.Clear();
        await using (var second = NewSpeaker(lab, bird.RouterAddress, restarting: true, learned))
        {
            Assert.True(BgpLab.WaitFor(() => second.Peer(bird.RouterAddress)?.State == BgpState.Established, s_timeout));
            Assert.True(BirdHasOurs());
            Assert.True(BgpLab.WaitFor(() => learned.ContainsKey(IPNetwork.Parse("10.20.0.0/24")), s_timeout));

            // Now BIRD crashes: we keep its routes as stale while it is away.
            BgpLab.Stop(process);
            Assert.True(BgpLab.WaitFor(() => second.Peer(bird.RouterAddress)?.State != BgpState.Established, s_timeout));
            Thread.Sleep(500);
            Assert.True(learned.ContainsKey(IPNetwork.Parse("10.20.0.0/24")));
            Assert.Equal(1, second.Peer(bird.RouterAddress)!.StalePrefixes);

            process = Routers.StartBird(lab, bird.Ns, "bird", bird.RouterAddress, 65002, bird.SpeakerAddress, 65001, null, ["10.20.0.0/24"]);
            Assert.True(BgpLab.WaitFor(() => second.Peer(bird.RouterAddress)?.State == BgpState.Established && learned.ContainsKey(IPNetwork.Parse("10.20.0.0/24")), s_timeout));
            Assert.True(BgpLab.WaitFor(BirdHasOurs, s_timeout));
        }

        // An orderly stop sends Cease: BIRD withdraws our route at once.
        Assert.True(BgpLab.WaitFor(() => !BirdHasOurs(), TimeSpan.FromSeconds(5)));
    }
}
