using System.Net;
using Trellis.Bgp.Wire;

namespace Trellis.Bgp.Tests.Captured;

/// <summary>
/// Messages recorded from real BIRD 2.0.12 and GoBGP 3.10.0 sessions by <see cref="CaptureSessions"/>
/// (testdata/captured/*.hex, whole messages with header), decoded with the codecs the speaker uses.
/// </summary>
public class CapturedMessageTests
{
    private static byte[] Load(string name) =>
        Convert.FromHexString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "testdata", "captured", name + ".hex")).Trim());

    private static (BgpMessageType Type, byte[] Body) Split(byte[] message)
    {
        var (type, length) = BgpHeader.Parse(message.AsSpan(0, BgpHeader.Length));
        Assert.Equal(message.Length, length);
        return (type, message[BgpHeader.Length..]);
    }

    [Theory]
    [InlineData("bird", 65002u, "10.77.1.2", true)]
    [InlineData("gobgp", 65003u, "10.77.1.2", false)]
    public void Open_decodes_as_and_hold_time_and_capabilities(string router, uint asn, string routerId, bool bird)
    {
        var (type, body) = Split(Load(router + "-open"));
        Assert.Equal(BgpMessageType.Open, type);
        var open = OpenMessage.Decode(body);
        Assert.Equal(4, open.Version);
        Assert.Equal(asn, open.Asn);
        Assert.Equal(asn, open.Capabilities.FourOctetAs);
        Assert.Equal(90, open.HoldTime);
        Assert.Equal(IPAddress.Parse(routerId), open.RouterIdAddress);
        Assert.Equal([AfiSafi.Ipv4Unicast], open.Capabilities.Multiprotocol);
        Assert.True(open.Capabilities.RouteRefresh);
        var gr = open.Capabilities.GracefulRestart!;
        Assert.Equal(120, gr.RestartTime);
        Assert.False(gr.Restarting);
        Assert.Equal([new GracefulRestartFamily(AfiSafi.Ipv4Unicast, false)], gr.Families);
        // What we do not implement is kept, not rejected: BIRD's enhanced route refresh (70) and long-lived GR (71);
        // GoBGP's FQDN (73) and extended next hop (5).
        byte[] unknown = [.. open.Capabilities.Unknown.Select(u => u.Code)];
        Assert.Equal(bird ? [BgpCapabilities.CodeEnhancedRouteRefresh, 71] : (byte[])[73, 5], unknown);
        if (!bird)
        {
            Assert.Equal("vm", System.Text.Encoding.ASCII.GetString(open.Capabilities.Unknown.Single(u => u.Code == 73).Value.AsSpan(1, 2)));
        }

        // Re-encoding keeps every field (the order of capabilities is ours, so compare decoded).
        var again = new byte[4096];
        int n = open.Encode(again);
        var reread = OpenMessage.Decode(Split(again[..n]).Body);
        Assert.Equal((open.Asn, open.HoldTime, open.RouterId), (reread.Asn, reread.HoldTime, reread.RouterId));
        Assert.Equal(open.Capabilities.Multiprotocol, reread.Capabilities.Multiprotocol);
        Assert.Equal(open.Capabilities.GracefulRestart!.Families, reread.Capabilities.GracefulRestart!.Families);
        Assert.Equal(open.Capabilities.RouteRefresh, reread.Capabilities.RouteRefresh);
    }

    [Theory]
    [InlineData("bird", 65002u, new[] { "10.20.0.0/24", "10.20.1.0/24" })]
    [InlineData("gobgp", 65003u, new[] { "10.30.0.0/24" })]
    public void Ipv4_update_decodes_prefixes_next_hop_as_path_and_origin_and_reencodes_identically(string router, uint asn, string[] prefixes)
    {
        byte[] message = Load(router + "-update-ipv4");
        var (type, body) = Split(message);
        Assert.Equal(BgpMessageType.Update, type);
        var update = UpdateMessage.Decode(body, new BgpDecodeContext(FourOctetAs: true, Internal: false));
        Assert.Empty(update.Problems);
        Assert.False(update.TreatAsWithdraw);
        Assert.Empty(update.Withdrawn);
        Assert.Equal(prefixes.Select(IPNetwork.Parse), update.Nlri);
        var a = update.Attributes!;
        Assert.Equal(BgpOrigin.Igp, a.Origin);
        Assert.Equal([asn], a.PathAsns);
        Assert.Equal(AsPathSegment.Sequence, a.AsPath!.Single().Type);
        Assert.Equal(IPAddress.Parse("10.77.1.2"), a.NextHop);
        Assert.Null(a.Med);
        Assert.Null(a.LocalPref);
        Assert.Null(a.MpReach);
        Assert.False(update.IsEndOfRib(out _));

        // Well-known attributes in type order, 4-octet AS_PATH: our encoder writes the same bytes.
        var again = new byte[4096];
        int n = update.Encode(again, fourOctetAs: true);
        Assert.Equal(Convert.ToHexStringLower(message), Convert.ToHexStringLower(again[..n]));
    }

    [Theory]
    [InlineData("bird")]
    [InlineData("gobgp")]
    public void End_of_rib_is_recognised_for_ipv4_and_reencodes_identically(string router)
    {
        byte[] message = Load(router + "-end-of-rib");
        var (type, body) = Split(message);
        Assert.Equal(BgpMessageType.Update, type);
        var update = UpdateMessage.Decode(body, new BgpDecodeContext(FourOctetAs: true, Internal: false));
        Assert.True(update.IsEndOfRib(out var family));
        Assert.Equal(AfiSafi.Ipv4Unicast, family);
        var again = new byte[64];
        int n = UpdateMessage.EndOfRib(AfiSafi.Ipv4Unicast).Encode(again, fourOctetAs: true);
        Assert.Equal(message, again[..n]);
    }

    [Theory]
    [InlineData("bird")]
    [InlineData("gobgp")]
    public void Keepalive_is_a_bare_header_and_reencodes_identically(string router)
    {
        byte[] message = Load(router + "-keepalive");
        var (type, body) = Split(message);
        Assert.Equal(BgpMessageType.Keepalive, type);
        Assert.Empty(body);
        var again = new byte[19];
        KeepaliveMessage.Encode(again);
        Assert.Equal(message, again);
    }

    [Theory]
    [InlineData("bird")]
    [InlineData("gobgp")]
    public void Notification_on_shutdown_is_cease_administrative_shutdown_and_reencodes_identically(string router)
    {
        byte[] message = Load(router + "-notification");
        var (type, body) = Split(message);
        Assert.Equal(BgpMessageType.Notification, type);
        var notification = NotificationMessage.Decode(body);
        Assert.Equal(6, notification.Error.Code);
        Assert.Equal(2, notification.Error.Subcode);
        Assert.Empty(notification.Error.Data ?? []);
        var again = new byte[64];
        int n = notification.Encode(again);
        Assert.Equal(message, again[..n]);
    }

    [Fact]
    public void Every_captured_file_is_present()
    {
        foreach (var router in (string[])["bird", "gobgp"])
        {
            foreach (var kind in (string[])["open", "update-ipv4", "keepalive", "notification", "end-of-rib"])
            {
                Assert.True(Load($"{router}-{kind}").Length >= BgpHeader.Length, $"{router}-{kind}");
            }
        }
    }
}
