using System.CommandLine;
using Trellis.Cli.Workload;

namespace Trellis.Cli;

/// <summary>
/// The `trellis` CLI. Commands are composed here; their logic lives in the folders beside this
/// file. Exit codes (DESIGN.md §6): 0 ok, 1 failure, 2 usage error.
/// </summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Trellis: the Kubernetes network model on the real Linux kernel");
        root.Subcommands.Add(ServeHostnameCommand());
        root.Subcommands.Add(ConnectCommand());
        root.Subcommands.Add(DemoCommand());
        root.Subcommands.Add(Commands.LabCommands.Create());
        root.Subcommands.Add(Commands.ObjectCommands.Apply());
        root.Subcommands.Add(Commands.ObjectCommands.Delete());
        root.Subcommands.Add(Commands.ObjectCommands.Get());
        root.Subcommands.Add(Commands.ObjectCommands.Exec());
        root.Subcommands.Add(Commands.ObjectCommands.ProbeCommand());
        root.Subcommands.Add(Commands.PolicyCommands.Create());
        root.Subcommands.Add(Commands.BgpCommands.Create());
        root.Options.Add(Commands.ObjectCommands.StoreOption);
        root.Options.Add(Commands.ObjectCommands.LabOption);

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                await Console.Error.WriteLineAsync($"trellis: {e.Message}").ConfigureAwait(false);
            }
            return 2;
        }
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }).ConfigureAwait(false);
        }
        catch (UsageException e)
        {
            await Console.Error.WriteLineAsync($"trellis: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        catch (ArgumentException e) when (e.ParamName == "url")
        {
            await Console.Error.WriteLineAsync($"trellis: --store: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        catch (Exception e) when (e is Trellis.Store.StoreException or IOException or TimeoutException or Trellis.Netlink.NetlinkException)
        {
            await Console.Error.WriteLineAsync($"trellis: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    private static Command ServeHostnameCommand()
    {
        var name = new Option<string>("--name") { Description = "the name to answer with (the pod name)", Required = true };
        var port = new Option<string[]>("--port") { Description = "PORT[/tcp|/udp|/sctp], repeatable", Required = true, AllowMultipleArgumentsPerToken = true };
        var reportClient = new Option<bool>("--report-client") { Description = "answer with a second line: the client address and port this server saw (agnhost netexec's /clientip)" };
        var cmd = new Command("serve-hostname", "answer every TCP connection and UDP datagram with a name (agnhost serve-hostname)") { name, port, reportClient };
        cmd.SetAction((pr, ct) =>
        {
            var ports = pr.GetValue(port)!.Select(ServePort.Parse).ToList();
            return ServeHostname.RunAsync(pr.GetValue(name)!, ports, pr.GetValue(reportClient), ct);
        });
        return cmd;
    }

    private static Command ConnectCommand()
    {
        var target = new Argument<string>("HOST:PORT");
        var protocol = new Option<string>("--protocol") { Description = "tcp or udp", DefaultValueFactory = _ => "tcp" };
        var timeout = new Option<string>("--timeout") { Description = "e.g. 1s, 500ms", DefaultValueFactory = _ => "1s" };
        var sourcePort = new Option<int>("--source-port") { Description = "bind this local port first (a UDP client that keeps its conntrack entry, like a resolver)" };
        var cmd = new Command("connect", "one fresh connection; prints the answer. Exit 0 answered, 1 refused/unreachable, 3 timed out") { target, protocol, timeout, sourcePort };
        cmd.SetAction((pr, ct) => Connect.RunAsync(pr.GetValue(target)!, pr.GetValue(protocol)!.ToLowerInvariant(),
            Durations.Parse(pr.GetValue(timeout)!, "--timeout"), Console.Out, Console.Error, pr.GetValue(sourcePort)));
        return cmd;
    }

    private static Command DemoCommand()
    {
        var cmd = new Command("demo", "wire two pods into a throwaway node with trellis-cni, show them talking, and clean up");
        cmd.SetAction((pr, ct) => Demo.CniDemo.RunAsync(Console.Out, ct));
        return cmd;
    }
}

internal static class Durations
{
    public static TimeSpan Parse(string text, string flag)
    {
        string t = text.Trim();
        double factor = 1;
        if (t.EndsWith("ms", StringComparison.Ordinal)) { factor = 0.001; t = t[..^2]; }
        else if (t.EndsWith('s')) { t = t[..^1]; }
        else if (t.EndsWith('m')) { factor = 60; t = t[..^1]; }
        if (!double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) || v <= 0 || double.IsInfinity(v))
        {
            throw new UsageException($"{flag}: '{text}' is not a duration like 1s or 500ms");
        }
        return TimeSpan.FromSeconds(v * factor);
    }
}
