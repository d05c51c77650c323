using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Trellis.IpamStore;

/// <summary>
/// Per-node IPAM state on local disk, in the layout of the reference host-local plugin so that
/// operators' habits and tools carry over: <c>&lt;dataDir&gt;/&lt;network&gt;/&lt;ip&gt;</c> holds
/// "containerID\r\nifname" for each reserved address, <c>last_reserved_ip.&lt;set&gt;</c> remembers the
/// round-robin position, and <c>lock</c> serialises concurrent plugin invocations with flock(2).
/// </summary>
/// <remarks>
/// <para>Beyond host-local, an attachment index (<c>attachments/&lt;containerID&gt;@&lt;ifname&gt;</c>, listing
/// the attachment's addresses) lets ADD and DEL find an attachment's addresses without reading
/// every file in the directory: host-local's DEL is O(pods on the node), this one O(1).</para>
/// <para>Crash safety: every file is published with rename(2) or link(2) from a complete temp file,
/// so a SIGKILL at any instant leaves either no file or a whole one. The index is written
/// before the address files, so it always lists a superset of what the attachment holds; entries
/// are trusted only when the address file names the same owner. The flock dies with a killed
/// process, and whatever a killed ADD left reserved is exactly what GC releases.</para>
/// </remarks>
public sealed class IpamDiskStore
{
    private const string LineBreak = "\r\n";
    private const string LastReservedPrefix = "last_reserved_ip.";
    private const string TempPrefix = ".tmp-";
    private const string IndexDir = "attachments";

