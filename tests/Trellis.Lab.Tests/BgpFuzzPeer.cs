using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Trellis.Netlink;

namespace Trellis.Lab.Tests;

/// <summary>
/// A misbehaving BGP peer for the lab tests: OPEN, KEEPALIVE, then an UPDATE whose attribute list runs past
/// the message. Its socket is made inside <c>netns</c> (a socket keeps the namespace it was created in), so the test
/// process itself plays the peer. Returns the NOTIFICATION it gets back as (code, subcode).
/// </summary>
internal static class BgpFuzzPeer
{
    public static (byte Code, byte Subcode) SendMalformedUpdate(string netns, IPAddress self, IPAddress node, ushort asn, TimeSpan timeout)
    {
        using var ns = NetNs.Open("/var/run/netns/" + netns);
        using var socket = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        socket.Bind(new IPEndPoint(self, 0));
        socket.Connect(new IPEndPoint(node, 179));
        // OPEN: version 4, AS, hold time 9, BGP identifier, no optional parameters.
        byte[] open = [4, (byte)(asn >> 8), (byte)asn, 0, 9, .. self.GetAddressBytes(), 0];
        socket.Send(Message(1, open));
        var (type, _) = Read(socket);
        if (type != 1)
        {
            throw new InvalidOperationException($"expected OPEN, got message type {type}");
        }
        socket.Send(Message(4, []));
        // Total path attribute length 255 with 4 bytes of attributes behind it: the attributes cannot be told
        // apart from the NLRI, so RFC 7606 §4 leaves no choice but a session reset with 3/1 (Malformed
        // Attribute List). (A bad ORIGIN value alone is only treat-as-withdraw under RFC 7606 §7.1.)
        byte[] update = [0, 0, 0, 0xff, 0x40, 1, 1, 0];
        for (var until = DateTime.UtcNow + timeout; DateTime.UtcNow < until;)
        {
            var (t, body) = Read(socket);
            if (t == 4)
            {
                socket.Send(Message(2, update));
            }
            else if (t == 3)
            {
                return (body[0], body[1]);
            }
        }
        throw new TimeoutException("no NOTIFICATION from " + node);
    }

    private static byte[] Message(byte type, byte[] body)
    {
        var m = new byte[19 + body.Length];
        m.AsSpan(0, 16).Fill(0xff);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(16), (ushort)m.Length);
        m[18] = type;
        body.CopyTo(m, 19);
        return m;
    }

    private static (byte Type, byte[] Body) Read(Socket socket)
    {
        var header = ReadExactly(socket, 19);
        int length = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(16));
        return (header[18], ReadExactly(socket, length - 19));
    }

    private static byte[] ReadExactly(Socket socket, int count)
    {
        var buffer = new byte[count];
        for (int read = 0; read < count;)
        {
            int n = socket.Receive(buffer, read, count - read, SocketFlags.None);
            if (n == 0)
            {
                throw new InvalidOperationException("the node closed the connection without a NOTIFICATION");
            }
            read += n;
        }
        return buffer;
    }
}
