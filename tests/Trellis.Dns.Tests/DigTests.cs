using System.Diagnostics;
using Trellis.Dns.Tests.Support;

namespace Trellis.Dns.Tests;

/// <summary>The real resolver tool against the server (skipped where dig is not installed).</summary>
public sealed class DigTests
{
    private static readonly string? s_dig = new[] { "/usr/bin/dig", "/bin/dig" }.FirstOrDefault(File.Exists);

    [SkippableDigFact]
    public async Task Dig_resolves_a_service_srv_and_ptr_over_udp_and_tcp()
    {
        await using var t = await TestServer.StartAsync();
        int port = t.Server.UdpEndPoint.Port;
        Assert.Equal("10.96.0.20", (await Dig(port, "web.default.svc.cluster.local", "A", "+short")).Trim());
        Assert.Equal("0 100 80 web.default.svc.cluster.local.", (await Dig(port, "_http._tcp.web.default.svc.cluster.local", "SRV", "+short", "+tcp")).Trim());
        Assert.Equal("web.default.svc.cluster.local.", (await Dig(port, "-x", "10.96.0.20", "+short")).Trim());
        string nx = await Dig(port, "nope.default.svc.cluster.local", "A");
        Assert.Contains("status: NXDOMAIN", nx, StringComparison.Ordinal);
        Assert.Contains("flags: qr aa rd", nx, StringComparison.Ordinal);
        Assert.Contains("cluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local.", nx, StringComparison.Ordinal);
        string nodata = await Dig(port, "web.default.svc.cluster.local", "AAAA");
        Assert.Contains("status: NOERROR", nodata, StringComparison.Ordinal);
        Assert.Contains("ANSWER: 0, AUTHORITY: 1", nodata, StringComparison.Ordinal);
        Assert.Contains("EDNS: version: 0, flags:; udp: 1232", nodata, StringComparison.Ordinal);
        Assert.Equal("\"1.1.0\"", (await Dig(port, "dns-version.cluster.local", "TXT", "+short")).Trim());
    }

    private static async Task<string> Dig(int port, params string[] args)
    {
        var psi = new ProcessStartInfo(s_dig!) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "@127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "+tries=1", "+time=2" }.Concat(args))
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        string output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"dig {string.Join(' ', args)} exited {p.ExitCode}: {output}{await p.StandardError.ReadToEndAsync()}");
        return output;
    }

    private sealed class SkippableDigFactAttribute : FactAttribute
    {
        public SkippableDigFactAttribute()
        {
            if (s_dig is null)
            {
                Skip = "dig is not installed (Debian bind9-dnsutils; scripts/install-deps.sh installs it)";
            }
        }
    }
}
