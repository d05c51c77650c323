namespace Trellis.Core.Objects;

/// <summary>
/// The syntax checks of k8s.io/apimachinery/pkg/util/validation, with its messages word for word: each returns
/// the list of problems (empty when valid).
/// </summary>
public static class NameRules
{
    public const int DnsLabelMaxLength = 63;
    public const int DnsSubdomainMaxLength = 253;
    public const int LabelValueMaxLength = 63;
    public const int QualifiedNameMaxLength = 63;
    public const int PortNameMaxLength = 15;

    private const string Dns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    private const string Dns1123SubdomainFmt = Dns1123LabelFmt + "(\\." + Dns1123LabelFmt + ")*";
    private const string Dns1035LabelFmt = "[a-z]([-a-z0-9]*[a-z0-9])?";
    private const string QualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
    private const string LabelValueFmt = "(" + QualifiedNameFmt + ")?";

    public static IReadOnlyList<string> IsDns1123Label(string value)
    {
        var errs = new List<string>();
        if (value.Length > DnsLabelMaxLength)
        {
            errs.Add(MaxLen(DnsLabelMaxLength));
        }
        if (!IsLabel(value, letterFirst: false))
        {
            errs.Add(RegexError("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character", Dns1123LabelFmt, "my-name", "123-abc"));
        }
        return errs;
    }

    public static IReadOnlyList<string> IsDns1035Label(string value)
    {
        var errs = new List<string>();
        if (value.Length > DnsLabelMaxLength)
        {
            errs.Add(MaxLen(DnsLabelMaxLength));
        }
        if (!IsLabel(value, letterFirst: true))
        {
            errs.Add(RegexError("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character", Dns1035LabelFmt, "my-name", "abc-123"));
        }
        return errs;
    }

    public static IReadOnlyList<string> IsDns1123Subdomain(string value)
    {
        var errs = new List<string>();
        if (value.Length > DnsSubdomainMaxLength)
        {
            errs.Add(MaxLen(DnsSubdomainMaxLength));
        }
        if (!IsSubdomain(value))
        {
            errs.Add(RegexError("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", Dns1123SubdomainFmt, "example.com"));
        }
        return errs;
    }

    /// <summary>A label or annotation key: an optional DNS-subdomain prefix and '/', then a name of ≤63 characters.</summary>
    public static IReadOnlyList<string> IsQualifiedName(string value)
    {
        var errs = new List<string>();
        var parts = value.Split('/');
        string name;
        switch (parts.Length)
        {
            case 1:
                name = parts[0];
                break;
            case 2:
                string prefix = parts[0];
                name = parts[1];
                if (prefix.Length == 0)
                {
                    errs.Add("prefix part must be non-empty");
                }
                else
                {
                    foreach (var msg in IsDns1123Subdomain(prefix))
                    {
                        errs.Add("prefix part " + msg);
                    }
                }
                break;
            default:
                return [RegexError("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", QualifiedNameFmt, "MyName", "my.name", "123-abc") + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"];
        }
        if (name.Length == 0)
        {
            errs.Add("name part must be non-empty");
        }
        else if (name.Length > QualifiedNameMaxLength)
        {
            errs.Add("name part " + MaxLen(QualifiedNameMaxLength));
        }
        if (!IsQualifiedNamePart(name))
        {
            errs.Add("name part " + RegexError("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", QualifiedNameFmt, "MyName", "my.name", "123-abc"));
        }
        return errs;
    }

    public static IReadOnlyList<string> IsValidLabelValue(string value)
    {
        var errs = new List<string>();
        if (value.Length > LabelValueMaxLength)
        {
            errs.Add(MaxLen(LabelValueMaxLength));
        }
        if (value.Length > 0 && !IsQualifiedNamePart(value))
        {
            errs.Add(RegexError("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", LabelValueFmt, "MyValue", "my_value", "12345"));
        }
        return errs;
    }

    /// <summary>IANA_SVC_NAME (RFC 6335): what a container port name or a named targetPort must be.</summary>
    public static IReadOnlyList<string> IsValidPortName(string port)
    {
        var errs = new List<string>();
        if (port.Length > PortNameMaxLength)
        {
            errs.Add(MaxLen(PortNameMaxLength));
        }
        if (port.Length == 0 || port.AsSpan().ContainsAnyExcept(s_portNameChars))
        {
            errs.Add("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
        }
        if (!port.AsSpan().ContainsAnyInRange('a', 'z'))
        {
            errs.Add("must contain at least one letter (a-z)");
        }
        if (port.Contains("--", StringComparison.Ordinal))
        {
            errs.Add("must not contain consecutive hyphens");
        }
        if (port.Length > 0 && (port[0] == '-' || port[^1] == '-'))
        {
            errs.Add("must not begin or end with a hyphen");
        }
        return errs;
    }

    public static IReadOnlyList<string> IsValidPortNum(long port) =>
        port is >= 1 and <= 65535 ? [] : ["must be between 1 and 65535, inclusive"];

    /// <summary>An FQDN: a DNS-1123 subdomain (a trailing dot allowed) of at least two labels.</summary>
    public static IReadOnlyList<string> IsFullyQualifiedDomainName(string name)
    {
        var errs = new List<string>();
        string s = name.EndsWith('.') ? name[..^1] : name;
        errs.AddRange(IsDns1123Subdomain(s));
        if (errs.Count == 0 && !s.Contains('.', StringComparison.Ordinal))
        {
            errs.Add("should be a domain with at least two segments separated by dots");
        }
        return errs;
    }

    private static bool IsLabel(string s, bool letterFirst)
    {
        if (s.Length == 0 || !IsLowerAlnum(s[0]) || !IsLowerAlnum(s[^1]))
        {
            return false;
        }
        if (letterFirst && !char.IsAsciiLetterLower(s[0]))
        {
            return false;
        }
        foreach (char c in s)
        {
            if (!IsLowerAlnum(c) && c != '-')
            {
                return false;
            }
        }
        return true;
    }

    private static bool IsSubdomain(string s)
    {
        if (s.Length == 0)
        {
            return false;
        }
        foreach (var label in s.Split('.'))
        {
            if (!IsLabel(label, letterFirst: false))
            {
                return false;
            }
        }
        return true;
    }

    private static bool IsQualifiedNamePart(string s)
    {
        if (s.Length == 0 || !char.IsAsciiLetterOrDigit(s[0]) || !char.IsAsciiLetterOrDigit(s[^1]))
        {
            return false;
        }
        foreach (char c in s)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.'))
            {
                return false;
            }
        }
        return true;
    }

    private static bool IsLowerAlnum(char c) => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c);

    private static string MaxLen(int n) => $"must be no more than {n} characters";

    // apimachinery's RegexError: the message, the examples and the regex used.
    private static string RegexError(string msg, string fmt, params string[] examples)
    {
        var s = new System.Text.StringBuilder(msg).Append(" (e.g. ");
        for (int i = 0; i < examples.Length; i++)
        {
            if (i > 0)
            {
                s.Append(" or ");
            }
            s.Append('\'').Append(examples[i]).Append("', ");
        }
        return s.Append("regex used for validation is '").Append(fmt).Append("')").ToString();
    }

    private static readonly System.Buffers.SearchValues<char> s_portNameChars = System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789-");
}
