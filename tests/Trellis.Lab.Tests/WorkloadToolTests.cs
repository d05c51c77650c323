using System.Diagnostics;
using Trellis.Cni.Tests.Infrastructure;

namespace Trellis.Lab.Tests;

/// <summary>serve-hostname and connect, with the exit codes DESIGN.md §6 pins down, in throwaway namespaces.</summary>
[Collection("lab")]
public sealed class WorkloadToolTests : IDisposable
{
    private readonly string _a = "trl-wl-" + Guid.NewGuid().ToString("N")[..6];
    private readonly string _b = "trl-wl-" + Guid.NewGuid().ToString("N")[..6];

    public WorkloadToolTests()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return;
        }
        // Two namespaces on a veth: A is 10.9.0.1, B is 10.9.0.2; B's end can be left without an address.
        Sh.Must("ip", "netns", "add", _a);
        Sh.Must("ip", "netns", "add", _b);
        Sh.Must("ip", "-n", _a, "link", "add", "wl0", "type", "veth", "peer", "name", "wl0", "netns", _b);
        Sh.Must("ip", "-n", _a, "addr", "add", "10.9.0.1/24", "dev", "wl0");
        Sh.Must("ip", "-n", _a, "link", "set", "wl0", "up");
        Sh.Must("ip", "-n", _b, "link", "set", "wl0", "up");
        Sh.Must("ip", "-n", _a, "link", "set", "lo", "up");
        Sh.Must("ip", "-n", _b, "link", "set", "lo", "up");
    }

    [LabFact]
    public void Serve_hostname_answers_tcp_and_udp_and_connect_reports_answered_refused_and_timed_out()
    {
        using var server = Start(_a, "serve-hostname", "--name", "pod-x", "--port", "8080/tcp", "8080/udp", "9000/sctp");
        // TCP: the name and a newline, then close.
        var tcp = Connect(_a, "127.0.0.1:8080", "tcp");
        Assert.Equal((0, "pod-x\n"), (tcp.Exit, tcp.Out));
        Assert.Equal((0, "pod-x"), (Connect(_a, "10.9.0.1:8080", "udp").Exit, Connect(_a, "10.9.0.1:8080", "udp").Out.Trim()));
        // Refused: RST for TCP, ICMP port unreachable for UDP.
        Assert.Equal(1, Connect(_a, "127.0.0.1:8081", "tcp").Exit);
        Assert.Equal(1, Connect(_a, "127.0.0.1:8081", "udp").Exit);
        // Nobody answers ARP for 10.9.0.2: the SYN goes nowhere and the 1 s timeout fires first.
        var sw = Stopwatch.StartNew();
        var silent = Connect(_a, "10.9.0.2:80", "tcp");
        Assert.Equal(3, silent.Exit);
        Assert.InRange(sw.Elapsed.TotalSeconds, 0.9, 2.9);
        Assert.Equal("", silent.Out);
    }

    [LabFact]
    public void Bad_targets_and_durations_are_usage_errors()
    {
        Assert.Equal(2, Connect(_a, "no-port-here", "tcp").Exit);
        Assert.Equal(2, Sh.Run(LabDriver.Trellis, "connect", "127.0.0.1:80", "--timeout", "soon").Exit);
        Assert.Equal(2, Sh.Run(LabDriver.Trellis, "connect", "127.0.0.1:80", "--protocol", "icmp").Exit);
        Assert.Equal(2, Sh.Run(LabDriver.Trellis, "serve-hostname", "--name", "x", "--port", "70000").Exit);
    }

    private static KilledOnDispose Start(string netns, params string[] args)
    {
        var p = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", netns, LabDriver.Trellis, .. args]) { RedirectStandardError = true })!;
        string? line = p.StandardError.ReadLine();
        while (line is not null && !line.Contains("serving", StringComparison.Ordinal))
        {
            line = p.StandardError.ReadLine(); // e.g. the SCTP skip notice comes first
        }
        Assert.NotNull(line);
        return new KilledOnDispose(p);
    }

    private static (int Exit, string Out, string Err) Connect(string netns, string target, string proto) =>
        Sh.Run("ip", "netns", "exec", netns, LabDriver.Trellis, "connect", target, "--protocol", proto, "--timeout", "1s");

    public void Dispose()
    {
        Sh.Run("ip", "netns", "del", _a);
        Sh.Run("ip", "netns", "del", _b);
    }
}
