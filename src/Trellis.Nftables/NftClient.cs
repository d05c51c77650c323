using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Trellis.Nftables;

/// <summary>
/// Runs the real <c>nft</c>, as knftables does: a transaction goes to <c>nft -f -</c> on stdin and is committed
/// as one netlink batch (all or nothing); failures come back as <see cref="NftException"/> naming the line.
/// <para>nft runs in the network namespace of the thread that calls (a forked child inherits the forking
/// thread's namespaces, and .NET forks on the calling thread), or in <see cref="NftClientOptions.NetnsPath"/>,
/// entered on a dedicated thread. Thread-safe: each call is its own process.</para>
/// </summary>
public sealed partial class NftClient : INftClient
{
    private static readonly string[] s_families = ["ip", "ip6", "inet", "arp", "bridge", "netdev"];

    private readonly NftClientOptions _options;

    public NftClient(NftClientOptions? options = null) => _options = options ?? new NftClientOptions();

    public void Apply(string transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        Run(["-f", "-"], transaction, throwOnError: true);
    }

    /// <summary><c>nft -c -f -</c>: parses the transaction and lets the kernel validate it, then aborts it. Changes nothing.</summary>
    public void Check(string transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        Run(["-c", "-f", "-"], transaction, throwOnError: true);
    }

    public string? ListTable(string family, string name, bool stateless = false)
    {
        CheckFamily(family);
        CheckName(name, nameof(name));
        string[] args = stateless ? ["-s", "list", "table", family, name] : ["list", "table", family, name];
        var (stdout, error) = Run(args, null, throwOnError: false);
        if (error is null)
        {
            return stdout;
        }
        return error.IsNotFound ? null : throw error;
    }

    /// <summary><c>nft list counter FAMILY TABLE NAME</c>; null when the table or counter does not exist.</summary>
    public NftCounter? ListCounter(string family, string table, string name)
    {
        CheckFamily(family);
        CheckName(table, nameof(table));
        CheckName(name, nameof(name));
        var (stdout, error) = Run(["list", "counter", family, table, name], null, throwOnError: false);
        if (error is not null)
        {
            return error.IsNotFound ? null : throw error;
        }
        var m = CounterValues().Match(stdout);
        if (!m.Success)
        {
            throw new NftException($"nft list counter {family} {table} {name}: no 'packets N bytes M' in its output: {stdout.Trim()}");
        }
        return new NftCounter(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    private (string Stdout, NftException? Error) Run(string[] args, string? stdin, bool throwOnError)
    {
        var result = _options.NetnsPath is { } netns ? InNetns(netns, () => RunHere(args, stdin)) : RunHere(args, stdin);
        if (result.Error is not null && throwOnError)
        {
            throw result.Error;
        }
        return result;
    }

    private (string Stdout, NftException? Error) RunHere(string[] args, string? stdin)
    {
        string command = "nft " + string.Join(' ', args);
        var start = new ProcessStartInfo(_options.NftPath)
        {
            RedirectStandardInput = stdin is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // nft's messages embed strerror(); the parser and IsNotFound/IsAlreadyExists expect the C locale's.
        start.Environment["LC_ALL"] = "C";
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new NftException($"{command}: could not be started");
        }
        catch (Win32Exception e)
        {
            throw new NftException($"{command}: cannot run '{_options.NftPath}' (Debian package nftables): {e.Message}", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (stdin is not null)
            {
                try
                {
                    process.StandardInput.Write(stdin);
                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                    // nft exited before reading everything (it stops at a fatal error); its stderr says why.
                }
            }
            // A big transaction (a full sync of 10,000 Services is ~14 MB and takes nft 15 s or more on a
            // loaded 2-core machine) must not be killed half-way and retried from scratch forever: the
            // deadline grows with the input, 20 s per MB on top of the base timeout.
            var timeout = _options.Timeout + TimeSpan.FromSeconds(20.0 * (stdin?.Length ?? 0) / (1024 * 1024));
            if (!process.WaitForExit(timeout))
            {
                process.Kill();
                process.WaitForExit();
                throw new NftException($"{command}: no answer within {timeout.TotalSeconds:0} s; killed");
            }
            process.WaitForExit(); // drains the redirected streams
            string err = stderr.GetAwaiter().GetResult();
            string output = stdout.GetAwaiter().GetResult();
            if (process.ExitCode == 0)
            {
                return (output, null);
            }
            return (output, new NftException(command, process.ExitCode, NftErrorParser.Parse(err, stdin), err));
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a new thread that has entered the namespace. setns changes the calling
    /// thread for good, so it is never done on the caller's or a thread-pool thread.
    /// </summary>
    private static T InNetns<T>(string path, Func<T> action)
    {
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                int fd = Interop.Open(path, Interop.O_RDONLY | Interop.O_CLOEXEC);
                if (fd < 0)
                {
                    throw new NftException($"open netns '{path}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
                }
                try
                {
                    if (Interop.SetNs(fd, Interop.CLONE_NEWNET) != 0)
                    {
                        throw new NftException($"setns '{path}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
                    }
                }
                finally
                {
                    _ = Interop.Close(fd);
                }
                result = action();
            }
#pragma warning disable CA1031 // rethrown on the calling thread below
            catch (Exception e)
#pragma warning restore CA1031
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "trellis-nft-netns",
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    private static void CheckFamily(string family)
    {
        if (!s_families.Contains(family))
        {
            throw new ArgumentException($"'{family}' is not an nftables family ({string.Join(", ", s_families)})", nameof(family));
        }
    }

    private static void CheckName(string name, string paramName)
    {
        // nft identifiers: a letter then letters, digits, '_', '-', '.', '/' (trellis-node, kube-proxy).
        if (string.IsNullOrEmpty(name) || !Identifier().IsMatch(name))
        {
            throw new ArgumentException($"'{name}' is not an nftables identifier", paramName);
        }
    }

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9_./-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex Identifier();

    [GeneratedRegex(@"packets (\d+) bytes (\d+)", RegexOptions.CultureInvariant)]
    private static partial Regex CounterValues();
}
