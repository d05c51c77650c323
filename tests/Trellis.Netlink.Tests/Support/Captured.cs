using Trellis.Netlink.Codec;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink.Tests.Support;

/// <summary>Decodes captured datagrams the way <see cref="RtNetlink"/>'s dump handlers do.</summary>
internal static class Captured
{
    public static List<Link> Links(string file) => Decode(file, MessageType.RTM_NEWLINK, static (in NetlinkMessage m) => LinkCodec.Decode(m));

    public static List<Address> Addresses(string file) => Decode(file, MessageType.RTM_NEWADDR, static (in NetlinkMessage m) => AddrCodec.Decode(m));

    public static List<Route> Routes(string file) => Decode(file, MessageType.RTM_NEWROUTE, static (in NetlinkMessage m) => RouteCodec.Decode(m)!);

    public static List<Neigh> Neighbours(string file) => Decode(file, MessageType.RTM_NEWNEIGH, static (in NetlinkMessage m) => NeighCodec.DecodeNeigh(m));

    public static List<Fdb> FdbEntries(string file) => Decode(file, MessageType.RTM_NEWNEIGH, static (in NetlinkMessage m) => NeighCodec.DecodeFdb(m));

    /// <summary>Decodes every message of a datagram by its type; returns how many were decoded.</summary>
    public static int DecodeAny(ReadOnlySpan<byte> datagram)
    {
        int count = 0;
        var reader = new NetlinkMessageReader(datagram);
        while (reader.TryRead(out var message))
        {
            count++;
            switch (message.Type)
            {
                case MessageType.RTM_NEWLINK: LinkCodec.Decode(message); break;
                case MessageType.RTM_NEWADDR: AddrCodec.Decode(message); break;
                case MessageType.RTM_NEWROUTE: RouteCodec.Decode(message); break;
                case MessageType.RTM_NEWNEIGH when !message.Payload.IsEmpty && message.Payload[0] == AddressFamilies.AF_BRIDGE:
                    NeighCodec.DecodeFdb(message);
                    break;
                case MessageType.RTM_NEWNEIGH: NeighCodec.DecodeNeigh(message); break;
                case MessageType.NLMSG_ERROR:
                case MessageType.NLMSG_DONE:
                    // The socket throws what ErrorOf returns; a malformed error reply surfaces the same way here.
                    if (NetlinkSocket.ErrorOf(message, new Op(MessageType.RTM_GETLINK, "test")) is { IsMalformed: true } malformed)
                    {
                        throw malformed;
                    }
                    break;
            }
        }
        return count;
    }

    private delegate T Decoder<T>(in NetlinkMessage message);

    private static List<T> Decode<T>(string file, ushort type, Decoder<T> decode)
    {
        var result = new List<T>();
        foreach (var datagram in HexCapture.Load(file))
        {
            var reader = new NetlinkMessageReader(datagram);
            while (reader.TryRead(out var message))
            {
                if (message.Type == type)
                {
                    result.Add(decode(message));
                }
            }
        }
        return result;
    }
}
