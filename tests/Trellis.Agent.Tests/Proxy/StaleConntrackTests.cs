using System.Net;
using Trellis.Agent.Proxy;
using Trellis.Core.Proxy;

namespace Trellis.Agent.Tests.Proxy;

public sealed class StaleConntrackTests
{
    private static ProxyEndpoint Ep(string ip) => new(IPAddress.Parse(ip), 53, true, true, false, "node-1", true);

    private static ProxyServicePort Port(string protocol, int? nodePort, params string[] endpoints)
    {
        var eps = endpoints.Select(Ep).ToList();
        return new ProxyServicePort("kube-system", "kube-dns", "dns", protocol, [IPAddress.Parse("10.96.0.10")], 53, nodePort,
            [IPAddress.Parse("192.0.2.1")], [], eps, eps, [], false, false, null);
    }

    [Fact]
    public void A_removed_UDP_endpoint_makes_the_entries_DNATed_to_it_stale_on_every_service_address_and_the_NodePort()
    {
        var d = StaleConntrack.Find([Port("UDP", 30053, "10.244.1.5", "10.244.2.5")], [Port("UDP", 30053, "10.244.2.5")]);
        Assert.Equal(
            [
                "conntrack -D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --dst-nat 10.244.1.5",
                "conntrack -D -p udp --orig-dst 192.0.2.1 --orig-port-dst 53 --dst-nat 10.244.1.5",
                "conntrack -D -p udp --orig-port-dst 30053 --dst-nat 10.244.1.5",
            ],
            d.Select(x => x.ToString()));
    }

    [Fact]
    public void A_deleted_UDP_service_makes_all_its_endpoints_stale()
    {
        var d = StaleConntrack.Find([Port("UDP", null, "10.244.1.5")], []);
        Assert.Contains(d, x => x.ToString() == "conntrack -D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --dst-nat 10.244.1.5");
    }

    [Fact]
    public void A_UDP_service_that_gets_its_first_endpoint_clears_entries_made_while_it_had_none()
    {
        var d = StaleConntrack.Find([Port("UDP", null)], [Port("UDP", null, "10.244.1.5")]);
        Assert.Contains(d, x => x.ToString() == "conntrack -D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53");
        Assert.Equal(d, StaleConntrack.Find([], [Port("UDP", null, "10.244.1.5")]));
    }

    [Fact]
    public void TCP_and_unchanged_UDP_need_nothing()
    {
        Assert.Empty(StaleConntrack.Find([Port("TCP", null, "10.244.1.5")], []));
        Assert.Empty(StaleConntrack.Find([Port("UDP", null, "10.244.1.5")], [Port("UDP", null, "10.244.1.5")]));
    }
}
