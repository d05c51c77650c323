using System.Globalization;

namespace Trellis.Store;

/// <summary>
/// One etcd client endpoint: where HTTP requests for it are addressed and, for a unix socket,
/// the socket's path. <see cref="Display"/> is how errors name it.
/// </summary>
internal sealed record EtcdEndpoint(string Display, Uri BaseUri, string? UnixPath)
{
    public const string TcpScheme = "etcd://";
    public const string UnixScheme = "etcd+unix://";

    /// <summary>etcd's IANA client port, used when a URL names a host without one.</summary>
    public const int DefaultPort = 2379;

    /// <summary>
    /// <c>etcd://HOST[:PORT][,HOST[:PORT]…]</c> (IPv6 literals in brackets) or
    /// <c>etcd+unix:///abs/path</c>. Order matters: clients prefer the first endpoint that answers.
    /// </summary>
    /// <exception cref="ArgumentException">The URL is malformed; the message names it and the part at fault.</exception>
    public static IReadOnlyList<EtcdEndpoint> ParseUrl(string url, string paramName = "url")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(url, paramName);
        if (url.StartsWith(UnixScheme, StringComparison.OrdinalIgnoreCase))
        {
            return [ParseUnix(url, url[UnixScheme.Length..], paramName)];
        }
        if (!url.StartsWith(TcpScheme, StringComparison.OrdinalIgnoreCase))
        {
            throw Bad(url, $"expected {TcpScheme}HOST:PORT[,HOST:PORT…] or {UnixScheme}/path/to/socket", paramName);
        }
        string rest = url[TcpScheme.Length..];
        if (rest.Length == 0)
        {
            throw Bad(url, $"no endpoint; expected {TcpScheme}HOST:PORT[,HOST:PORT…]", paramName);
        }
        if (rest.IndexOfAny(['/', '?', '#', '@']) is int at and >= 0)
        {
            throw Bad(url, $"unexpected '{rest[at]}': an etcd URL lists HOST:PORT endpoints only (no path, query, fragment or user)", paramName);
        }
        var endpoints = new List<EtcdEndpoint>();
        foreach (string part in rest.Split(','))
        {
            endpoints.Add(ParseHostPort(url, part, paramName));
        }
        return endpoints;
    }

    private static EtcdEndpoint ParseUnix(string url, string path, string paramName)
    {
        if (path.Length == 0 || path[0] != '/')
        {
            throw Bad(url, $"the socket path must be absolute, as in {UnixScheme}/run/etcd.sock (three slashes)", paramName);
        }
        if (path.IndexOfAny(['?', '#', ',']) >= 0)
        {
            throw Bad(url, "a unix socket URL names exactly one socket path, without query or fragment", paramName);
        }
        if (path.EndsWith('/'))
        {
            throw Bad(url, "the path must name a socket, not a directory", paramName);
        }
        // The host is a placeholder: every request goes to the socket, whatever the URI says.
        return new EtcdEndpoint("unix:" + path, new Uri("http://localhost/"), path);
    }

    private static EtcdEndpoint ParseHostPort(string url, string part, string paramName)
    {
        if (part.Length == 0)
        {
            throw Bad(url, "empty endpoint (a stray ',')", paramName);
        }
        string host;
        string? port = null;
        bool ipv6 = false;
        if (part[0] == '[')
        {
            int close = part.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw Bad(url, $"endpoint '{part}': unterminated '[' of an IPv6 address", paramName);
            }
            host = part[1..close];
            ipv6 = true;
            string after = part[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':')
                {
                    throw Bad(url, $"endpoint '{part}': expected ':PORT' after ']'", paramName);
                }
                port = after[1..];
            }
            if (!System.Net.IPAddress.TryParse(host, out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                throw Bad(url, $"endpoint '{part}': '{host}' is not an IPv6 address", paramName);
            }
        }
        else
        {
            int colon = part.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0 && part.IndexOf(':', colon + 1) >= 0)
            {
                throw Bad(url, $"endpoint '{part}': an IPv6 address must be in brackets, as in [fd00::1]:2379", paramName);
            }
            host = colon < 0 ? part : part[..colon];
            port = colon < 0 ? null : part[(colon + 1)..];
            if (host.Length == 0 || Uri.CheckHostName(host) is UriHostNameType.Unknown or UriHostNameType.IPv6)
            {
                throw Bad(url, $"endpoint '{part}': '{host}' is not a host name or IPv4 address", paramName);
            }
        }
        int portNumber = DefaultPort;
        if (port is not null
            && (port.Length is 0 or > 5 || !port.All(char.IsAsciiDigit)
                || !int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out portNumber) || portNumber is < 1 or > 65535))
        {
            throw Bad(url, $"endpoint '{part}': the port must be a number from 1 to 65535", paramName);
        }
        string authority = (ipv6 ? $"[{host}]" : host) + ":" + portNumber.ToString(CultureInfo.InvariantCulture);
        return new EtcdEndpoint(authority, new Uri($"http://{authority}/"), UnixPath: null);
    }

    private static ArgumentException Bad(string url, string detail, string paramName) => new($"store URL '{url}': {detail}", paramName);
}
