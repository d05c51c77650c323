using System.Globalization;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink;

/// <summary>
/// Describes the object of a request for error messages. Formatting happens only when a request
/// fails, so the success path builds no strings.
/// </summary>
internal readonly record struct Op(ushort Request, string Kind, string? Name = null, int Index = 0, object? Subject = null, string? Peer = null, string? Detail = null)
{
    public string Operation => MessageType.Name(Request);

    public string Describe()
    {
        string text = Kind;
        if (Name is not null)
        {
            text += " '" + Name + "'";
        }
        if (Subject is not null)
        {
            text += " " + Subject;
        }
        if (Index != 0)
        {
            text += (Name is null && Subject is null ? " " : " on link ") + Index.ToString(CultureInfo.InvariantCulture);
        }
        if (Peer is not null)
        {
            text += " (peer '" + Peer + "')";
        }
        if (Detail is not null)
        {
            text += " (" + Detail + ")";
        }
        return text;
    }
}
