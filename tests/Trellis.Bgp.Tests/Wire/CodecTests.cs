using System.Net;
using CsCheck;
using Trellis.Bgp.Wire;

namespace Trellis.Bgp.Tests.Wire;

public class CodecTests
{
    private static readonly BgpDecodeContext s_ebgp = new(FourOctetAs: true, Internal: false);
    private static readonly BgpDecodeContext s_ibgp = new(FourOctetAs: true, Internal: true);

    private static readonly Gen<IPNetwork> s_v4Prefix =
        Gen.Select(Gen.UInt, Gen.Int[0, 32], (a, len) => new IPNetwork(Mask(new IPAddress(BitConverter.GetBytes(a)), len), len));

    private static readonly Gen<IPNetwork> s_v6Prefix =
        Gen.Select(Gen.Byte.Array[16], Gen.Int[0, 128], (a, len) => new IPNetwork(Mask(new IPAddress(a), len), len));

    private static IPAddress Mask(IPAddress address, int length)
    {
        var bytes = address.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
        {
            int keep = Math.Clamp(length - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        return new IPAddress(bytes);
    }

    private static readonly Gen<PathAttributes> s_attributes =
        Gen.Select(Gen.Int[0, 2], Gen.UInt.Array[1, 6], Gen.UInt.Nullable(), Gen.UInt.Array[0, 4], Gen.Bool, Gen.UInt.Array[0, 3], (origin, path, med, communities, atomic, clusters) => new PathAttributes
        {
            Origin = (BgpOrigin)origin,
            AsPath = [new AsPathSegment(AsPathSegment.Sequence, path)],
            NextHop = IPAddress.Parse("192.0.2.1"),
            Med = med,
            LocalPref = 100,
            AtomicAggregate = atomic,
            Communities = communities.Length == 0 ? null : communities,
            OriginatorId = clusters.Length == 0 ? null : 0x0a000001,
            ClusterList = clusters.Length == 0 ? null : clusters,
        });

    [Fact]
    public void Update_round_trips_ipv4_and_ipv6_with_every_known_attribute()
    {
        Gen.Select(s_attributes, s_v4Prefix.List[0, 50], s_v6Prefix.List[0, 50], s_v4Prefix.List[0, 20]).Sample((attributes, v4, v6, withdrawn) =>
        {
            if (v6.Count > 0)
            {
                attributes.MpReach = new MpReach { Family = AfiSafi.Ipv6Unicast, NextHop = IPAddress.Parse("2001:db8::1"), Nlri = [.. v6] };
            }
            var update = new UpdateMessage { Attributes = attributes, Withdrawn = [.. withdrawn], Nlri = [.. v4] };
            byte[] bytes = update.ToBytes();
            var (type, length) = BgpHeader.Parse(bytes);
            Assert.Equal(BgpMessageType.Update, type);
            Assert.Equal(bytes.Length, length);
            var decoded = UpdateMessage.Decode(bytes.AsSpan(BgpHeader.Length), s_ibgp);
            Assert.False(decoded.TreatAsWithdraw, string.Join("; ", decoded.Problems));
            Assert.Equal(v4, decoded.Nlri);
            Assert.Equal(withdrawn, decoded.Withdrawn);
            Assert.Equal(v6, decoded.Attributes!.MpReach?.Nlri ?? []);
            Assert.Equal(attributes.AsPath![0].Asns, decoded.Attributes.AsPath![0].Asns);
            Assert.Equal(attributes.Med, decoded.Attributes.Med);
            Assert.Equal(attributes.Communities, decoded.Attributes.Communities);
            Assert.Equal(attributes.ClusterList, decoded.Attributes.ClusterList);
            Assert.Equal(attributes.OriginatorId, decoded.Attributes.OriginatorId);
            Assert.Equal(attributes.AtomicAggregate, decoded.Attributes.AtomicAggregate);
            // Encoding the decoded message gives the same bytes.
            Assert.Equal(bytes, decoded.ToBytes());
        });
    }

    [Fact]
    public void Two_octet_sessions_carry_large_asns_in_as4_path_and_get_them_back()
    {
        var attributes = new PathAttributes { Origin = BgpOrigin.Igp, AsPath = [new AsPathSegment(AsPathSegment.Sequence, [4200000001, 65001])], NextHop = IPAddress.Parse("192.0.2.1") };
        var update = new UpdateMessage { Attributes = attributes, Nlri = [IPNetwork.Parse("10.1.0.0/16")] };
        var decoded = UpdateMessage.Decode(update.ToBytes(fourOctetAs: false).AsSpan(BgpHeader.Length), new BgpDecodeContext(false, false));
        Assert.Equal([4200000001u, 65001u], decoded.Attributes!.AsPath!.SelectMany(s => s.Asns));
    }

    [Fact]
    public void Open_round_trips_capabilities()
    {
        Gen.Select(Gen.UInt[1, uint.MaxValue], Gen.UShort, Gen.UInt[1, uint.MaxValue], Gen.Bool, Gen.UShort[0, 4095]).Sample((asn, hold, id, restarting, restartTime) =>
        {
            if (hold is 1 or 2)
            {
                return;
            }
            var caps = new BgpCapabilities { RouteRefresh = true, FourOctetAs = asn, GracefulRestart = new GracefulRestartCapability(restarting, false, restartTime, [new(AfiSafi.Ipv4Unicast, true), new(AfiSafi.Ipv6Unicast, false)]) };
            caps.Multiprotocol.AddRange([AfiSafi.Ipv4Unicast, AfiSafi.Ipv6Unicast]);
            var open = new OpenMessage { Asn = asn, HoldTime = hold, RouterId = id, Capabilities = caps };
            var buffer = new byte[4096];
            int n = open.Encode(buffer);
            var decoded = OpenMessage.Decode(buffer.AsSpan(BgpHeader.Length, n - BgpHeader.Length));
            Assert.Equal(asn, decoded.Asn);
            Assert.Equal(hold, decoded.HoldTime);
            Assert.Equal(id, decoded.RouterId);
            Assert.True(decoded.Capabilities.RouteRefresh);
            Assert.Equal(caps.Multiprotocol, decoded.Capabilities.Multiprotocol);
            Assert.Equal(restarting, decoded.Capabilities.GracefulRestart!.Restarting);
            Assert.Equal(restartTime, decoded.Capabilities.GracefulRestart.RestartTime);
            Assert.Equal(caps.GracefulRestart.Families, decoded.Capabilities.GracefulRestart.Families);
        });
    }

    [Fact]
    public void Packer_splits_many_prefixes_into_messages_within_4096_bytes_and_loses_none()
    {
        var prefixes = Enumerable.Range(0, 5000).Select(i => new IPNetwork(new IPAddress([10, (byte)(i >> 8), (byte)i, 0]), 24)).ToList();
        var v6 = Enumerable.Range(0, 3000).Select(i => new IPNetwork(new IPAddress([0x20, 1, 0xd, 0xb8, (byte)(i >> 8), (byte)i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 48)).ToList();
        var v4Attrs = new PathAttributes { Origin = BgpOrigin.Igp, AsPath = [], NextHop = IPAddress.Parse("10.0.0.1"), LocalPref = 100 };
        var v6Attrs = new PathAttributes { Origin = BgpOrigin.Igp, AsPath = [], LocalPref = 100, MpReach = new MpReach { Family = AfiSafi.Ipv6Unicast, NextHop = IPAddress.Parse("2001:db8::1") } };
        var got = new List<IPNetwork>();
        foreach (var m in UpdatePacker.Announce(v4Attrs, prefixes, AfiSafi.Ipv4Unicast, true).Concat(UpdatePacker.Announce(v6Attrs, v6, AfiSafi.Ipv6Unicast, true)))
        {
            Assert.True(m.Length <= 4096);
            got.AddRange(UpdateMessage.Decode(m.AsSpan(BgpHeader.Length), s_ibgp).Announced);
        }
        Assert.Equal(prefixes.Concat(v6), got);
        var withdrawn = UpdatePacker.Withdraw(v6, AfiSafi.Ipv6Unicast).SelectMany(m => UpdateMessage.Decode(m.AsSpan(BgpHeader.Length), s_ibgp).AllWithdrawn);
        Assert.Equal(v6, withdrawn);
    }

    [Fact]
    public void End_of_rib_markers_are_recognised_for_both_families()
    {
        foreach (var family in new[] { AfiSafi.Ipv4Unicast, AfiSafi.Ipv6Unicast })
        {
            var bytes = UpdateMessage.EndOfRib(family).ToBytes();
            Assert.True(UpdateMessage.Decode(bytes.AsSpan(BgpHeader.Length), s_ebgp).IsEndOfRib(out var got));
            Assert.Equal(family, got);
        }
    }

    [Fact]
    public void Random_bytes_never_escape_as_anything_but_a_bgp_error()
    {
        Gen.Byte.Array[0, 200].Sample(body =>
        {
            try
            {
                UpdateMessage.Decode(body, s_ibgp);
                OpenMessage.Decode(body);
                NotificationMessage.Decode(body);
            }
            catch (BgpMessageException e)
            {
                Assert.NotEqual(0, e.Error.Code);
            }
        }, iter: 20000);
    }

    // --- RFC 7606: which errors withdraw, which discard, which reset ---

    private static byte[] Body(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    private static BgpError ResetOf(string hex)
    {
        var e = Assert.Throws<BgpMessageException>(() => UpdateMessage.Decode(Body(hex), s_ebgp));
        return e.Error;
    }

    // ORIGIN IGP, AS_PATH [65002], NEXT_HOP 10.0.0.2, NLRI 10.20.0.0/24.
    private const string GoodAttrs = "40 01 01 00  40 02 06 02 01 00 00 fd ea  40 03 04 0a 00 00 02";

    [Fact]
    public void A_withdrawn_length_past_the_message_resets_with_malformed_attribute_list()
    {
        Assert.Equal(new BgpError(3, 1).Code, ResetOf("00 50 00 00").Code);
        Assert.Equal(BgpError.MalformedAttributeList, ResetOf("00 50 00 00").Subcode);
        Assert.Equal(BgpError.MalformedAttributeList, ResetOf("00 00 00 40 40 01 01 00").Subcode);
    }

    [Fact]
    public void A_bad_prefix_length_in_nlri_resets_with_invalid_network_field()
    {
        Assert.Equal(BgpError.InvalidNetworkField, ResetOf($"00 00 00 14 {GoodAttrs} 21 0a 00 00 00 00").Subcode);
        Assert.Equal(BgpError.InvalidNetworkField, ResetOf($"00 00 00 14 {GoodAttrs} 18 0a 00").Subcode);
    }

    [Theory]
    [InlineData("40 01 01 07  40 02 06 02 01 00 00 fd ea  40 03 04 0a 00 00 02", "ORIGIN")] // origin 7
    [InlineData("40 01 01 00  40 02 06 02 05 00 00 fd ea  40 03 04 0a 00 00 02", "AS_PATH")] // segment overruns
    [InlineData("40 01 01 00  40 02 06 02 01 00 00 fd ea  40 03 03 0a 00 00", "NEXT_HOP")] // 3-byte next hop
    [InlineData("40 01 01 00  40 02 06 02 01 00 00 fd ea  40 03 04 00 00 00 00", "NEXT_HOP")] // 0.0.0.0
    [InlineData("40 01 01 00  40 02 06 02 01 00 00 fd ea  40 03 04 0a 00 00 02  80 04 02 00 00", "MULTI_EXIT_DISC")]
    [InlineData("c0 01 01 00  40 02 06 02 01 00 00 fd ea  40 03 04 0a 00 00 02", "ORIGIN")] // optional bit on a well-known
    [InlineData("40 02 06 02 01 00 00 fd ea  40 03 04 0a 00 00 02", "missing ORIGIN")]
    [InlineData("40 01 01 00  40 02 06 02 01 00 00 fd ea  40 03 04 0a 00 00 02  c0 08 03 00 00 01", "COMMUNITIES")]
    [InlineData("40 01 01 00  40 02 06 02 01 00 00 fd ea  40 03 04 0a 00 00 02  40 05 09 00", "overruns")]
    public void Malformed_attributes_are_treat_as_withdraw(string attributes, string problem)
    {
        byte[] attrs = Body(attributes);
        var body = new byte[] { 0, 0, (byte)(attrs.Length >> 8), (byte)attrs.Length }.Concat(attrs).Concat(Body("18 0a 14 00")).ToArray();
        var update = UpdateMessage.Decode(body, s_ebgp);
        Assert.True(update.TreatAsWithdraw);
        Assert.Contains(update.Problems, p => p.Contains(problem, StringComparison.Ordinal));
        Assert.Equal([IPNetwork.Parse("10.20.0.0/24")], update.Nlri);
    }

    [Fact]
    public void Malformed_atomic_aggregate_and_aggregator_and_duplicates_are_discarded_not_withdrawn()
    {
        byte[] attrs = Body(GoodAttrs + " 40 06 01 00  c0 07 03 00 00 01  40 01 01 02");
        var body = new byte[] { 0, 0, 0, (byte)attrs.Length }.Concat(attrs).Concat(Body("18 0a 14 00")).ToArray();
        var update = UpdateMessage.Decode(body, s_ebgp);
        Assert.False(update.TreatAsWithdraw);
        Assert.Equal(3, update.Problems.Count);
        Assert.Equal(BgpOrigin.Igp, update.Attributes!.Origin);
    }

    [Fact]
    public void Local_pref_from_an_external_peer_is_discarded_and_its_absence_on_ibgp_withdraws()
    {
        byte[] attrs = Body(GoodAttrs + " 40 05 04 00 00 00 64");
        var body = new byte[] { 0, 0, 0, (byte)attrs.Length }.Concat(attrs).Concat(Body("18 0a 14 00")).ToArray();
        Assert.Null(UpdateMessage.Decode(body, s_ebgp).Attributes!.LocalPref);
        Assert.Equal(100u, UpdateMessage.Decode(body, s_ibgp).Attributes!.LocalPref);
        attrs = Body(GoodAttrs);
        body = new byte[] { 0, 0, 0, (byte)attrs.Length }.Concat(attrs).Concat(Body("18 0a 14 00")).ToArray();
        Assert.True(UpdateMessage.Decode(body, s_ibgp).TreatAsWithdraw);
    }

    [Fact]
    public void Mp_reach_twice_or_malformed_resets_the_session()
    {
        const string mp = "80 0e 09 00 02 01 10 20 01 0d b8 00 00";
        Assert.Equal(BgpError.OptionalAttributeError, ResetOf("00 00 00 0c " + mp).Subcode);
        const string good = "80 0e 1a 00 02 01 10 20 01 0d b8 00 00 00 00 00 00 00 00 00 01 00 20 20 01 0d b8";
        Assert.Equal(BgpError.MalformedAttributeList, ResetOf("00 00 00 3a " + good + " " + good).Subcode);
        Assert.Equal(BgpError.UnrecognizedWellKnownAttribute, ResetOf("00 00 00 03 40 63 00").Subcode);
    }

    [Theory]
    [InlineData("fffffffffffffffffffffffffffffffe001304", 1, 1)]
    [InlineData("ffffffffffffffffffffffffffffffff001204", 1, 2)]
    [InlineData("ffffffffffffffffffffffffffffffff101004", 1, 2)]
    [InlineData("ffffffffffffffffffffffffffffffff001409", 1, 3)]
    [InlineData("ffffffffffffffffffffffffffffffff001404", 1, 2)]
    public void Bad_headers_get_message_header_errors(string hex, byte code, byte subcode)
    {
        var e = Assert.Throws<BgpMessageException>(() => BgpHeader.Parse(Convert.FromHexString(hex)));
        Assert.Equal((code, subcode), (e.Error.Code, e.Error.Subcode));
    }

    [Fact]
    public void Open_errors_carry_the_rfc_subcodes()
    {
        Assert.Equal((2, 1), Code(() => OpenMessage.Decode(Body("03 fd e9 00 5a 0a 00 00 01 00"))));
        Assert.Equal((2, 6), Code(() => OpenMessage.Decode(Body("04 fd e9 00 02 0a 00 00 01 00"))));
        Assert.Equal((2, 3), Code(() => OpenMessage.Decode(Body("04 fd e9 00 5a 00 00 00 00 00"))));
        Assert.Equal((2, 4), Code(() => OpenMessage.Decode(Body("04 fd e9 00 5a 0a 00 00 01 02 01 00"))));
        static (int, int) Code(Action a)
        {
            var e = Assert.Throws<BgpMessageException>(a);
            return (e.Error.Code, e.Error.Subcode);
        }
    }
}
