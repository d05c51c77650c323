using Trellis.Core.Dns;
using Trellis.DnsServer;
using Xunit.Abstractions;

namespace Trellis.Dns.Tests;

/// <summary>
/// Bytes allocated per answered query on the server's hot path (parse, zone lookup, encode): every byte is
/// gen0 budget that, under load, ends up as resident memory and as GC pauses in the p99.
/// </summary>
public sealed class AllocationTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("svc-7.bench.svc.cluster.local.", 1, 0)]          // hit, A: the name is interned from the zone
    [InlineData("_http._tcp.svc-7.bench.svc.cluster.local.", 33, 0)] // hit, SRV with additional
    [InlineData("www.example.com.bench.svc.cluster.local.", 1, 160)] // search-path miss: NXDOMAIN with SOA; only the name string
    public void Answering_from_the_snapshot_allocates_little_per_query(string name, ushort type, int maxBytes)
    {
        const int n = 1000;
        var services = Enumerable.Range(0, n).Select(i => new DnsService("bench", $"svc-{i}", "ClusterIP", [$"10.96.{(i / 250) + 1}.{(i % 250) + 1}"], false, null,
            [new DnsPort("http", 80, "TCP")], false)).ToList();
        var zone = DnsZone.Compile(["bench"], services, Array.Empty<DnsEndpointSlice>(), Array.Empty<DnsPod>(), new DnsZoneOptions(), 1);
        var handler = new QueryHandler(() => zone, null, new DnsMetrics());
        byte[] query = Query(name, type);
        var response = new byte[4096];
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(handler.TryAnswer(query, response, tcp: false, out _) > 0);
        }
        const int queries = 20000;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < queries; i++)
        {
            handler.TryAnswer(query, response, tcp: false, out _);
        }
        double perQuery = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)queries;
        output.WriteLine($"{name} type {type}: {perQuery:F1} bytes allocated per query");
        Assert.True(perQuery <= maxBytes, $"{perQuery:F1} bytes per query, at most {maxBytes} expected");
    }

    private static byte[] Query(string name, ushort type)
    {
        var q = new List<byte> { 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            q.Add((byte)label.Length);
            q.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }
        q.AddRange(new byte[] { 0, (byte)(type >> 8), (byte)type, 0, 1 });
        return [.. q];
    }
}