    public IpamDiskStore(string dataDir, string network)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        ArgumentException.ThrowIfNullOrEmpty(network);
        Directory = Path.Combine(dataDir, network);
    }

    public string Directory { get; }

    /// <summary>Takes the exclusive store lock (blocking), creating the directory on first use.</summary>
    public IDisposable Lock()
    {
        System.IO.Directory.CreateDirectory(Directory);
        string path = Path.Combine(Directory, "lock");
        int fd = Interop.Open(path, Interop.O_RDWR | Interop.O_CREAT | Interop.O_CLOEXEC, 0x180 /* 0600 */);
        if (fd < 0)
        {
            throw new IOException($"open {path}: errno {Marshal.GetLastPInvokeError()}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        while (Interop.flock(handle, Interop.LOCK_EX) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Interop.EINTR)
            {
                handle.Dispose();
                throw new IOException($"flock {path}: errno {errno}");
            }
        }
        return handle;
    }

    public bool IsReserved(IPAddress ip) => File.Exists(PathOf(ip));

    /// <summary>
    /// Reserves <paramref name="ips"/> (one per range set, in set order) for the attachment, with
    /// the lock held. Returns false, reserving nothing new, when one of them is already taken by
    /// someone else.
    /// </summary>
    public bool TryReserve(IReadOnlyList<IPAddress> ips, string containerId, string ifName)
    {
        ArgumentNullException.ThrowIfNull(ips);
        foreach (var ip in ips)
        {
            if (Owner(ip) is { } owner && !owner.Matches(containerId, ifName))
            {
                return false;
            }
        }
        // Index first: it may then name an address the attachment does not (yet) hold, never the reverse.
        var listed = new HashSet<IPAddress>(ReadIndex(containerId, ifName));
        listed.UnionWith(ips);
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, IndexDir));
        Publish(IndexPath(containerId, ifName), containerId + LineBreak + ifName + LineBreak + string.Join(LineBreak, listed), overwrite: true);
        for (int i = 0; i < ips.Count; i++)
        {
            if (!IsReserved(ips[i]))
            {
                Publish(PathOf(ips[i]), containerId + LineBreak + ifName, overwrite: false);
            }
            // The round-robin hint is advisory: losing it to a crash only moves where the next search starts.
            Publish(Path.Combine(Directory, LastReservedPrefix + i.ToString(System.Globalization.CultureInfo.InvariantCulture)), ips[i].ToString(), overwrite: true);
        }
        return true;
    }

    public IPAddress? LastReserved(int rangeSetIndex)
    {
        string p = Path.Combine(Directory, LastReservedPrefix + rangeSetIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
        string? text = TryRead(p);
        return text is not null && IPAddress.TryParse(text.Trim(), out var ip) ? ip : null;
    }

    /// <summary>The addresses the attachment holds (per the index, confirmed by each address file).</summary>
    public IReadOnlyList<IPAddress> GetByAttachment(string containerId, string ifName)
    {
        var ips = new List<IPAddress>();
        foreach (var ip in ReadIndex(containerId, ifName))
        {
            if (Owner(ip)?.Matches(containerId, ifName) == true)
            {
                ips.Add(ip);
            }
        }
        return ips;
    }

    /// <summary>Releases every address held by the attachment, then its index; returns how many addresses were released.</summary>
    public int ReleaseByAttachment(string containerId, string ifName)
    {
        int n = 0;
        foreach (var ip in GetByAttachment(containerId, ifName))
        {
            File.Delete(PathOf(ip));
            n++;
        }
        DeleteIfPresent(IndexPath(containerId, ifName));
        return n;
    }

    /// <summary>Every reservation in the store (a full scan, for GC and STATUS). Malformed entries come back with empty owner fields.</summary>
    public IReadOnlyList<Reservation> List()
    {
        var result = new List<Reservation>();
        if (!System.IO.Directory.Exists(Directory))
        {
            return result;
        }
        foreach (string path in System.IO.Directory.EnumerateFiles(Directory))
        {
            if (IPAddress.TryParse(Path.GetFileName(path), out var ip) && Owner(ip) is { } r)
            {
                result.Add(r);
            }
        }
        return result;
    }

    /// <summary>
    /// Releases every reservation and index entry whose owner is not in <paramref name="valid"/> and
    /// removes temp files left by killed invocations. Call with the lock held.
    /// </summary>
    public IReadOnlyList<Reservation> ReleaseAllExcept(IReadOnlySet<(string ContainerId, string IfName)> valid)
    {
        ArgumentNullException.ThrowIfNull(valid);
        var released = new List<Reservation>();
        foreach (var r in List())
        {
            if (!valid.Contains((r.ContainerId, r.IfName)))
            {
                File.Delete(PathOf(r.Address));
                released.Add(r);
            }
        }
        string indexDir = Path.Combine(Directory, IndexDir);
        if (System.IO.Directory.Exists(indexDir))
        {
            foreach (string index in System.IO.Directory.EnumerateFiles(indexDir))
            {
                var lines = TryRead(index)?.Split(LineBreak);
                if (lines is null || lines.Length < 2 || !valid.Contains((lines[0], lines[1])))
                {
                    File.Delete(index);
                }
            }
        }
        foreach (string dir in (ReadOnlySpan<string>)[Directory, indexDir])
        {
            if (System.IO.Directory.Exists(dir))
            {
                foreach (string tmp in System.IO.Directory.EnumerateFiles(dir, TempPrefix + "*"))
                {
                    File.Delete(tmp);
                }
            }
        }
        return released;
    }

    private Reservation? Owner(IPAddress ip)
    {
        string? content = TryRead(PathOf(ip));
        if (content is null)
        {
            return null;
        }
        int br = content.IndexOf(LineBreak, StringComparison.Ordinal);
        // host-local before v0.7 wrote only the container id; the ifname is unknown then.
        return br < 0
            ? new Reservation(ip, content.Trim(), "")
            : new Reservation(ip, content[..br].Trim(), content[(br + LineBreak.Length)..].Trim());
    }

    private List<IPAddress> ReadIndex(string containerId, string ifName)
    {
        var ips = new List<IPAddress>();
        var lines = TryRead(IndexPath(containerId, ifName))?.Split(LineBreak);
        // A hashed file name could in theory be shared: the owner lines settle it.
        if (lines is null || lines.Length < 2 || lines[0] != containerId || lines[1] != ifName)
        {
            return ips;
        }
        for (int i = 2; i < lines.Length; i++)
        {
            if (IPAddress.TryParse(lines[i], out var ip))
            {
                ips.Add(ip);
            }
        }
        return ips;
    }

    private static void Publish(string path, string content, bool overwrite)
    {
        string tmp = Path.Combine(Path.GetDirectoryName(path)!, $"{TempPrefix}{Environment.ProcessId}-{Path.GetFileName(path)}");
        File.WriteAllText(tmp, content);
        // Without overwrite .NET uses link(2)+unlink(2): it fails rather than replace a file that appeared.
        File.Move(tmp, path, overwrite);
    }

    private static void DeleteIfPresent(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            // Never indexed: nothing to delete.
        }
    }

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private string IndexPath(string containerId, string ifName)
    {
        // Container ids cannot contain '@' (CNI's pattern), so the pair reads back unambiguously;
        // overlong pairs are hashed to stay under NAME_MAX.
        string name = containerId.Length + ifName.Length < 200 ? containerId + "@" + ifName : Fnv(containerId + "\n" + ifName);
        return Path.Combine(Directory, IndexDir, name);
    }

    private static string Fnv(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in text)
        {
            h = (h ^ c) * 1099511628211UL;
        }
        return "h-" + h.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }

    private string PathOf(IPAddress ip) => Path.Combine(Directory, ip.ToString());
}

public sealed record Reservation(IPAddress Address, string ContainerId, string IfName)
{
    public bool Matches(string containerId, string ifName) =>
        ContainerId == containerId && IfName == ifName;
}
