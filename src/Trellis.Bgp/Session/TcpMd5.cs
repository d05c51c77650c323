using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trellis.Bgp.Session;

/// <summary>TCP MD5 signatures (RFC 2385) through Linux's TCP_MD5SIG socket option.</summary>
internal static class TcpMd5
{
    private const int TcpMd5Sig = 14;
    private const int MaxKeyLength = 80;

    /// <summary>
    /// Sets (or with a null key, clears) the key for segments to and from <paramref name="peer"/>. On a
    /// listener this makes the kernel accept only signed SYNs from that peer; unsigned ones are dropped.
    /// </summary>
    public static void SetKey(Socket socket, IPAddress peer, string? password)
    {
        byte[] key = password is null ? [] : Encoding.UTF8.GetBytes(password);
        if (key.Length > MaxKeyLength)
        {
            throw new ArgumentException($"password: at most {MaxKeyLength} bytes", nameof(password));
        }
        // struct tcp_md5sig: sockaddr_storage (128), flags, prefixlen, keylen (u16), ifindex (u32), key[80].
        var option = new byte[128 + 1 + 1 + 2 + 4 + MaxKeyLength];
        // A dual-stack listener sees IPv4 peers as mapped addresses; the key must match that form.
        bool v6 = peer.AddressFamily == AddressFamily.InterNetworkV6 || socket.AddressFamily == AddressFamily.InterNetworkV6;
        var address = v6 ? (peer.AddressFamily == AddressFamily.InterNetwork ? peer.MapToIPv6() : peer) : peer;
        BinaryPrimitives.WriteUInt16LittleEndian(option, (ushort)(v6 ? 10 : 2));
        address.TryWriteBytes(option.AsSpan(v6 ? 8 : 4), out _);
        BinaryPrimitives.WriteUInt16LittleEndian(option.AsSpan(130), (ushort)key.Length);
        key.CopyTo(option, 136);
        socket.SetRawSocketOption((int)SocketOptionLevel.Tcp, TcpMd5Sig, option);
    }
}
