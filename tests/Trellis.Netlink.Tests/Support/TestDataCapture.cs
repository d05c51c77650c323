using System.Runtime.InteropServices;
using System.Text;
using Trellis.Netlink.Codec;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Tests.Support;

/// <summary>Runs only when TRELLIS_NETLINK_CAPTURE=1 (and as root); otherwise skipped.</summary>
public sealed class CaptureFactAttribute : FactAttribute
{
    public CaptureFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("TRELLIS_NETLINK_CAPTURE") != "1")
        {
            Skip = "regenerates testdata/*.hex; run with TRELLIS_NETLINK_CAPTURE=1 as root";
        }
        else if (KernelSupport.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// Regenerates testdata/*.hex: builds a namespace with iproute2, then sends the library's own
/// dump requests over a raw socket (same options as <see cref="RtNetlink"/>) and writes every
/// reply datagram verbatim. The codec tests then parse these bytes without root.
/// </summary>
public sealed class TestDataCapture
{
    // Each setup line is an `ip -n <ns>` (or `bridge -n <ns>`) command; PEER is replaced by the peer namespace.
    private static readonly string[] s_setup =
    [
        "ip link add trl-br0 address 02:00:00:00:01:00 mtu 1450 type bridge forward_delay 0",
        "ip link add trl-veth0 address 02:00:00:00:01:01 mtu 1400 type veth peer name trl-peer0 address 02:00:00:00:01:02 netns PEER",
        "ip link set trl-veth0 alias pod-veth",
        "ip link add trl-port0 address 02:00:00:00:01:03 type veth peer name trl-port0p address 02:00:00:00:01:05",
        "ip link set trl-port0 master trl-br0",
        "bridge link set dev trl-port0 hairpin on",
        "ip link add trl-vx0 address 02:00:00:00:01:04 type vxlan id 42 dstport 4789 local 10.0.0.1 dev trl-veth0 nolearning ttl 64",
        "ip link set lo up",
        "ip link set trl-br0 up",
        "ip link set trl-veth0 up",
        "ip link set trl-port0 up",
        "ip link set trl-port0p up",
        "ip link set trl-vx0 up",
        "ip addr add 10.0.0.1/24 dev trl-veth0",
        "ip addr add fd00::1/64 dev trl-veth0 nodad",
        "ip addr add 10.244.0.1/24 dev trl-br0",
        "ip route add 10.1.0.0/16 via 10.0.0.2 dev trl-veth0 proto static metric 50",
        "ip route add 10.2.0.0/16 dev trl-veth0 scope link src 10.0.0.1 table 100 mtu 1400",
        "ip route add blackhole 10.3.0.0/16",
        "ip route add 10.4.0.0/24 via 192.168.99.1 dev trl-veth0 onlink proto 99",
        "ip -6 route add fd01::/64 via fd00::2 dev trl-veth0 metric 10",
        "ip neigh replace 10.0.0.2 lladdr 02:00:00:00:02:02 dev trl-veth0 nud permanent",
        "ip neigh replace fd00::2 lladdr 02:00:00:00:02:03 dev trl-veth0 nud permanent",
        "bridge fdb append 00:00:00:00:00:00 dev trl-vx0 dst 10.0.0.9 self permanent",
        "bridge fdb replace 02:00:00:00:03:01 dev trl-vx0 dst 10.0.0.2 self permanent",
        "bridge fdb replace 02:00:00:00:03:02 dev trl-vx0 dst 10.0.0.3 vni 43 self permanent",
        "bridge fdb add 02:00:00:00:03:03 dev trl-port0 master static",
    ];

    [CaptureFact]
    public void Capture_kernel_replies_into_testdata()
    {
        using var main = new TestNetns();
        using var peer = new TestNetns();
        foreach (var line in s_setup)
        {
            var words = line.Replace("PEER", peer.Name, StringComparison.Ordinal).Split(' ');
            Cmd.Check(words[0], ["-n", main.Name, .. words[1..]]);
        }
        Cmd.Ip(peer.Name, "link", "set", "trl-peer0", "up");

        string kernel = Cmd.Check("uname", "-r").Trim();
        string setup = string.Join("\n# ", s_setup);
        void Save(string file, string request, Action<NetlinkWriter> body, ushort type, ushort flags)
        {
            var datagrams = main.Ns.Run(() => Exchange(type, flags, body));
            var text = new StringBuilder();
            text.Append("# ").Append(request).Append(" reply from Linux ").Append(kernel)
                .Append(", captured by tests/Trellis.Netlink.Tests/Support/TestDataCapture.cs\n")
                .Append("# (socket options NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK; one datagram per line)\n")
                .Append("# namespace set up with `ip -n NS` / `bridge -n NS`:\n# ").Append(setup).Append('\n');
            foreach (var datagram in datagrams)
            {
                text.Append(Convert.ToHexStringLower(datagram)).Append('\n');
            }
            File.WriteAllText(Path.Combine(HexCapture.SourceDirectory(), file), text.ToString());
        }

        const ushort Dump = MessageFlags.NLM_F_REQUEST | MessageFlags.NLM_F_DUMP;
        Save("link.hex", "RTM_GETLINK dump (IFLA_EXT_MASK=RTEXT_FILTER_SKIP_STATS)", w => LinkCodec.WriteGet(w, 0, null), MessageType.RTM_GETLINK, Dump);
        Save("addr.hex", "RTM_GETADDR dump (AF_UNSPEC)", w => AddrCodec.WriteDump(w, AddressFamilies.AF_UNSPEC, null), MessageType.RTM_GETADDR, Dump);
        Save("route4.hex", "RTM_GETROUTE dump (AF_INET, all tables)", w => RouteCodec.WriteDump(w, AddressFamilies.AF_INET, null), MessageType.RTM_GETROUTE, Dump);
        Save("route6.hex", "RTM_GETROUTE dump (AF_INET6, table main)", w => RouteCodec.WriteDump(w, AddressFamilies.AF_INET6, 254), MessageType.RTM_GETROUTE, Dump);
        Save("neigh.hex", "RTM_GETNEIGH dump (AF_UNSPEC)", w => NeighCodec.WriteNeighDump(w, AddressFamilies.AF_UNSPEC, null), MessageType.RTM_GETNEIGH, Dump);
        Save("fdb.hex", "RTM_GETNEIGH dump (AF_BRIDGE)", w => NeighCodec.WriteFdbDump(w, null), MessageType.RTM_GETNEIGH, Dump);
        Save("error-exists.hex", "RTM_NEWLINK bridge 'trl-br0' (NLM_F_CREATE|NLM_F_EXCL, already exists)",
            w => LinkCodec.WriteBridge(w, "trl-br0", null), MessageType.RTM_NEWLINK,
            MessageFlags.NLM_F_REQUEST | MessageFlags.NLM_F_ACK | MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_EXCL);
        Save("error-extack.hex", "RTM_NEWROUTE 10.9.0.0/16 dev trl-veth0 src 192.0.2.1 (prefsrc not local)",
            w =>
            {
                int index = main.Nl.LinkGetByName("trl-veth0")!.Index;
                RouteCodec.Write(w, new Route
                {
                    Destination = System.Net.IPNetwork.Parse("10.9.0.0/16"),
                    OutIndex = index,
                    Scope = RouteScope.Link,
                    PreferredSource = System.Net.IPAddress.Parse("192.0.2.1"),
                }, forDelete: false);
            },
            MessageType.RTM_NEWROUTE,
            MessageFlags.NLM_F_REQUEST | MessageFlags.NLM_F_ACK | MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_EXCL);
    }

    /// <summary>One request, every reply datagram until DONE / ERROR, raw.</summary>
    private static unsafe List<byte[]> Exchange(ushort type, ushort flags, Action<NetlinkWriter> body)
    {
        int raw = Interop.Socket(NetlinkProtocol.AF_NETLINK, Interop.SOCK_RAW | Interop.SOCK_CLOEXEC, NetlinkProtocol.NETLINK_ROUTE);
        Assert.True(raw >= 0);
        using (var fd = new FileDescriptorHandle(raw))
        {
            foreach (int option in new[] { NetlinkProtocol.NETLINK_EXT_ACK, NetlinkProtocol.NETLINK_CAP_ACK, NetlinkProtocol.NETLINK_GET_STRICT_CHK })
            {
                int one = 1;
                Assert.Equal(0, Interop.SetSockOpt(fd, NetlinkProtocol.SOL_NETLINK, option, &one, sizeof(int)));
            }
            var address = new Interop.SockAddrNetlink { Family = NetlinkProtocol.AF_NETLINK };
            Assert.Equal(0, Interop.Bind(fd, &address, sizeof(Interop.SockAddrNetlink)));

            var writer = new NetlinkWriter();
            const uint Sequence = 4242;
            writer.BeginMessage(type, flags, Sequence);
            body(writer);
            writer.EndMessage();
            var request = writer.WrittenSpan.ToArray();
            fixed (byte* p = request)
            {
                Assert.Equal(request.Length, (int)Interop.SendTo(fd, p, (nuint)request.Length, 0, &address, sizeof(Interop.SockAddrNetlink)));
            }

            var datagrams = new List<byte[]>();
            var buffer = new byte[65536];
            while (true)
            {
                nint n;
                int fromLength = sizeof(Interop.SockAddrNetlink);
                var from = default(Interop.SockAddrNetlink);
                fixed (byte* p = buffer)
                {
                    n = Interop.RecvFrom(fd, p, (nuint)buffer.Length, 0, &from, &fromLength);
                }
                Assert.True(n > 0, "recvfrom failed: " + Marshal.GetLastPInvokeError());
                var datagram = buffer.AsSpan(0, (int)n).ToArray();
                datagrams.Add(datagram);
                var reader = new NetlinkMessageReader(datagram);
                while (reader.TryRead(out var message))
                {
                    if (message.Type is MessageType.NLMSG_DONE or MessageType.NLMSG_ERROR)
                    {
                        return datagrams;
                    }
                }
            }
        }
    }
}
