using System.Globalization;
using System.Text;
using Trellis.Store;

// Usage:
//   write PATH WRITER COUNT PAUSE_MS COUNT times: create /mp/items/wWRITER-I, then compare-and-swap
//                                    increment /mp/counter (value "N wWRITER-I"), retrying on conflict;
//                                    pausing PAUSE_MS between rounds, as a real client would, so that
//                                    the writers are still running when the test kills a watcher.
//   watch PATH FROM UNTIL OUT        watch /mp/ from revision FROM, append one line per event to OUT
//                                    ("REV TYPE KEY VALUE", flushed per line), exit after revision UNTIL.
// Prints "ready" once the store is open, so the test knows the process is up.
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: write PATH WRITER COUNT PAUSE_MS | watch PATH FROM UNTIL OUT");
    return 2;
}
var inv = CultureInfo.InvariantCulture;
switch (args)
{
    case ["write", var path, var writer, var countText, var pauseText]:
    {
        int count = int.Parse(countText, inv);
        int pauseMs = int.Parse(pauseText, inv);
        await using var store = new SqliteClusterStore(path);
        Console.WriteLine("ready");
        for (int i = 0; i < count; i++)
        {
            string tag = $"w{writer}-{i.ToString("D4", inv)}";
            await store.CreateAsync($"/mp/items/{tag}", Encoding.UTF8.GetBytes(tag));
            var current = await store.GetAsync("/mp/counter") ?? throw new InvalidOperationException("/mp/counter missing");
            while (true)
            {
                long n = long.Parse(Encoding.UTF8.GetString(current.Value).Split(' ')[0], inv);
                try
                {
                    await store.UpdateAsync("/mp/counter", Encoding.UTF8.GetBytes($"{n + 1} {tag}"), current.ModRevision);
                    break;
                }
                catch (StoreConflictException ex)
                {
                    current = ex.Current!;
                }
            }
            if (pauseMs > 0)
            {
                await Task.Delay(pauseMs);
            }
        }
        return 0;
    }
    case ["watch", var path, var fromText, var untilText, var outPath]:
    {
        long from = long.Parse(fromText, inv);
        long until = long.Parse(untilText, inv);
        await using var store = new SqliteClusterStore(path);
        await using var output = new FileStream(outPath, FileMode.Append, FileAccess.Write, FileShare.Read);
        Console.WriteLine("ready");
        if (from >= until)
        {
            return 0;
        }
        await foreach (var e in store.WatchAsync("/mp/", from))
        {
            // One write call per line: a SIGKILL leaves whole lines (plus at most one partial, which the test ignores).
            var line = Encoding.UTF8.GetBytes($"{e.Revision} {e.Type} {e.Item.Key} {Encoding.UTF8.GetString(e.Item.Value)}\n");
            output.Write(line);
            output.Flush();
            if (e.Revision >= until)
            {
                break;
            }
        }
        return 0;
    }
    default:
        Console.Error.WriteLine($"bad arguments: {string.Join(' ', args)}");
        return 2;
}
