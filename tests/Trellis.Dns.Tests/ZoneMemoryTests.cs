using Trellis.Core.Dns;
using Xunit.Abstractions;

namespace Trellis.Dns.Tests;

/// <summary>What a snapshot and the compact inputs the server keeps cost in managed memory, per 1,000 Services.</summary>
public sealed class ZoneMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public void A_thousand_services_with_endpoints_cost_a_few_megabytes_at_most()
    {
        const int n = 5000;
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var services = Enumerable.Range(0, n).Select(i => new DnsService("bench", $"svc-{i}", "ClusterIP", [$"10.96.{(i / 250) + 1}.{(i % 250) + 1}"], false, null,
            [new DnsPort("http", 80, "TCP")], false)).ToList();
        var slices = Enumerable.Range(0, n).Select(i => new DnsEndpointSlice("bench", $"svc-{i}", "IPv4", [new DnsPort("http", 8080, "TCP")],
            [new DnsEndpoint([$"10.244.{2 * i / 250}.{(2 * i % 250) + 1}"], null, true), new DnsEndpoint([$"10.244.{((2 * i) + 1) / 250}.{(((2 * i) + 1) % 250) + 1}"], null, true)])).ToList();
        long inputs = GC.GetTotalMemory(forceFullCollection: true);
        var zone = DnsZone.Compile(["bench"], services, slices, Array.Empty<DnsPod>(), new DnsZoneOptions(), 1);
        long compiled = GC.GetTotalMemory(forceFullCollection: true);
        double inputsPerK = (inputs - before) / 1048576.0 * 1000 / n;
        double zonePerK = (compiled - inputs) / 1048576.0 * 1000 / n;
        output.WriteLine($"per 1,000 Services: inputs {inputsPerK:F2} MB, zone {zonePerK:F2} MB ({zone.RecordCount} records)");
        Assert.Equal(3 * n + 3, zone.RecordCount); // A, PTR, SRV per Service; SOA, NS, TXT at the apex
        Assert.True(inputsPerK + zonePerK < 4, $"inputs {inputsPerK:F2} MB + zone {zonePerK:F2} MB per 1,000 Services");
        GC.KeepAlive(services);
        GC.KeepAlive(slices);
        GC.KeepAlive(zone);
    }
}
