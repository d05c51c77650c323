using System.Net;

namespace Trellis.Dns.Tests;

public sealed class CodecTests
{
    private static byte[] Asset(string name) =>
        Convert.FromHexString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "testassets", "packets", name + ".hex")).Trim());

    [Fact]
    public void Parses_an_A_query_captured_from_dig_with_edns_and_a_cookie()
    {
        var msg = DnsMessage.Parse(Asset("dig-a-edns-cookie"));
        Assert.False(msg.IsResponse);
        Assert.True((msg.Flags & DnsFlags.RD) != 0);
        var q = Assert.Single(msg.Questions);
        Assert.Equal(("web.default.svc.cluster.local.", (ushort)1, DnsClass.IN), (q.Name, q.Type, q.Class));
        Assert.NotNull(msg.Edns);
        Assert.Equal(1232, msg.Edns.UdpPayloadSize);
        Assert.Equal(12, msg.Edns.Options.Length); // option 10 (COOKIE), 8-octet client cookie
        Assert.Equal(10, (msg.Edns.Options[0] << 8) | msg.Edns.Options[1]);
    }

    [Theory]
    [InlineData("dig-a-edns-cookie", "web.default.svc.cluster.local.", 1, true, false)]
    [InlineData("dig-srv-noedns", "_http._tcp.web.default.svc.cluster.local.", 33, false, false)]
    [InlineData("dig-aaaa-dnssec-mixedcase", "web.default.svc.cluster.local.", 28, true, true)]
    [InlineData("dig-ptr", "10.0.96.10.in-addr.arpa.", 12, true, false)]
    public void The_request_fast_path_reads_dig_queries(string asset, string name, int type, bool edns, bool dnssecOk)
    {
        var packet = Asset(asset);
        Assert.Equal(DnsRequestStatus.Ok, DnsRequest.TryParse(packet, out var req, out var error));
        Assert.Null(error);
        Assert.Equal(name, req.Name); // lower-cased, even for dig's mixed-case spelling
        Assert.Equal(type, req.Type);
        Assert.Equal(edns, req.HasEdns);
        Assert.Equal(dnssecOk, req.DnssecOk);
        Assert.Equal(DnsMessage.Parse(packet).Id, req.Id);
    }

    [Fact]
    public void Mixed_case_is_kept_by_the_full_parser()
    {
        var msg = DnsMessage.Parse(Asset("dig-aaaa-dnssec-mixedcase"));
        Assert.Equal("WeB.DeFault.svc.Cluster.Local.", msg.Questions[0].Name);
        Assert.True(msg.Edns!.DnssecOk);
    }

    [Fact]
    public void A_written_response_round_trips_and_compresses_repeated_names()
    {
        var buf = new byte[512];
        var w = new DnsWriter(buf, new int[32]);
        w.WriteHeader(0x1234, DnsFlags.QR | DnsFlags.AA | DnsFlags.RD, 0, 0);
        w.WriteQuestion("_http._tcp.web.default.svc.cluster.local.", 33, DnsClass.IN);
        w.WriteSrv("_http._tcp.web.default.svc.cluster.local.", 30, 0, 100, 80, "web.default.svc.cluster.local.");
        w.WriteAddress("web.default.svc.cluster.local.", 30, IPAddress.Parse("10.96.0.20"));
        w.WriteAddress("WEB.default.svc.cluster.local.", 30, IPAddress.Parse("fd00::20"));
        w.WriteNameRecord("20.0.96.10.in-addr.arpa.", DnsRecordType.PTR, 30, "web.default.svc.cluster.local.");
        w.WriteTxt("dns-version.cluster.local.", 30, ["1.1.0"]);
        w.WriteSoa("cluster.local.", 30, "ns.dns.cluster.local.", "hostmaster.cluster.local.", 7, 7200, 1800, 86400, 30);
        w.WriteOpt(1232, 0, 0, true);
        w.SetCounts(1, 6, 0, 1);
        Assert.False(w.Overflowed);
        int length = w.Position;
        var msg = DnsMessage.Parse(buf.AsSpan(0, length));
        Assert.Equal(0x1234, msg.Id);
        Assert.Equal(
            [
                "_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local.",
                "web.default.svc.cluster.local. 30 IN A 10.96.0.20",
                "web.default.svc.cluster.local. 30 IN AAAA fd00::20", // compressed against the question: its spelling wins
                "20.0.96.10.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local.",
                "dns-version.cluster.local. 30 IN TXT \"1.1.0\"",
                "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 30",
            ],
            msg.Answers.Select(a => a.ToString()).ToArray());
        Assert.True(msg.Edns!.DnssecOk);
        // Uncompressed this message is over 400 octets; with pointers the repeated suffixes cost 2 each.
        Assert.True(length < 300, $"length {length}");
        // The SRV target is written in full (RFC 2782), so its name appears twice in the bytes.
        Assert.Equal(2, CountOccurrences(buf.AsSpan(0, length), "\u0003web\u0007default"u8.ToArray()));
    }

    private static int CountOccurrences(ReadOnlySpan<byte> hay, byte[] needle)
    {
        int count = 0;
        for (int i = 0; i + needle.Length <= hay.Length; i++)
        {
            if (hay.Slice(i, needle.Length).SequenceEqual(needle))
            {
                count++;
            }
        }
        return count;
    }

    [Fact]
    public void Compression_pointers_are_followed()
    {
        // Header, question "a.example." at 12, then an answer whose owner is "b" + pointer to "example." (offset 14).
        byte[] packet =
        [
            0, 1, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0,
            1, (byte)'a', 7, .. "example"u8, 0, 0, 1, 0, 1,
            1, (byte)'b', 0xC0, 14, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1,
        ];
        var msg = DnsMessage.Parse(packet);
        Assert.Equal("b.example. 60 IN A 192.0.2.1", Assert.Single(msg.Answers).ToString());
    }

    [Theory]
    [InlineData(new byte[] { 0xC0, 12 }, "does not point backwards")] // a pointer to itself
    [InlineData(new byte[] { 1, (byte)'a', 0xC0, 12 }, "does not point backwards")] // a label, then back to its own start
    [InlineData(new byte[] { 0x40, 0 }, "unsupported label type")]
    [InlineData(new byte[] { 0x80, 0 }, "unsupported label type")]
    [InlineData(new byte[] { 5, (byte)'a', (byte)'b' }, "runs past the end")]
    [InlineData(new byte[] { 3, (byte)'a', (byte)'b', (byte)'c' }, "truncated name")]
    [InlineData(new byte[] { 0xC0 }, "truncated compression pointer")]
    public void Malformed_names_are_rejected_with_a_reason(byte[] name, string reason)
    {
        byte[] packet = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, .. name];
        string? message = null;
        try
        {
            new DnsReader(packet, 12).ReadName("question[0].name");
        }
        catch (DnsFormatException e)
        {
            message = e.Message;
        }
        Assert.NotNull(message);
        Assert.Contains(reason, message, StringComparison.Ordinal);
        Assert.StartsWith("question[0].name", message, StringComparison.Ordinal);
        Assert.Throws<DnsFormatException>(() => DnsMessage.Parse(packet));
        Assert.Equal(DnsRequestStatus.FormErr, DnsRequest.TryParse(packet, out _, out _));
    }

    [Fact]
    public void A_pointer_chain_that_bounces_forward_and_back_is_a_loop()
    {
        // Question name at 12: pointer to 16; at 16: label "x" then pointer to 12 → would loop forever.
        byte[] packet = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 16, 0, 1, 1, (byte)'x', 0xC0, 12];
        Assert.Throws<DnsFormatException>(() => DnsMessage.Parse(packet));
    }

    [Fact]
    public void Names_longer_than_255_octets_are_rejected()
    {
        var name = new List<byte>();
        for (int i = 0; i < 5; i++)
        {
            name.Add(63);
            name.AddRange(Enumerable.Repeat((byte)'a', 63));
        }
        name.Add(0);
        byte[] packet = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, .. name, 0, 1, 0, 1];
        Assert.Contains("longer than 255", Assert.Throws<DnsFormatException>(() => DnsMessage.Parse(packet)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Huge_counts_in_a_short_packet_fail_before_allocating()
    {
        byte[] packet = [0, 1, 0x81, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0];
        Assert.Contains("exceed", Assert.Throws<DnsFormatException>(() => DnsMessage.Parse(packet)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Requests_that_are_responses_or_too_short_are_dropped_and_bad_question_counts_are_formerr()
    {
        Assert.Equal(DnsRequestStatus.Drop, DnsRequest.TryParse(new byte[11], out _, out _));
        Assert.Equal(DnsRequestStatus.Drop, DnsRequest.TryParse([0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1], out _, out _));
        Assert.Equal(DnsRequestStatus.FormErr, DnsRequest.TryParse([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], out var r, out var error));
        Assert.Equal(1, r.Id);
        Assert.Contains("qdcount 0", error, StringComparison.Ordinal);
        Assert.Equal(DnsRequestStatus.FormErr, DnsRequest.TryParse([0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1], out _, out _));
    }

    [Fact]
    public void Two_opt_records_are_formerr()
    {
        var q = Support.DnsClient.Query("a.", 1, edns: true);
        byte[] opt = q[^11..];
        byte[] packet = [.. q, .. opt];
        packet[11] = 2;
        Assert.Equal(DnsRequestStatus.FormErr, DnsRequest.TryParse(packet, out _, out var error));
        Assert.Contains("OPT", error, StringComparison.Ordinal);
        Assert.Throws<DnsFormatException>(() => DnsMessage.Parse(packet));
    }

    [Fact]
    public void The_writer_reports_overflow_and_can_rewind()
    {
        var buf = new byte[40];
        var w = new DnsWriter(buf, new int[8]);
        w.WriteHeader(1, DnsFlags.QR, 0, 0);
        w.WriteQuestion("a.b.", 1, 1);
        int mark = w.Position;
        w.WriteAddress("a.b.", 30, IPAddress.Loopback);
        Assert.False(w.Overflowed);
        w.WriteAddress("x.y.z.", 30, IPAddress.Loopback);
        Assert.True(w.Overflowed);
        w.Rewind(mark);
        Assert.False(w.Overflowed);
        Assert.Equal(mark, w.Position);
    }

    [Theory]
    [InlineData("a\\.b.example.", "03612E62076578616D706C6500", "a\\046b.example.")]
    [InlineData("x\\032y.", "0378207900", "x\\032y.")]
    [InlineData(".", "00", ".")]
    [InlineData("no-trailing-dot", "0F6E6F2D747261696C696E672D646F7400", "no-trailing-dot.")]
    public void Presentation_names_encode_to_wire_and_back(string text, string wireHex, string canonical)
    {
        var wire = Convert.FromHexString(wireHex);
        Assert.Equal(wire, DnsReader.EncodeName(text));
        var r = new DnsReader(wire);
        Assert.Equal(canonical, r.ReadName());
        Assert.Equal(wire, DnsReader.EncodeName(canonical));
    }

    [Theory]
    [InlineData("a..b.")]
    [InlineData("toolonglabel-toolonglabel-toolonglabel-toolonglabel-toolonglabel.")]
    public void Bad_presentation_names_are_refused(string text) =>
        Assert.Throws<DnsFormatException>(() => DnsReader.EncodeName(text));
}
