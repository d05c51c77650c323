using System.Text;

namespace Trellis.Store.Tests.Support;

internal static class Bytes
{
    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    public static string Text(byte[] value) => Encoding.UTF8.GetString(value);

    public static string Text(this StoreItem item) => Encoding.UTF8.GetString(item.Value);
}
