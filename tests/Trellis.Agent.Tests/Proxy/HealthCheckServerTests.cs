using System.Net;
using System.Net.Sockets;
using System.Text;
using Trellis.Agent.Proxy;

namespace Trellis.Agent.Tests.Proxy;

public sealed class HealthCheckServerTests
{
    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task<string> GetAsync(int port)
    {
        using var c = new TcpClient();
        await c.ConnectAsync(IPAddress.Loopback, port);
        var s = c.GetStream();
        await s.WriteAsync("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        using var r = new StreamReader(s, Encoding.UTF8);
        return await r.ReadToEndAsync();
    }

    [Fact]
    public async Task Answers_200_with_local_endpoints_503_without_and_stops_serving_removed_ports()
    {
        using var server = new HealthCheckServer(TextWriter.Null);
        int port = FreePort();
        server.Update(new Dictionary<int, (string, string, int)> { [port] = ("ns", "web", 2) });
        string ok = await GetAsync(port);
        Assert.StartsWith("HTTP/1.1 200 OK", ok, StringComparison.Ordinal);
        Assert.EndsWith("{\"service\":{\"namespace\":\"ns\",\"name\":\"web\"},\"localEndpoints\":2,\"serviceProxyHealthy\":true}", ok, StringComparison.Ordinal);
        Assert.Contains("X-Load-Balancing-Endpoint-Weight: 2", ok, StringComparison.Ordinal);

        server.Update(new Dictionary<int, (string, string, int)> { [port] = ("ns", "web", 0) });
        Assert.StartsWith("HTTP/1.1 503", await GetAsync(port), StringComparison.Ordinal);

        server.Update(new Dictionary<int, (string, string, int)>());
        Assert.Empty(server.Ports);
        await Assert.ThrowsAnyAsync<SocketException>(() => GetAsync(port));
    }
}
