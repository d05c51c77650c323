using System.Net;

namespace Trellis.Dns.Tests;

/// <summary>The lab's outside resolver (<see cref="StaticZone"/>): answers, negative answers with the SOA, refusals.</summary>
public sealed class StaticZoneTests
{
    private static readonly StaticZone s_zone = new("test", [new("outside.test", IPAddress.Parse("172.30.0.1")), new("www.example.test", IPAddress.Parse("192.0.2.80")), new("v6.test", IPAddress.Parse("2001:db8::1"))]);

    private static DnsMessage Ask(string name, DnsRecordType type)
    {
        var response = new byte[512];
        int n = s_zone.Respond(Support.DnsClient.Query(name, (ushort)type, edns: false), response);
        Assert.True(n > 0);
        return DnsMessage.Parse(response.AsSpan(0, n));
    }

    [Theory]
    [InlineData("outside.test.", DnsRecordType.A, DnsRcode.NoError, "outside.test. A 172.30.0.1")]
    [InlineData("OUTSIDE.Test.", DnsRecordType.A, DnsRcode.NoError, "OUTSIDE.Test. A 172.30.0.1")] // the owner points at the question: its case is kept (0x20)
    [InlineData("www.example.test.", DnsRecordType.A, DnsRcode.NoError, "www.example.test. A 192.0.2.80")]
    [InlineData("v6.test.", DnsRecordType.AAAA, DnsRcode.NoError, "v6.test. AAAA 2001:db8::1")]
    [InlineData("1.0.30.172.in-addr.arpa.", DnsRecordType.PTR, DnsRcode.NoError, "1.0.30.172.in-addr.arpa. PTR outside.test.")]
    [InlineData("outside.test.", DnsRecordType.AAAA, DnsRcode.NoError, "")] // NODATA
    [InlineData("example.test.", DnsRecordType.A, DnsRcode.NoError, "")] // an empty non-terminal
    [InlineData("missing.test.", DnsRecordType.A, DnsRcode.NXDomain, "")]
    [InlineData("example.com.", DnsRecordType.A, DnsRcode.Refused, "")]
    [InlineData("9.9.9.9.in-addr.arpa.", DnsRecordType.PTR, DnsRcode.Refused, "")]
    public void Answers(string name, DnsRecordType type, DnsRcode rcode, string answer)
    {
        var m = Ask(name, type);
        Assert.Equal((int)rcode, m.Rcode);
        Assert.Equal(answer, string.Join('\n', m.Answers.Select(a => $"{a.Name} {a.RecordType} {a.Data}")));
        // Negative answers inside the zone carry its SOA (RFC 2308); refusals carry nothing.
        bool negative = answer.Length == 0 && rcode != DnsRcode.Refused;
        Assert.Equal(negative ? 1 : 0, m.Authority.Count(r => r.RecordType == DnsRecordType.SOA));
        Assert.True((m.Flags & DnsFlags.QR) != 0);
    }

    [Fact]
    public void Garbage_is_dropped_or_answered_formerr_never_thrown()
    {
        var rng = new Random(7);
        var response = new byte[512];
        for (int i = 0; i < 20_000; i++)
        {
            var packet = new byte[rng.Next(0, 80)];
            rng.NextBytes(packet);
            if (packet.Length > 2)
            {
                packet[2] &= 0x7f; // a query, mostly
            }
            int n = s_zone.Respond(packet, response);
            if (n > 0)
            {
                DnsMessage.Parse(response.AsSpan(0, n));
            }
        }
    }
}
