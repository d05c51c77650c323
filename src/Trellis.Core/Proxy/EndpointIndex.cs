using System.Net;
using System.Net.Sockets;
using Trellis.Core.Objects;

namespace Trellis.Core.Proxy;

/// <summary>
/// The endpoints of each service port, from the EndpointSlices labelled with its Service's name
/// (kube-proxy's EndpointSliceCache): IPv4 slices only, slice ports matched by name and protocol, the
/// first address of each endpoint, one endpoint per IP:port across slices.
/// </summary>
internal sealed class EndpointIndex
{
    private readonly Dictionary<(string Namespace, string Service), List<EndpointSliceView>> _slices = [];
    private readonly string _nodeName;
    private readonly List<string> _problems;
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    public EndpointIndex(ProxyInput input, List<string> problems)
        : this(input.NodeName, input.EndpointSlices, problems)
    {
    }

    public EndpointIndex(string nodeName, IEnumerable<EndpointSliceView> slices, List<string> problems)
    {
        _nodeName = nodeName;
        _problems = problems;
        foreach (var slice in slices)
        {
            if (slice.ServiceName is not { Length: > 0 } svc || slice.AddressType != "IPv4")
            {
                continue;
            }
            var key = (slice.Namespace ?? "default", svc);
            if (!_slices.TryGetValue(key, out var list))
            {
                _slices[key] = list = [];
            }
            list.Add(slice);
        }
        foreach (var list in _slices.Values)
        {
            list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        }
    }

    public IReadOnlyList<ProxyEndpoint> For(ServicePortSpec sp)
    {
        if (!_slices.TryGetValue((sp.Namespace, sp.Name), out var slices))
        {
            return [];
        }
        var byAddress = new Dictionary<(IPAddress, int), ProxyEndpoint>();
        foreach (var slice in slices)
        {
            int? port = null;
            var ports = slice.Ports;
            for (int i = 0; i < ports.Count; i++)
            {
                if (ports[i].Name == sp.PortName && ports[i].Protocol == sp.Protocol)
                {
                    if (ports[i].Port is int p and >= 1 and <= 65535)
                    {
                        port = p;
                    }
                    else
                    {
                        Report($"EndpointSlice {slice}: ports[{i}].port: {(ports[i].Port is int bad ? ProxyCompiler.I(bad) : "null")} is not in 1..65535");
                    }
                    break;
                }
            }
            if (port is not int endpointPort)
            {
                continue;
            }
            var endpoints = slice.Endpoints;
            for (int i = 0; i < endpoints.Count; i++)
            {
                var e = endpoints[i];
                var addresses = e.Addresses;
                if (addresses.Count == 0)
                {
                    continue;
                }
                // kube-proxy uses only the first address: the others are the same pod by definition.
                if (!IPAddress.TryParse(addresses[0], out var ip) || ip.AddressFamily != AddressFamily.InterNetwork
                    || !ServicePortReader.IpSyntaxIsCanonical(addresses[0], ip))
                {
                    Report($"EndpointSlice {slice}: endpoints[{i}].addresses[0]: \"{addresses[0]}\" is not an IPv4 address");
                    continue;
                }
                bool ready = e.Ready ?? true;
                var ep = new ProxyEndpoint(ip, endpointPort, ready, e.Serving ?? ready, e.Terminating ?? false, e.NodeName,
                    e.NodeName is { Length: > 0 } n && n == _nodeName);
                // The same IP:port in two slices (a slice mid-update): prefer the one that is ready.
                if (!byAddress.TryGetValue((ip, endpointPort), out var existing) || (!existing.Ready && ep.Ready))
                {
                    byAddress[(ip, endpointPort)] = ep;
                }
            }
        }
        var result = byAddress.Values.ToList();
        result.Sort(static (a, b) =>
        {
            int c = CompareIp(a.Ip, b.Ip);
            return c != 0 ? c : a.Port.CompareTo(b.Port);
        });
        return result;
    }

    internal static int CompareIp(IPAddress a, IPAddress b)
    {
        Span<byte> x = stackalloc byte[16];
        Span<byte> y = stackalloc byte[16];
        a.TryWriteBytes(x, out int nx);
        b.TryWriteBytes(y, out int ny);
        return x[..nx].SequenceCompareTo(y[..ny]);
    }

    private void Report(string problem)
    {
        // A slice is consulted once per service port; say each thing once.
        if (_reported.Add(problem))
        {
            _problems.Add(problem);
        }
    }
}
