using System.Text;
using System.Text.Json;
using Trellis.Core.Cni;

namespace Trellis.Cni;

/// <summary>
/// trellis-cni: a CNI 1.1.0 plugin that wires a pod into the node's bridge with built-in
/// host-local IPAM. The runtime execs it once per operation; everything it prints on stdout is
/// the spec's result or error object, diagnostics go to stderr.
/// </summary>
internal static class Program
{
    // A network config is a few KiB; refuse to buffer an unbounded stdin.
    private const int MaxStdinBytes = 1 << 20;

    private static int Main(string[] args)
    {
        // Runtimes exec CNI plugins without arguments; the only argument form is our own reaper.
        if (args.Length > 0 && args[0] == LinkReaper.Verb)
        {
            return LinkReaper.Run(args);
        }
        using var stdout = Console.OpenStandardOutput();
        string version = CniVersions.Latest;
        try
        {
            var env = CniEnvironment.Parse(Environment.GetEnvironmentVariable);
            if (env.Command == CniCommand.Version)
            {
                // VERSION needs no config, but the spec lets the runtime send one; nothing to validate.
                using var w = new Utf8JsonWriter(stdout);
                CniVersions.WriteVersionResponse(w);
                w.Flush();
                return 0;
            }
            Trace.Mark("env parsed");
            byte[] stdin = ReadStdin();
            Trace.Mark("stdin read");
            var conf = NetConf.Parse(stdin, env.Command);
            Trace.Mark("config parsed");
            version = conf.CniVersion;
            var plugin = new BridgePlugin(conf, env);
            CniResult? result = plugin.Run();
            if (result is not null)
            {
                using var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true });
                result.WriteJson(w, conf.CniVersion);
                w.Flush();
            }
            Trace.Mark("done");
            return 0;
        }
        catch (CniException e)
        {
            return Fail(stdout, e, version);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail(stdout, new CniException(CniErrorCode.IoFailure, e.Message), version);
        }
    }

    private static int Fail(Stream stdout, CniException e, string version)
    {
        using var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true });
        e.WriteErrorJson(w, version);
        w.Flush();
        Console.Error.WriteLine($"trellis-cni: {e.Message}{(e.Details is { Length: > 0 } d ? ": " + d : "")}");
        return 1;
    }

    private static byte[] ReadStdin()
    {
        using var stdin = Console.OpenStandardInput();
        using var ms = new MemoryStream();
        byte[] buf = new byte[16 * 1024];
        int n;
        while ((n = stdin.Read(buf, 0, buf.Length)) > 0)
        {
            ms.Write(buf, 0, n);
            if (ms.Length > MaxStdinBytes)
            {
                throw new CniException(CniErrorCode.DecodeFailure, $"stdin: network configuration larger than {MaxStdinBytes} bytes");
            }
        }
        return ms.ToArray();
    }
}
