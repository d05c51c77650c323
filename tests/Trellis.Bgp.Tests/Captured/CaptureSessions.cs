using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Trellis.Bgp.Tests.Support;
using Trellis.Bgp.Wire;

namespace Trellis.Bgp.Tests.Captured;

/// <summary>A fact that runs only with <c>TRELLIS_BGP_CAPTURE=1</c> (and root + the router binaries): it rewrites test data.</summary>
public sealed class CaptureFactAttribute : FactAttribute
{
    public CaptureFactAttribute(params string[] binaries)
    {
        if (Environment.GetEnvironmentVariable("TRELLIS_BGP_CAPTURE") != "1")
        {
            Skip = "opt-in: TRELLIS_BGP_CAPTURE=1 re-records testdata/captured/*.hex from real routers";
        }
        else if (!Environment.IsPrivilegedProcess)
        {
            Skip = "needs root (creates network namespaces)";
        }
        else if (binaries.FirstOrDefault(b => !File.Exists(b)) is { } missing)
        {
            Skip = $"{missing} is not installed";
        }
    }
}

/// <summary>
/// Records the raw messages real BIRD and GoBGP send, for <see cref="CapturedMessageTests"/>. The test side is a
/// bare socket (not the speaker), so what is saved is exactly the router's bytes: OPEN, the first KEEPALIVE, the
/// first IPv4 UPDATE with NLRI, the IPv4 End-of-RIB (we offer graceful restart so both send one), and the
/// NOTIFICATION (Cease, administrative shutdown) each sends when the operator shuts the session down.
/// </summary>
public sealed class CaptureSessions
{
    private const uint OurAsn = 65001;

