using Trellis.Store;

namespace Trellis.DnsServer;

internal static class Program
{
    private const long SqliteSoftHeapLimit = 512 * 1024;

    private static async Task<int> Main(string[] args)
    {
        if (args is ["--help"] or ["-h"])
        {
            Console.Out.WriteLine(DnsServerOptions.Usage);
            return 0;
        }
        DnsServerOptions options;
        try
        {
            options = DnsServerOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"trellis-dns: {e.Message}\n\n{DnsServerOptions.Usage}").ConfigureAwait(false);
            return 2;
        }
        IClusterStore store;
        try
        {
            store = ClusterStore.Open(options.StoreUrl);
            if (options.StoreUrl.StartsWith("sqlite:", StringComparison.Ordinal))
            {
                // SQLite's default page cache (2 MB per connection) holds every page the initial list read, for
                // the life of the process, though the server reads the store again only on change: a process-wide
                // soft limit makes SQLite recycle those pages instead (the zone is served from memory anyway).
                SQLitePCL.Batteries_V2.Init();
                SQLitePCL.raw.sqlite3_soft_heap_limit64(SqliteSoftHeapLimit);
            }
        }
        catch (Exception e) when (e is ArgumentException or StoreException)
        {
            await Console.Error.WriteLineAsync($"trellis-dns: --store: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            stop.Cancel();
        });
        var log = TextWriter.Synchronized(Console.Error);
        await using (store.ConfigureAwait(false))
        {
            DnsServer server;
            try
            {
                server = DnsServer.Start(options, store, log);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                await Console.Error.WriteLineAsync($"trellis-dns: --listen {options.Listen}: {e.Message}").ConfigureAwait(false);
                return 1;
            }
            await using (server.ConfigureAwait(false))
            {
                log.WriteLine($"trellis-dns: serving {options.Zone.Domain} on udp+tcp {server.UdpEndPoint}; upstreams: {(options.Upstreams.Count == 0 ? "none" : string.Join(",", options.Upstreams))}");
                _ = server.Watcher.Ready.ContinueWith(_ => log.WriteLine($"trellis-dns: ready (revision {server.Zone.Revision}, {server.Zone.ServiceCount} services)"), TaskScheduler.Default);
                try
                {
                    await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }
        return 0;
    }
}
