using System.Diagnostics;
using System.Net;

namespace Trellis.Bgp.Tests.Support;

/// <summary>Config generators and CLI wrappers for the real routers the interop tests peer with.</summary>
internal static class Routers
{
    public const string Bird = "/usr/sbin/bird";
    public const string GoBgpd = "/usr/bin/gobgpd";
    public const string FrrBgpd = "/usr/lib/frr/bgpd";

    public static Process StartBird(BgpLab lab, string ns, string name, IPAddress self, uint asn, IPAddress peer, uint peerAsn, string? password, string[] originate, bool ipv6 = false)
    {
        string routes = string.Join('\n', originate.Select(p => $"  route {p} blackhole;"));
        string conf = $$"""
            router id {{self}};
            protocol device { }
            protocol static s4 { ipv4; {{routes}} }
            protocol bgp trellis {
              local {{self}} as {{asn}};
              neighbor {{peer}} as {{peerAsn}};
              {{(password is null ? "" : $"password \"{password}\";")}}
              hold time 9;
              connect retry time 1;
              error wait time 1, 2;
              graceful restart on;
              graceful restart time 60;
              ipv4 { import all; export all; };
              {{(ipv6 ? "ipv6 { import all; export none; };" : "")}}
            }
            """;
        string file = lab.File(name + ".conf", conf);
        return lab.Start(ns, Bird, "-f", "-c", file, "-s", Path.Combine(lab.Dir, name + ".ctl"), "-P", Path.Combine(lab.Dir, name + ".pid"));
    }

    public static string Birdc(BgpLab lab, string ns, string name, string command) =>
        BgpLab.Exec(ns, "/usr/sbin/birdc", ["-s", Path.Combine(lab.Dir, name + ".ctl"), .. command.Split(' ')]);

    public static Process StartGoBgp(BgpLab lab, string ns, IPAddress self, uint asn, IPAddress peer, uint peerAsn)
    {
        string conf = $"""
            [global.config]
              as = {asn}
              router-id = "{self}"
              local-address-list = ["{self}"]
            [[neighbors]]
              [neighbors.config]
                neighbor-address = "{peer}"
                peer-as = {peerAsn}
              [neighbors.timers.config]
                hold-time = 9
                keepalive-interval = 3
                connect-retry = 1
              [[neighbors.afi-safis]]
                [neighbors.afi-safis.config]
                  afi-safi-name = "ipv4-unicast"
            """;
        string file = lab.File("gobgpd.toml", conf);
        return lab.Start(ns, GoBgpd, "-f", file, "-t", "toml", "--api-hosts", "127.0.0.1:50051", "-l", "warn");
    }

    public static string GoBgp(string ns, params string[] args) => BgpLab.Exec(ns, "/usr/bin/gobgp", ["-u", "127.0.0.1", "-p", "50051", .. args]);

    public static Process StartFrr(BgpLab lab, string ns, IPAddress self, uint asn, IPAddress peer, uint peerAsn, string[] originate)
    {
        string networks = string.Join('\n', originate.Select(p => $"  network {p}"));
        string conf = $"""
            frr defaults traditional
            hostname trellis-frr
            router bgp {asn}
             bgp router-id {self}
             no bgp ebgp-requires-policy
             no bgp network import-check
             neighbor {peer} remote-as {peerAsn}
             neighbor {peer} timers 3 9
             neighbor {peer} timers connect 1
             address-family ipv4 unicast
            {networks}
             exit-address-family
            """;
        string file = lab.File("frr.conf", conf);
        string dir = Path.Combine(lab.Dir, "frr");
        Directory.CreateDirectory(dir);
        return lab.Start(ns, FrrBgpd, "-f", file, "-i", Path.Combine(dir, "bgpd.pid"), "--vty_socket", dir, "-z", Path.Combine(dir, "zserv.api"), "-Z", "-S", "-n", "-P", "0", "--log", "stdout");
    }

    public static string Vtysh(BgpLab lab, string ns, string command) =>
        BgpLab.Exec(ns, "/usr/bin/vtysh", "--vty_socket", Path.Combine(lab.Dir, "frr"), "-d", "bgpd", "-c", command);
}
