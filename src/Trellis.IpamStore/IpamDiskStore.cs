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
/// <para>Beyond host-local, an attachment index (<c>attachments/&lt;containerID&gt;@&lt;ifname&gt;</c>, a symlink
/// to the attachment's addresses) lets ADD and DEL find an attachment's addresses without reading
/// every file in the directory: host-local's DEL is O(pods on the node), this one O(1).</para>
/// <para>Crash safety: address files are created with O_EXCL under the lock, so no address ever
/// has two owners; a SIGKILL between create and write leaves an empty claim that belongs to no
/// attachment. The index (a symlink, atomic by nature) is written before the address files, so
/// it lists a superset of what the attachment holds; entries are trusted only when the address
/// file names the same owner. The flock dies with a killed process, and whatever a killed ADD
/// left reserved is exactly what GC releases.</para>
/// </remarks>
public sealed class IpamDiskStore
{
    private const string LineBreak = "\r\n";
    private const string LastReservedPrefix = "last_reserved_ip.";
    private const string IndexDir = "attachments";

    public IpamDiskStore(string dataDir, string network)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        ArgumentException.ThrowIfNullOrEmpty(network);
        Directory = Path.Combine(dataDir, network);
    }

    public string Directory { get; }

    /// <summary>
    /// Takes the exclusive store lock, creating the directory on first use. Waits at most
    /// <paramref name="timeout"/> (default: forever); then throws <see cref="TimeoutException"/>,
    /// which a plugin reports as "try again later" rather than hanging its runtime.
    /// </summary>
    public IDisposable Lock(TimeSpan? timeout = null)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string path = Path.Combine(Directory, "lock");
        int fd = Interop.Open(path, Interop.O_RDWR | Interop.O_CREAT | Interop.O_CLOEXEC, 0x180 /* 0600 */);
        if (fd < 0)
        {
            throw new IOException($"open {path}: errno {Marshal.GetLastPInvokeError()}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Interop.flock(handle, Interop.LOCK_EX | Interop.LOCK_NB) == 0)
        {
            return handle; // uncontended: the common case costs one syscall
        }
        if (timeout is null)
        {
            FlockBlocking(handle, path);
            return handle;
        }
        // A blocked flock(2) cannot be cancelled, so it waits on its own thread. If the timeout wins,
        // the waiter is abandoned: should it get the lock later, it releases it at once. The gate
        // makes "acquired" and "abandoned" mutually exclusive.
        var gate = new object();
        bool acquired = false, abandoned = false;
        var locker = Task.Factory.StartNew(() =>
        {
            FlockBlocking(handle, path);
            lock (gate)
            {
                if (abandoned)
                {
                    handle.Dispose();
                }
                else
                {
                    acquired = true;
                }
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            locker.Wait(timeout.Value);
        }
        catch (AggregateException e) when (e.InnerException is IOException io)
        {
            throw io;
        }
        lock (gate)
        {
            if (!acquired)
            {
                abandoned = true;
                throw new TimeoutException($"{path}: still locked by another invocation after {timeout.Value.TotalSeconds:0.#}s");
            }
        }
        return handle;
    }

    private static void FlockBlocking(SafeFileHandle handle, string path)
    {
        while (Interop.flock(handle, Interop.LOCK_EX) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Interop.EINTR)
            {
                handle.Dispose();
                throw new IOException($"flock {path}: errno {errno}");
            }
        }
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
        var listed = new List<IPAddress>(ReadIndex(containerId, ifName));
        foreach (var ip in ips)
        {
            if (!listed.Contains(ip))
            {
                listed.Add(ip);
            }
        }
        WriteIndex(containerId, ifName, listed);
        for (int i = 0; i < ips.Count; i++)
        {
            if (!IsReserved(ips[i]))
            {
                // O_EXCL under the lock: a SIGKILL between create and write leaves an empty claim,
                // owned by nobody, which GC releases; never a second owner.
                WriteFile(PathOf(ips[i]), containerId + LineBreak + ifName, exclusive: true);
            }
            // The round-robin hint is advisory (a torn write only moves where the next search
            // starts), so it is rewritten in place rather than published atomically.
            WriteFile(Path.Combine(Directory, LastReservedPrefix + i.ToString(System.Globalization.CultureInfo.InvariantCulture)), ips[i].ToString(), exclusive: false);
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
    /// Releases every reservation and index entry whose owner is not in <paramref name="valid"/>
    /// (including empty claims left by killed invocations). Call with the lock held.
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
            var validNames = valid.Select(a => Path.GetFileName(IndexPath(a.ContainerId, a.IfName))).ToHashSet(StringComparer.Ordinal);
            foreach (string index in System.IO.Directory.EnumerateFileSystemEntries(indexDir))
            {
                if (!validNames.Contains(Path.GetFileName(index)))
                {
                    File.Delete(index);
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

    /// <summary>
    /// The index entry is a symlink whose target is the address list ("10.244.1.5,fd00::5"): one
    /// syscall to write atomically (symlink(2) either exists whole or not at all) and one to read.
    /// It is only a hint; the address files are the truth.
    /// </summary>
    private List<IPAddress> ReadIndex(string containerId, string ifName)
    {
        var ips = new List<IPAddress>();
        string? target;
        try
        {
            target = new FileInfo(IndexPath(containerId, ifName)).LinkTarget;
        }
        catch (IOException)
        {
            target = null;
        }
        foreach (var part in (target ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (IPAddress.TryParse(part, out var ip))
            {
                ips.Add(ip);
            }
        }
        return ips;
    }

    private void WriteIndex(string containerId, string ifName, List<IPAddress> ips)
    {
        string path = IndexPath(containerId, ifName);
        string target = string.Join(',', ips);
        for (int attempt = 0; attempt < 2; attempt++)
        {
            if (Interop.Symlink(target, path) == 0)
            {
                return;
            }
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Interop.EEXIST)
            {
                File.Delete(path); // a retried ADD: replaced under the lock
                continue;
            }
            if (errno == 2 /* ENOENT: the directory */ && attempt == 0)
            {
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                continue;
            }
            throw new IOException($"symlink {path}: errno {errno}");
        }
        throw new IOException($"symlink {path}: could not replace it");
    }

    /// <summary>open/write/close with nothing else: .NET's File API adds fstatfs, flock, ftruncate and lseek per file.</summary>
    private static unsafe void WriteFile(string path, string content, bool exclusive)
    {
        int flags = Interop.O_WRONLY | Interop.O_CREAT | Interop.O_CLOEXEC | (exclusive ? Interop.O_EXCL : Interop.O_TRUNC);
        int fd = Interop.Open(path, flags, 0x1A4 /* 0644 */);
        if (fd < 0)
        {
            throw new IOException($"open {path}: errno {Marshal.GetLastPInvokeError()}");
        }
        try
        {
            byte[] bytes = System.Text.Encoding.UTF8.GetBytes(content);
            fixed (byte* b = bytes)
            {
                if (Interop.Write(fd, b, bytes.Length) != bytes.Length)
                {
                    throw new IOException($"write {path}: errno {Marshal.GetLastPInvokeError()}");
                }
            }
        }
        finally
        {
            _ = Interop.Close(fd);
        }
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

    private static string Fnv(string text) => "h-" + Trellis.Model.Fnv1a.Hex(text);

    private string PathOf(IPAddress ip) => Path.Combine(Directory, ip.ToString());
}

public sealed record Reservation(IPAddress Address, string ContainerId, string IfName)
{
    public bool Matches(string containerId, string ifName) =>
        ContainerId == containerId && IfName == ifName;
}
