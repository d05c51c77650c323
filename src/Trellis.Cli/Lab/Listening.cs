using System.Globalization;

namespace Trellis.Cli.Lab;

/// <summary>
/// Which ports are being served inside a pod, read from /proc/PID/net/{tcp,tcp6,udp,udp6} of a
/// process in the pod's netns (those files show the sockets of the reader-independent netns of
/// PID). No netns switch, no subprocess: cheap enough to poll for readiness.
/// </summary>
public static class Listening
{
    public static HashSet<(int Port, string Protocol)> Ports(int pid)
    {
        var result = new HashSet<(int, string)>();
        Read($"/proc/{pid}/net/tcp", "TCP", "0A", result);
        Read($"/proc/{pid}/net/tcp6", "TCP", "0A", result);
        Read($"/proc/{pid}/net/udp", "UDP", "07", result);
        Read($"/proc/{pid}/net/udp6", "UDP", "07", result);
        return result;
    }

    private static void Read(string path, string protocol, string state, HashSet<(int, string)> into)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (var line in lines.Skip(1))
        {
            // "  sl  local_address rem_address   st ..." — local "0100007F:1F90", state in column 4.
            var cols = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (cols.Length > 3 && cols[3] == state)
            {
                int colon = cols[1].LastIndexOf(':');
                if (colon > 0 && int.TryParse(cols[1].AsSpan(colon + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int port))
                {
                    into.Add((port, protocol));
                }
            }
        }
    }
}
