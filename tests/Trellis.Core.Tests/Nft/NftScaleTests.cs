using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Trellis.Core.Nft;
using Xunit.Abstractions;

namespace Trellis.Core.Tests.Nft;

/// <summary>A kube-proxy-sized ruleset: the model and tracer stay usable (and correct) at thousands of services.</summary>
public class NftScaleTests(ITestOutputHelper output)
{
    private static string Services(int from, int to, bool add)
    {
        var sb = new StringBuilder();
        for (int i = from; i < to; i++)
        {
            string ip = $"10.96.{10 + (i / 250)}.{(i % 250) + 1}";
            string svc = $"service-{i:x8}-ns/s{i}/tcp/p80";
            string ep = $"endpoint-{i:x8}-ns/s{i}/tcp/p80__10.244.{10 + (i / 250)}.{(i % 250) + 1}/8080";
            if (add)
            {
                sb.Append(CultureInfo.InvariantCulture, $"add chain ip trellis-proxy {svc}\nadd chain ip trellis-proxy {ep}\n");
                sb.Append(CultureInfo.InvariantCulture, $"add rule ip trellis-proxy {svc} ip daddr {ip} tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n");
                sb.Append(CultureInfo.InvariantCulture, $"add rule ip trellis-proxy {svc} numgen random mod 1 vmap {{ 0 : goto {ep} }}\n");
                sb.Append(CultureInfo.InvariantCulture, $"add rule ip trellis-proxy {ep} meta l4proto tcp dnat to 10.244.{10 + (i / 250)}.{(i % 250) + 1}:8080\n");
                sb.Append(CultureInfo.InvariantCulture, $"add element ip trellis-proxy service-ips {{ {ip} . tcp . 80 : goto {svc} }}\n");
            }
            else
            {
                sb.Append(CultureInfo.InvariantCulture, $"delete element ip trellis-proxy service-ips {{ {ip} . tcp . 80 }}\n");
                sb.Append(CultureInfo.InvariantCulture, $"delete chain ip trellis-proxy {svc}\ndelete chain ip trellis-proxy {ep}\n");
            }
        }
        return sb.ToString();
    }

    [Fact]
    public void Two_thousand_services_apply_partially_sync_and_trace()
    {
        const int n = 2000;
        var m = new NftModel();
        var sw = Stopwatch.StartNew();
        m.Apply(TracerRulesets.KubeProxy + "\n" + Services(0, n, add: true));
        long full = sw.ElapsedMilliseconds;
        sw.Restart();
        m.Apply(Services(0, 200, add: false));
        long partial = sw.ElapsedMilliseconds;
        var tracer = new NftTracer(m, [IPAddress.Parse("172.30.0.11")]);
        sw.Restart();
        const int traces = 200;
        for (int i = 0; i < traces; i++)
        {
            int s = n - 1 - i;
            var p = new TracePacket(IPAddress.Parse("10.244.9.9"), IPAddress.Parse($"10.96.{10 + (s / 250)}.{(s % 250) + 1}"), "tcp", 1, 80, TraceOrigin.Forwarded);
            var o = Assert.Single(tracer.Trace(p).Outcomes);
            Assert.Equal(IPAddress.Parse($"10.244.{10 + (s / 250)}.{(s % 250) + 1}"), o.Destination);
        }
        long perTraceUs = sw.ElapsedMilliseconds * 1000 / traces;
        // A deleted service is gone: its ClusterIP is now just an unallocated one in the service range.
        var gone = Assert.Single(tracer.Trace(new TracePacket(IPAddress.Parse("10.244.9.9"), IPAddress.Parse("10.96.10.1"), "tcp", 1, 80, TraceOrigin.Forwarded)).Outcomes);
        Assert.Equal(TraceVerdict.Drop, gone.Verdict);
        output.WriteLine($"{n} services: full apply {full} ms, partial sync deleting 200 {partial} ms, trace {perTraceUs} us each");
        Assert.True(full < 30_000 && partial < 30_000, $"full {full} ms, partial {partial} ms");
    }
}
