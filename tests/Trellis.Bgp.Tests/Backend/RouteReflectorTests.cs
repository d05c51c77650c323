using System.Net;
using Trellis.Bgp.Fsm;

namespace Trellis.Bgp.Tests.Backend;

/// <summary>RFC 4456 in the speaker, over real TCP on loopback: a reflector between two clients.</summary>
public sealed class RouteReflectorTests
{
    private static bool WaitFor(Func<bool> condition, int seconds = 10)
    {
        for (var until = DateTime.UtcNow.AddSeconds(seconds); DateTime.UtcNow < until; Thread.Sleep(20))
        {
            if (condition())
            {
                return true;
            }
        }
        return condition();
    }

    [Fact]
    public async Task A_client_route_reaches_the_other_client_with_originator_and_cluster_list_and_goes_with_the_withdraw()
    {
        var rrAddress = IPAddress.Loopback;
        IPAddress a = IPAddress.Parse("127.0.0.2"), b = IPAddress.Parse("127.0.0.3");
        await using var rr = new BgpSpeaker(new BgpSpeakerOptions
        {
            Asn = 64512,
            RouterId = IPAddress.Parse("10.0.0.1"),
            Listen = new IPEndPoint(rrAddress, 0),
            RouteReflectorClusterId = 0xF4000001,
            GracefulRestart = false,
        });
        rr.AddPeer(new BgpPeerConfig { Address = a, Asn = 64512, Passive = true, RouteReflectorClient = true });
        rr.AddPeer(new BgpPeerConfig { Address = b, Asn = 64512, Passive = true, RouteReflectorClient = true });
        rr.Start();
        BgpSpeaker Client(IPAddress self, string id)
        {
            var s = new BgpSpeaker(new BgpSpeakerOptions { Asn = 64512, RouterId = IPAddress.Parse(id), GracefulRestart = false });
            s.AddPeer(new BgpPeerConfig { Address = rrAddress, Asn = 64512, Port = rr.ListenPort, LocalAddress = self });
            s.Start();
            return s;
        }
        await using var ca = Client(a, "10.0.0.2");
        await using var cb = Client(b, "10.0.0.3");
        Assert.True(WaitFor(() => rr.Peers().All(p => p.State == BgpState.Established)), "sessions up");
        var prefix = IPNetwork.Parse("10.244.2.0/24");
        ca.Announce(prefix);
        Assert.True(WaitFor(() => cb.RoutesFrom(rrAddress).Any(r => r.Prefix == prefix)), "reflected to the other client");
        var route = cb.RoutesFrom(rrAddress).Single(r => r.Prefix == prefix);
        Assert.Equal(a, route.NextHop); // next hop unchanged
        Assert.Equal(0x0A000002u, route.Attributes.OriginatorId);
        Assert.Equal([0xF4000001u], route.Attributes.ClusterList!);
        // Never back to its source.
        Thread.Sleep(200);
        Assert.DoesNotContain(ca.RoutesFrom(rrAddress), r => r.Prefix == prefix);
        Assert.Equal(1, rr.Peer(b)!.PrefixesAdvertised);

        ca.Withdraw(prefix);
        Assert.True(WaitFor(() => cb.RoutesFrom(rrAddress).All(r => r.Prefix != prefix)), "withdrawn at the other client");

        // A client that comes up later gets the reflected table at once.
        cb.Announce(IPNetwork.Parse("10.244.3.0/24"));
        await using var cc = new BgpSpeaker(new BgpSpeakerOptions { Asn = 64512, RouterId = IPAddress.Parse("10.0.0.4"), GracefulRestart = false });
        rr.AddPeer(new BgpPeerConfig { Address = IPAddress.Parse("127.0.0.4"), Asn = 64512, Passive = true, RouteReflectorClient = true });
        cc.AddPeer(new BgpPeerConfig { Address = rrAddress, Asn = 64512, Port = rr.ListenPort, LocalAddress = IPAddress.Parse("127.0.0.4") });
        cc.Start();
        Assert.True(WaitFor(() => cc.RoutesFrom(rrAddress).Any(r => r.Prefix == IPNetwork.Parse("10.244.3.0/24") && r.NextHop.Equals(b))), "full table to a new client");
    }
}
