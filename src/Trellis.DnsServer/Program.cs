using Trellis.Store;

namespace Trellis.DnsServer;

internal static class Program
{
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