    [CaptureFact(Routers.Bird)]
    public void Capture_bird()
    {
        using var lab = new BgpLab();
        var r = lab.AddRouter("bird");
        string conf = $$"""
            router id {{r.RouterAddress}};
            protocol device { }
            protocol static s4 { ipv4; route 10.20.0.0/24 blackhole; route 10.20.1.0/24 blackhole; }
            protocol bgp trellis {
              local {{r.RouterAddress}} as 65002;
              neighbor {{r.SpeakerAddress}} as {{OurAsn}};
              hold time 90;
              connect retry time 60;
              graceful restart on;
              graceful restart time 120;
              ipv4 { import all; export all; };
            }
            """;
        lab.Start(r.Ns, Routers.Bird, "-f", "-c", lab.File("bird.conf", conf), "-s", Path.Combine(lab.Dir, "bird.ctl"), "-P", Path.Combine(lab.Dir, "bird.pid"));
        // BIRD drops a connection that arrives before the protocol has started: retry the whole exchange.
        Assert.True(BgpLab.WaitFor(() =>
        {
            try
            {
                Capture(lab, r.SpeakerAddress, r.RouterAddress, "bird", () => Routers.Birdc(lab, r.Ns, "bird", "disable trellis"));
                return true;
            }
            catch (EndOfStreamException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30)));
    }

    [CaptureFact(Routers.GoBgpd)]
    public void Capture_gobgp()
    {
        using var lab = new BgpLab();
        var r = lab.AddRouter("gobgp");
        string conf = $"""
            [global.config]
              as = 65003
              router-id = "{r.RouterAddress}"
              local-address-list = ["{r.RouterAddress}"]
            [[neighbors]]
              [neighbors.config]
                neighbor-address = "{r.SpeakerAddress}"
                peer-as = {OurAsn}
              [neighbors.timers.config]
                hold-time = 90
                keepalive-interval = 30
                connect-retry = 60
              [neighbors.graceful-restart.config]
                enabled = true
                restart-time = 120
              [[neighbors.afi-safis]]
                [neighbors.afi-safis.config]
                  afi-safi-name = "ipv4-unicast"
                [neighbors.afi-safis.mp-graceful-restart.config]
                  enabled = true
            """;
        lab.Start(r.Ns, Routers.GoBgpd, "-f", lab.File("gobgpd.toml", conf), "-t", "toml", "--api-hosts", "127.0.0.1:50051", "-l", "warn");
        Assert.True(BgpLab.WaitFor(() => !Routers.GoBgp(r.Ns, "global", "rib", "add", "-a", "ipv4", "10.30.0.0/24", "origin", "igp").Contains("error", StringComparison.OrdinalIgnoreCase)
            && Routers.GoBgp(r.Ns, "global", "rib", "-a", "ipv4").Contains("10.30.0.0/24", StringComparison.Ordinal), TimeSpan.FromSeconds(20)));
        Capture(lab, r.SpeakerAddress, r.RouterAddress, "gobgp", () => Routers.GoBgp(r.Ns, "neighbor", r.SpeakerAddress.ToString(), "shutdown"));
    }

    private static void Capture(BgpLab lab, IPAddress local, IPAddress router, string name, Action shutdown)
    {
        using var socket = lab.SpeakerNs.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        socket.Bind(new IPEndPoint(local, 0));
        Assert.True(BgpLab.WaitFor(() =>
        {
            try
            {
                socket.Connect(new IPEndPoint(router, 179));
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(20)), $"{name} does not accept on 179");
        socket.ReceiveTimeout = 15000;
        var caps = new BgpCapabilities
        {
            FourOctetAs = OurAsn,
            RouteRefresh = true,
            GracefulRestart = new GracefulRestartCapability(false, false, 120, [new GracefulRestartFamily(AfiSafi.Ipv4Unicast, false)]),
        };
        caps.Multiprotocol.Add(AfiSafi.Ipv4Unicast);
        var buffer = new byte[4096];
        int n = new OpenMessage { Asn = OurAsn, HoldTime = 90, RouterId = OpenMessage.RouterIdOf(local), Capabilities = caps }.Encode(buffer);
        socket.Send(buffer.AsSpan(0, n));

        var found = new Dictionary<string, byte[]>();
        var open = Read(socket);
        Assert.Equal(BgpMessageType.Open, BgpHeader.Parse(open).Type);
        found["open"] = open;
        n = KeepaliveMessage.Encode(buffer);
        socket.Send(buffer.AsSpan(0, n));
        while (!(found.ContainsKey("keepalive") && found.ContainsKey("update-ipv4") && found.ContainsKey("end-of-rib")))
        {
            var message = Read(socket);
            var (type, _) = BgpHeader.Parse(message);
            if (type == BgpMessageType.Keepalive)
            {
                found.TryAdd("keepalive", message);
            }
            else if (type == BgpMessageType.Update)
            {
                var update = UpdateMessage.Decode(message.AsSpan(19), new BgpDecodeContext(FourOctetAs: true, Internal: false));
                if (update.IsEndOfRib(out var family) && family == AfiSafi.Ipv4Unicast)
                {
                    found.TryAdd("end-of-rib", message);
                }
                else if (update.Nlri.Count > 0)
                {
                    found.TryAdd("update-ipv4", message);
                }
            }
        }
        // The operator shuts the session down: a Cease (6/2, administrative shutdown) follows.
        shutdown();
        while (true)
        {
            var message = Read(socket);
            if (BgpHeader.Parse(message.AsSpan(0, 19)).Type == BgpMessageType.Notification)
            {
                found["notification"] = message;
                break;
            }
        }
        string dir = Path.Combine(SourceDir(), "..", "testdata", "captured");
        Directory.CreateDirectory(dir);
        foreach (var (kind, bytes) in found)
        {
            File.WriteAllText(Path.Combine(dir, $"{name}-{kind}.hex"), Convert.ToHexStringLower(bytes) + "\n");
        }
    }

    private static string SourceDir([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    /// <summary>One whole message, header included, exactly as received.</summary>
    private static byte[] Read(Socket socket)
    {
        var header = new byte[19];
        ReadExactly(socket, header, 0);
        // Parse only the framing here: the length field, not the type (a 1/3 test must not trip on its own check).
        int length = (header[16] << 8) | header[17];
        var message = new byte[length];
        header.CopyTo(message, 0);
        ReadExactly(socket, message, 19);
        return message;
    }

    private static void ReadExactly(Socket socket, byte[] buffer, int offset)
    {
        while (offset < buffer.Length)
        {
            int got = socket.Receive(buffer, offset, buffer.Length - offset, SocketFlags.None);
            if (got == 0)
            {
                throw new EndOfStreamException("the router closed the connection");
            }
            offset += got;
        }
    }
}
