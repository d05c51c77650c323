using System.Diagnostics;
using System.Globalization;
using Trellis.Store.Tests.Support;
using Xunit.Abstractions;

namespace Trellis.Store.Tests;

/// <summary>
/// The requirement, with real OS processes on one SQLite file: two processes writing
/// concurrently while the test process watches, and a watcher process killed with SIGKILL
/// mid-stream and restarted from the last revision it recorded.
/// </summary>
public sealed class MultiProcessTests(ITestOutputHelper output) : IDisposable
{
    private const int PerWriter = 300;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(45);

    private readonly TempDir _dir = new();
    private readonly List<Process> _processes = [];

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit();
            }
            process.Dispose();
        }
        _dir.Dispose();
    }

    [Fact]
    public async Task Two_writer_processes_a_watcher_and_a_killed_and_restarted_watcher_agree_on_one_gapless_history()
    {
        string db = _dir.File("store.db");
        // Each writer makes PerWriter creates and PerWriter successful increments; plus the counter's create.
        const long Total = 1 + (4 * PerWriter);
        await using var store = new SqliteClusterStore(db);
        await store.CreateAsync("/mp/counter", Bytes.Utf8("0 init"));

        using var watchCts = new CancellationTokenSource(s_timeout);
        var inProcess = CollectAsync(store, Total, watchCts.Token);
        string firstOut = _dir.File("watch-1.log");
        var firstWatcher = Start("watch", db, "0", Total.ToString(CultureInfo.InvariantCulture), firstOut);
        await WaitReadyAsync(firstWatcher);
        string perWriter = PerWriter.ToString(CultureInfo.InvariantCulture);
        var writers = new[] { Start("write", db, "1", perWriter, "1"), Start("write", db, "2", perWriter, "1") };

        // Kill the watcher once it has recorded some events, while the writers are (normally) still going.
        await WaitUntilAsync(() => ReadLines(firstOut).Count >= 100 || firstWatcher.HasExited, "the first watcher to record 100 events");
        if (firstWatcher.HasExited)
        {
            Assert.Fail($"the watcher exited early with {firstWatcher.ExitCode}: {await firstWatcher.StandardError.ReadToEndAsync()}");
        }
        bool writersWereRunning = writers.All(w => !w.HasExited);
        firstWatcher.Kill(); // SIGKILL: no chance to flush or clean up
        Assert.True(writersWereRunning, "the writers finished before the watcher could be killed mid-stream");
        await firstWatcher.WaitForExitAsync();
        var before = ReadLines(firstOut);
        long resumeFrom = before[^1].Revision;
        output.WriteLine($"killed the watcher after {before.Count} events (revision {resumeFrom}); writers still running: {writersWereRunning}");

        string secondOut = _dir.File("watch-2.log");
        var secondWatcher = Start("watch", db, resumeFrom.ToString(CultureInfo.InvariantCulture), Total.ToString(CultureInfo.InvariantCulture), secondOut);
        foreach (var process in writers.Append(secondWatcher))
        {
            await WaitForExitAsync(process);
            Assert.True(process.ExitCode == 0, $"{process.StartInfo.Arguments} exited with {process.ExitCode}");
        }
        var events = await inProcess;

        // The test process's own watch: every revision once, in order, no gaps.
        Assert.Equal(Enumerable.Range(1, (int)Total).Select(i => (long)i), events.Select(e => e.Revision));
        for (int writer = 1; writer <= 2; writer++)
        {
            var tags = Enumerable.Range(0, PerWriter).Select(i => $"w{writer}-{i:D4}").ToList();
            // Each create seen exactly once, in the writer's order …
            Assert.Equal(tags.Select(t => $"/mp/items/{t}"), events.Where(e => e.Item.Key.StartsWith($"/mp/items/w{writer}-", StringComparison.Ordinal)).Select(e => e.Item.Key));
            // … and each of its increments exactly once, in its order.
            var increments = events.Where(e => e.Item.Key == "/mp/counter").Select(e => e.Item.Text().Split(' ')[1]);
            Assert.Equal(tags, increments.Where(tag => tag.StartsWith($"w{writer}-", StringComparison.Ordinal)));
        }
        // Counter values go 1, 2, …, 2N: no lost update across processes.
        Assert.Equal(Enumerable.Range(0, (2 * PerWriter) + 1), events.Where(e => e.Item.Key == "/mp/counter").Select(e => int.Parse(e.Item.Text().Split(' ')[0], CultureInfo.InvariantCulture)));
        Assert.Equal($"{2 * PerWriter}", (await store.GetAsync("/mp/counter"))!.Text().Split(' ')[0]);

        // The killed watcher plus its restart saw exactly the same history: nothing missed, repeated or reordered.
        var resumed = before.Concat(ReadLines(secondOut)).ToList();
        Assert.Equal(events.Select(e => (e.Revision, e.Item.Key, e.Item.Text())), resumed.Select(l => (l.Revision, l.Key, l.Value)));
    }

    private static async Task<List<WatchEvent>> CollectAsync(SqliteClusterStore store, long until, CancellationToken ct)
    {
        var events = new List<WatchEvent>();
        await foreach (var e in store.WatchAsync("/mp/", 0, ct))
        {
            events.Add(e);
            if (e.Revision >= until)
            {
                break;
            }
        }
        return events;
    }

    private Process Start(params string[] args)
    {
        // The worker project is referenced by this one, so its dll (and runtimeconfig) sit next to ours.
        string worker = Path.Combine(AppContext.BaseDirectory, "Trellis.Store.Tests.Worker.dll");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(worker);
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the worker");
        _processes.Add(process);
        return process;
    }

    private static async Task WaitReadyAsync(Process process)
    {
        using var cts = new CancellationTokenSource(s_timeout);
        string? line = await process.StandardOutput.ReadLineAsync(cts.Token);
        if (line != "ready")
        {
            process.Kill();
            Assert.Fail($"worker said '{line}' instead of 'ready': {await process.StandardError.ReadToEndAsync(cts.Token)}");
        }
    }

    private async Task WaitForExitAsync(Process process)
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await process.WaitForExitAsync(cts.Token);
        string errors = await process.StandardError.ReadToEndAsync(cts.Token);
        if (errors.Length > 0)
        {
            output.WriteLine($"{process.StartInfo.ArgumentList[1]}: {errors}");
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + s_timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }
            await Task.Delay(5);
        }
    }

    /// <summary>Complete lines of a watcher's log ("REV TYPE KEY VALUE"); a torn last line is ignored.</summary>
    private static List<(long Revision, string Key, string Value)> ReadLines(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }
        string text;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        using (var reader = new StreamReader(stream))
        {
            text = reader.ReadToEnd();
        }
        var lines = text.Split('\n');
        return lines.Take(lines.Length - 1).Select(line =>
        {
            var parts = line.Split(' ', 4);
            return (long.Parse(parts[0], CultureInfo.InvariantCulture), parts[2], parts[3]);
        }).ToList();
    }
}
