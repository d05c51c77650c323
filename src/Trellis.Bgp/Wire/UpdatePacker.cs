using System.Net;

namespace Trellis.Bgp.Wire;

/// <summary>Splits many prefixes sharing one set of attributes into as few UPDATEs as fit in 4096 bytes.</summary>
public static class UpdatePacker
{
    /// <summary>Announcements of one family: classic NLRI for IPv4, MP_REACH_NLRI for IPv6.</summary>
    public static IEnumerable<byte[]> Announce(PathAttributes attributes, IReadOnlyList<IPNetwork> prefixes, AfiSafi family, bool fourOctetAs)
    {
        var template = attributes.WithoutNlri();
        if (family != AfiSafi.Ipv4Unicast)
        {
            template.MpReach = new MpReach { Family = family, NextHop = attributes.MpReach?.NextHop ?? IPAddress.IPv6Any, LinkLocalNextHop = attributes.MpReach?.LinkLocalNextHop };
            template.NextHop = null;
        }
        else
        {
            template.MpReach = null;
        }
        int baseLength = new UpdateMessage { Attributes = template }.ToBytes(fourOctetAs).Length;
        // +1: the MP attribute may switch to the extended length form once it grows.
        int budget = BgpHeader.MaxMessageLength - baseLength - 1;
        foreach (var chunk in Chunks(prefixes, budget))
        {
            var copy = template.WithoutNlri();
            var update = new UpdateMessage { Attributes = copy };
            if (family == AfiSafi.Ipv4Unicast)
            {
                update.Nlri.AddRange(chunk);
            }
            else
            {
                copy.MpReach = new MpReach { Family = family, NextHop = template.MpReach!.NextHop, LinkLocalNextHop = template.MpReach.LinkLocalNextHop, Nlri = chunk };
            }
            yield return update.ToBytes(fourOctetAs);
        }
    }

    /// <summary>Withdrawals of one family: the withdrawn routes field for IPv4, MP_UNREACH_NLRI for IPv6.</summary>
    public static IEnumerable<byte[]> Withdraw(IReadOnlyList<IPNetwork> prefixes, AfiSafi family)
    {
        int budget = BgpHeader.MaxMessageLength - 23 - (family == AfiSafi.Ipv4Unicast ? 0 : 7);
        foreach (var chunk in Chunks(prefixes, budget))
        {
            var update = family == AfiSafi.Ipv4Unicast
                ? new UpdateMessage { Withdrawn = chunk }
                : new UpdateMessage { Attributes = new PathAttributes { MpUnreach = new MpUnreach { Family = family, Withdrawn = chunk } } };
            yield return update.ToBytes();
        }
    }

    private static IEnumerable<List<IPNetwork>> Chunks(IReadOnlyList<IPNetwork> prefixes, int budget)
    {
        var chunk = new List<IPNetwork>();
        int used = 0;
        foreach (var prefix in prefixes)
        {
            int size = Prefixes.EncodedLength(prefix);
            if (used + size > budget && chunk.Count > 0)
            {
                yield return chunk;
                chunk = [];
                used = 0;
            }
            chunk.Add(prefix);
            used += size;
        }
        if (chunk.Count > 0)
        {
            yield return chunk;
        }
    }
}
