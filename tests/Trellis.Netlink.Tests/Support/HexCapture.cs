using System.Runtime.CompilerServices;

namespace Trellis.Netlink.Tests.Support;

/// <summary>
/// testdata/*.hex: kernel replies captured once by <see cref="TestDataCapture"/>. Lines starting
/// with '#' are comments; every other line is one datagram as received from the socket, in hex.
/// </summary>
internal static class HexCapture
{
    public static string SourceDirectory([CallerFilePath] string path = "") =>
        Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(path)!)!, "testdata");

    public static IReadOnlyList<byte[]> Load(string fileName)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "testdata", fileName);
        var datagrams = new List<byte[]>();
        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            datagrams.Add(Convert.FromHexString(line));
        }
        return datagrams;
    }
}
