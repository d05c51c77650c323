using System.Net;
using Trellis.Bgp.Fsm;

namespace Trellis.Bgp.Tests.Backend;

/// <summary>The Adj-RIB-In's memory: routes from different UPDATEs with equal attributes share one attribute object.</summary>
public sealed class AdjRibInTests
{
    [Fact]
    public async Task Equal_attributes_from_separate_updates_are_held_once_and_different_ones_apart()
    {
        IPAddress a = IPAddress.Parse("127.0.0.4"), b = IPAddress.Parse("127.0.0.5");
        await using var receiver = new BgpSpeaker(new BgpSpeakerOptions
        {
            Asn = 64512,
            RouterId = IPAddress.Parse("10.0.0.5"),
            Listen = new IPEndPoint(b, 0),
            GracefulRestart = false,
        });
        receiver.AddPeer(new BgpPeerConfig { Address = a, Asn = 64512, Passive = true });
        receiver.Start();
        await using var sender = new BgpSpeaker(new BgpSpeakerOptions { Asn = 64512, RouterId = IPAddress.Parse("10.0.0.4"), GracefulRestart = false });
        sender.AddPeer(new BgpPeerConfig { Address = b, Asn = 64512, Port = receiver.ListenPort, LocalAddress = a });
        sender.Start();
        // Both ends up (and the sender's End-of-RIB in), so each Announce goes out as its own UPDATE rather than
        // as part of the initial table, which groups prefixes by next hop.
        Assert.True(SpinWait.SpinUntil(() => receiver.Peer(a)?.State == BgpState.Established && sender.Peer(b)?.State == BgpState.Established && receiver.Peer(a)!.EndOfRibReceived, TimeSpan.FromSeconds(10)));

        // Three Announce calls: three UPDATEs; the third with another next hop.
        sender.Announce(IPNetwork.Parse("10.1.1.0/24"));
        sender.Announce(IPNetwork.Parse("10.1.2.0/24"));
        sender.Announce(IPNetwork.Parse("10.1.3.0/24"), IPAddress.Parse("127.0.0.9"));
        Assert.True(SpinWait.SpinUntil(() => receiver.RoutesFrom(a).Count == 3, TimeSpan.FromSeconds(10)));
        var routes = receiver.RoutesFrom(a).ToDictionary(r => r.Prefix.ToString());
        Assert.Same(routes["10.1.1.0/24"].Attributes, routes["10.1.2.0/24"].Attributes);
        Assert.Same(routes["10.1.1.0/24"].NextHop, routes["10.1.2.0/24"].NextHop);
        Assert.NotSame(routes["10.1.1.0/24"].Attributes, routes["10.1.3.0/24"].Attributes);
        Assert.Equal(a, routes["10.1.1.0/24"].NextHop);
        Assert.Equal(IPAddress.Parse("127.0.0.9"), routes["10.1.3.0/24"].NextHop);
    }
}
