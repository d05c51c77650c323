using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Trellis.Bgp.Fsm;
using Trellis.Bgp.Tests.Support;
using Trellis.Bgp.Wire;

namespace Trellis.Bgp.Tests.Interop;

/// <summary>
/// One speaker in its own namespace peering at once with BIRD 2 (with MD5), GoBGP and FRR bgpd, each in
/// another namespace, plus a BIRD with the wrong MD5 password. Built once for the tests of this class.
/// </summary>
public sealed class InteropLab : IDisposable
{
    public const uint SpeakerAsn = 65001;
    public static readonly string[] Needed = [Routers.Bird, Routers.GoBgpd, Routers.FrrBgpd];

    public InteropLab()
    {
        if (!Environment.IsPrivilegedProcess || Needed.Any(b => !File.Exists(b)))
        {
            return;
        }
        Lab = new BgpLab();
        Bird = Lab.AddRouter("bird");
        GoBgp = Lab.AddRouter("gobgp");
        Frr = Lab.AddRouter("frr");
        BadBird = Lab.AddRouter("md5bad");
        Routers.StartBird(Lab, Bird.Ns, "bird", Bird.RouterAddress, 65002, Bird.SpeakerAddress, SpeakerAsn, "trellis-secret", ["10.20.0.0/24", "10.20.1.0/24"]);
        Routers.StartGoBgp(Lab, GoBgp.Ns, GoBgp.RouterAddress, 65003, GoBgp.SpeakerAddress, SpeakerAsn);
        Routers.StartFrr(Lab, Frr.Ns, Frr.RouterAddress, 65004, Frr.SpeakerAddress, SpeakerAsn, ["10.40.0.0/24"]);
        Routers.StartBird(Lab, BadBird.Ns, "badbird", BadBird.RouterAddress, 65005, BadBird.SpeakerAddress, SpeakerAsn, "wrong-password", ["10.50.0.0/24"]);

        Speaker = new BgpSpeaker(new BgpSpeakerOptions
        {
            Asn = SpeakerAsn,
            RouterId = IPAddress.Parse("10.77.0.1"),
            Listen = new IPEndPoint(IPAddress.Any, 179),
            HoldTime = 9,
            Namespace = Lab.SpeakerNs,
            Log = line => Log.Enqueue(line),
        });
        Speaker.RoutesChanged += change =>
        {
            foreach (var r in change.Added)
            {
                Learned[(change.Peer, r.Prefix)] = r;
            }
            foreach (var p in change.Withdrawn)
            {
                Learned.TryRemove((change.Peer, p), out _);
            }
        };
        Speaker.AddPeer(new BgpPeerConfig { Address = Bird.RouterAddress, Asn = 65002, Password = "trellis-secret" });
        Speaker.AddPeer(new BgpPeerConfig { Address = GoBgp.RouterAddress, Asn = 65003 });
        Speaker.AddPeer(new BgpPeerConfig { Address = Frr.RouterAddress, Asn = 65004 });
        Speaker.AddPeer(new BgpPeerConfig { Address = BadBird.RouterAddress, Asn = 65005, Password = "right-password" });
        Speaker.AddPeer(new BgpPeerConfig { Address = IPAddress.Parse("127.0.0.2"), Asn = 65099, Passive = true });
        Speaker.Announce(IPNetwork.Parse("10.10.0.0/24"));
        Speaker.Start();
    }

    internal BgpLab? Lab { get; }

    internal BgpSpeaker? Speaker { get; }

    internal (string Ns, IPAddress SpeakerAddress, IPAddress RouterAddress) Bird { get; }

    internal (string Ns, IPAddress SpeakerAddress, IPAddress RouterAddress) GoBgp { get; }

    internal (string Ns, IPAddress SpeakerAddress, IPAddress RouterAddress) Frr { get; }

    internal (string Ns, IPAddress SpeakerAddress, IPAddress RouterAddress) BadBird { get; }

    internal ConcurrentDictionary<(IPAddress Peer, IPNetwork Prefix), BgpRoute> Learned { get; } = new();

    internal ConcurrentQueue<string> Log { get; } = new();

    internal bool AllUp(params IPAddress[] peers) => peers.All(p => Speaker!.Peer(p)?.State == BgpState.Established);

