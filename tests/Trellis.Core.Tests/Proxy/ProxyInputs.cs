using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Trellis.Core.Objects;
using Trellis.Core.Proxy;

namespace Trellis.Core.Tests.Proxy;

/// <summary>Builds Services, EndpointSlices and whole inputs for the proxy tests.</summary>
internal static class ProxyInputs
{
    public static ProxyInput Input(IEnumerable<ServiceView> services, IEnumerable<EndpointSliceView> slices, bool masqueradeAll = false) => new()
    {
        NodeName = "node-1",
        NodeIPs = [IPAddress.Parse("172.30.0.11")],
        ClusterCidrs = [IPNetwork.Parse("10.244.0.0/16")],
        ServiceCidrs = [IPNetwork.Parse("10.96.0.0/12")],
        MasqueradeAll = masqueradeAll,
        Services = services.ToList(),
        EndpointSlices = slices.ToList(),
    };

    public static ServiceView Service(string ns, string name, string clusterIP, string portsJson = "[{\"name\":\"http\",\"port\":80}]", string extraSpec = "", string status = "{}") =>
        new(JsonNode.Parse(
            "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"namespace\":\"" + ns + "\",\"name\":\"" + name + "\"},"
            + "\"spec\":{\"clusterIP\":\"" + clusterIP + "\",\"ports\":" + portsJson + extraSpec + "},\"status\":" + status + "}")!.AsObject());

    public static EndpointSliceView Slice(string ns, string service, string sliceName, string portsJson, params string[] endpoints) =>
        new(JsonNode.Parse($$"""
            {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","addressType":"IPv4",
             "metadata":{"namespace":"{{ns}}","name":"{{sliceName}}","labels":{"kubernetes.io/service-name":"{{service}}"} },
             "ports":{{portsJson}},"endpoints":[{{string.Join(",", endpoints)}}]}
            """)!.AsObject());

    public static string Endpoint(string ip, string node = "node-2", bool? ready = true, bool? serving = null, bool? terminating = null)
    {
        var conditions = new List<string>();
        if (ready is { } r)
        {
            conditions.Add($"\"ready\":{(r ? "true" : "false")}");
        }
        if (serving is { } s)
        {
            conditions.Add($"\"serving\":{(s ? "true" : "false")}");
        }
        if (terminating is { } t)
        {
            conditions.Add($"\"terminating\":{(t ? "true" : "false")}");
        }
        return "{\"addresses\":[\"" + ip + "\"],\"nodeName\":\"" + node + "\",\"conditions\":{" + string.Join(",", conditions) + "}}";
    }

    /// <summary>
    /// A cluster built from a stream of choices (CsCheck shrinks the stream towards zeros, i.e. towards fewer,
    /// plainer Services): up to 6 Services over a small pool of names, addresses and NodePorts, so that
    /// successive inputs overlap, change and collide.
    /// </summary>
    public static ProxyInput FromChoices(int[] choices)
    {
        int at = 0;
        int Next(int n) => at < choices.Length ? choices[at++] % n : 0;
        string S(int i) => i.ToString(CultureInfo.InvariantCulture);
        var services = new List<ServiceView>();
        var slices = new List<EndpointSliceView>();
        int count = Next(7);
        for (int i = 0; i < count; i++)
        {
            string name = "svc" + S(Next(5));
            string type = Next(4) switch { 0 or 1 => "ClusterIP", 2 => "NodePort", _ => "LoadBalancer" };
            var extra = new List<string> { $"\"type\":\"{type}\"" };
            if (Next(3) == 0)
            {
                extra.Add("\"internalTrafficPolicy\":\"Local\"");
            }
            if (Next(3) == 0)
            {
                extra.Add("\"externalTrafficPolicy\":\"Local\"");
            }
            if (Next(3) == 0)
            {
                extra.Add($"\"sessionAffinity\":\"ClientIP\",\"sessionAffinityConfig\":{{\"clientIP\":{{\"timeoutSeconds\":{S(60 * (1 + Next(3)))}}}}}");
            }
            if (Next(4) == 0)
            {
                extra.Add($"\"externalIPs\":[\"198.51.100.{S(Next(3))}\"]");
            }
            if (Next(4) == 0)
            {
                extra.Add("\"loadBalancerSourceRanges\":[\"203.0.113.0/24\"" + (Next(2) == 0 ? ",\"172.30.0.0/24\"" : "") + "]");
            }
            var ports = new List<string>();
            int portCount = 1 + Next(2);
            for (int p = 0; p < portCount; p++)
            {
                string proto = Next(4) switch { 0 => "UDP", 1 => "SCTP", _ => "TCP" };
                string nodePort = type == "ClusterIP" ? "" : $",\"nodePort\":{S(30000 + Next(4))}";
                ports.Add($"{{\"name\":\"p{S(p)}\",\"port\":{S(80 + Next(2))},\"protocol\":\"{proto}\"{nodePort}}}");
            }
            string status = type == "LoadBalancer" ? $"{{\"loadBalancer\":{{\"ingress\":[{{\"ip\":\"192.0.2.{S(Next(3))}\"}}]}}}}" : "{}";
            services.Add(Service("ns" + S(Next(2)), name, "10.96.0." + S(1 + Next(8)), "[" + string.Join(",", ports) + "]",
                "," + string.Join(",", extra), status));
            var svc = services[^1];
            int endpointCount = Next(4);
            var eps = new List<string>();
            for (int e = 0; e < endpointCount; e++)
            {
                bool? ready = Next(3) switch { 0 => false, 1 => null, _ => true };
                eps.Add(Endpoint("10.244." + S(1 + Next(2)) + "." + S(1 + Next(4)), "node-" + S(1 + Next(2)), ready,
                    Next(2) == 0 ? null : Next(2) == 0, Next(2) == 0 ? null : Next(2) == 0));
            }
            var slicePorts = svc.Ports.Select(p => $"{{\"name\":\"{p.Name}\",\"port\":{S(8000 + Next(2))},\"protocol\":\"{p.Protocol}\"}}");
            slices.Add(Slice(svc.Namespace!, svc.Name, svc.Name + "-" + S(i), "[" + string.Join(",", slicePorts) + "]", [.. eps]));
        }
        return Input(services, slices, masqueradeAll: Next(5) == 0);
    }
}