    public void Dispose()
    {
        Speaker?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Lab?.Dispose();
    }
}

public sealed class InteropTests(InteropLab lab) : IClassFixture<InteropLab>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    private string Diagnostics() => string.Join('\n', lab.Log.TakeLast(40)) + "\n" + string.Join('\n', lab.Speaker!.Peers());

    [InteropFact(Routers.Bird, Routers.GoBgpd, Routers.FrrBgpd)]
    public void Sessions_with_bird_gobgp_and_frr_reach_established_and_prefixes_flow_both_ways()
    {
        var (bird, gobgp, frr) = (lab.Bird, lab.GoBgp, lab.Frr);
        Assert.True(BgpLab.WaitFor(() => lab.AllUp(bird.RouterAddress, gobgp.RouterAddress, frr.RouterAddress), s_timeout), Diagnostics());
        Routers.GoBgp(gobgp.Ns, "global", "rib", "add", "-a", "ipv4", "10.30.0.0/24");

        // Theirs to us, with the attributes they set.
        Assert.True(BgpLab.WaitFor(() => lab.Learned.ContainsKey((bird.RouterAddress, IPNetwork.Parse("10.20.1.0/24")))
            && lab.Learned.ContainsKey((gobgp.RouterAddress, IPNetwork.Parse("10.30.0.0/24")))
            && lab.Learned.ContainsKey((frr.RouterAddress, IPNetwork.Parse("10.40.0.0/24"))), s_timeout), Diagnostics());
        var fromBird = lab.Learned[(bird.RouterAddress, IPNetwork.Parse("10.20.0.0/24"))];
        Assert.Equal(bird.RouterAddress, fromBird.NextHop);
        Assert.Equal([65002u], fromBird.Attributes.PathAsns);
        Assert.Equal([65004u], lab.Learned[(frr.RouterAddress, IPNetwork.Parse("10.40.0.0/24"))].Attributes.PathAsns);

        // Ours to them, with our session address as next hop.
        Assert.True(BgpLab.WaitFor(() => Routers.Birdc(lab.Lab!, bird.Ns, "bird", "show route 10.10.0.0/24").Contains("10.10.0.0/24", StringComparison.Ordinal), s_timeout));
        Assert.True(BgpLab.WaitFor(() => Routers.GoBgp(gobgp.Ns, "global", "rib", "-a", "ipv4").Contains("10.10.0.0/24", StringComparison.Ordinal), s_timeout));
        Assert.True(BgpLab.WaitFor(() => Routers.Vtysh(lab.Lab!, frr.Ns, "show bgp ipv4 unicast").Contains("10.10.0.0/24", StringComparison.Ordinal), s_timeout),
            Routers.Vtysh(lab.Lab!, frr.Ns, "show bgp ipv4 unicast"));
        Assert.Contains(frr.SpeakerAddress.ToString(), Routers.Vtysh(lab.Lab!, frr.Ns, "show bgp ipv4 unicast 10.10.0.0/24"), StringComparison.Ordinal);

        // A new announcement and a withdrawal reach a running session.
        lab.Speaker!.Announce(IPNetwork.Parse("10.11.0.0/24"));
        Assert.True(BgpLab.WaitFor(() => Routers.GoBgp(gobgp.Ns, "global", "rib", "-a", "ipv4").Contains("10.11.0.0/24", StringComparison.Ordinal), s_timeout));
        lab.Speaker.Withdraw(IPNetwork.Parse("10.11.0.0/24"));
        Assert.True(BgpLab.WaitFor(() => !Routers.GoBgp(gobgp.Ns, "global", "rib", "-a", "ipv4").Contains("10.11.0.0/24", StringComparison.Ordinal), s_timeout));
        Routers.GoBgp(gobgp.Ns, "global", "rib", "del", "-a", "ipv4", "10.30.0.0/24");
        Assert.True(BgpLab.WaitFor(() => !lab.Learned.ContainsKey((gobgp.RouterAddress, IPNetwork.Parse("10.30.0.0/24"))), s_timeout));
    }

    [InteropFact(Routers.Bird, Routers.GoBgpd, Routers.FrrBgpd)]
    public void Md5_with_the_right_password_works_and_the_wrong_one_gives_no_session()
    {
        Assert.True(BgpLab.WaitFor(() => lab.AllUp(lab.Bird.RouterAddress), s_timeout), Diagnostics());
        // The BIRD with the wrong key has had as long; its SYNs are dropped by the kernel.
        Thread.Sleep(3000);
        var bad = lab.Speaker!.Peer(lab.BadBird.RouterAddress)!;
        Assert.NotEqual(BgpState.Established, bad.State);
        Assert.DoesNotContain(lab.Learned.Keys, k => k.Peer.Equals(lab.BadBird.RouterAddress));
        Assert.DoesNotContain("Established", Routers.Birdc(lab.Lab!, lab.BadBird.Ns, "badbird", "show protocols trellis"), StringComparison.Ordinal);
    }

    [InteropFact(Routers.Bird, Routers.GoBgpd, Routers.FrrBgpd)]
    public void A_malformed_update_gets_the_rfc_notification_and_a_reset_while_other_sessions_stay_up()
    {
        var others = new[] { lab.Bird.RouterAddress, lab.GoBgp.RouterAddress, lab.Frr.RouterAddress };
        Assert.True(BgpLab.WaitFor(() => lab.AllUp(others), s_timeout), Diagnostics());
        var upSince = others.Select(p => lab.Speaker!.Peer(p)!.EstablishedAt).ToArray();

        using var fuzzer = lab.Lab!.SpeakerNs.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        fuzzer.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        fuzzer.Connect(new IPEndPoint(IPAddress.Loopback, 179));
        fuzzer.ReceiveTimeout = 10000;
        var caps = new BgpCapabilities { FourOctetAs = 65099 };
        var open = new byte[4096];
        int n = new OpenMessage { Asn = 65099, HoldTime = 90, RouterId = 0x7f000002, Capabilities = caps }.Encode(open);
        fuzzer.Send(open.AsSpan(0, n));
        var keepalive = new byte[19];
        KeepaliveMessage.Encode(keepalive);
        fuzzer.Send(keepalive);
        Assert.Equal(BgpMessageType.Open, ReadMessage(fuzzer).Type);
        Assert.Equal(BgpMessageType.Keepalive, ReadMessage(fuzzer).Type);
        Assert.True(BgpLab.WaitFor(() => lab.Speaker!.Peer(IPAddress.Parse("127.0.0.2"))!.State == BgpState.Established, s_timeout));

        // Total path attribute length runs past the message: RFC 7606 §4 says session reset, 3/1.
        fuzzer.Send(Convert.FromHexString("ffffffffffffffffffffffffffffffff001a02000000ff40010100"));
        var (type, body) = ReadMessage(fuzzer);
        while (type == BgpMessageType.Keepalive || type == BgpMessageType.Update)
        {
            (type, body) = ReadMessage(fuzzer);
        }
        Assert.Equal(BgpMessageType.Notification, type);
        Assert.Equal((3, 1), (body[0], body[1]));
        Assert.Equal(0, fuzzer.Receive(new byte[64]));
        Assert.NotEqual(BgpState.Established, lab.Speaker!.Peer(IPAddress.Parse("127.0.0.2"))!.State);

        // The other three sessions never flapped.
        Assert.True(lab.AllUp(others), Diagnostics());
        Assert.Equal(upSince, others.Select(p => lab.Speaker.Peer(p)!.EstablishedAt).ToArray());
        Assert.True(lab.Learned.ContainsKey((lab.Bird.RouterAddress, IPNetwork.Parse("10.20.0.0/24"))));
    }

    private static (BgpMessageType Type, byte[] Body) ReadMessage(Socket socket)
    {
        var header = new byte[19];
        ReadExactly(socket, header);
        var (type, length) = BgpHeader.Parse(header);
        var body = new byte[length - 19];
        ReadExactly(socket, body);
        return (type, body);
    }

    private static void ReadExactly(Socket socket, byte[] buffer)
    {
        int got = 0;
        while (got < buffer.Length)
        {
            int n = socket.Receive(buffer, got, buffer.Length - got, SocketFlags.None);
            if (n == 0)
            {
                throw new EndOfStreamException();
            }
            got += n;
        }
    }
}
