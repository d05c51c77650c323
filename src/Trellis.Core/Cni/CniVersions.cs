using System.Globalization;
using System.Text.Json;

namespace Trellis.Core.Cni;

/// <summary>A CNI spec version as libcni's <c>version.ParseVersion</c> reads it: "1", "1.1" and "1.1.0" are all valid.</summary>
public readonly record struct CniVersion(int Major, int Minor, int Patch) : IComparable<CniVersion>
{
    public int CompareTo(CniVersion other) =>
        Major != other.Major ? Major.CompareTo(other.Major)
        : Minor != other.Minor ? Minor.CompareTo(other.Minor)
        : Patch.CompareTo(other.Patch);

    public static bool operator <(CniVersion a, CniVersion b) => a.CompareTo(b) < 0;
    public static bool operator >(CniVersion a, CniVersion b) => a.CompareTo(b) > 0;
    public static bool operator <=(CniVersion a, CniVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >=(CniVersion a, CniVersion b) => a.CompareTo(b) >= 0;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}.{Patch}");

    public static bool TryParse(string? text, out CniVersion version)
    {
        version = default;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        var parts = text.Split('.');
        if (parts.Length > 3)
        {
            return false;
        }
        Span<int> n = stackalloc int[3];
        for (int i = 0; i < parts.Length; i++)
        {
            // Digits only: int.Parse would also take "+1" or " 1".
            if (parts[i].Length is 0 or > 9 || !parts[i].All(char.IsAsciiDigit))
            {
                return false;
            }
            n[i] = int.Parse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture);
        }
        version = new CniVersion(n[0], n[1], n[2]);
        return true;
    }
}

/// <summary>Which spec versions Trellis speaks and which command each version allows.</summary>
public static class CniVersions
{
    public const string Latest = "1.1.0";

    // 0.1.0/0.2.0 are left out: their result format (ip4/ip6 objects) predates chaining and no
    // runtime Trellis targets still sends them.
    private static readonly string[] s_supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    public static IReadOnlyList<string> Supported => s_supported;

    /// <summary>Exact string membership, like libcni's version reconciler ("1.1" is not "1.1.0").</summary>
    public static bool IsSupported(string? version) => version is not null && Array.IndexOf(s_supported, version) >= 0;

    /// <summary>Semantic comparison; both must parse (else error 6, as libcni's GreaterThanOrEqualTo reports).</summary>
    public static int Compare(string a, string b) => Parse(a).CompareTo(Parse(b));

    public static bool AtLeast(string version, string minimum) => Compare(version, minimum) >= 0;

    /// <summary>
    /// The lowest config version at which a command exists. CHECK arrived in spec 0.4.0 ("Introduce
    /// the CHECK command", SPEC.md version table); GC and STATUS in 1.1.0 (libcni v1.2.0 release notes).
    /// </summary>
    public static string MinimumFor(CniCommand command) => command switch
    {
        CniCommand.Check => "0.4.0",
        CniCommand.Status or CniCommand.Gc => "1.1.0",
        _ => "0.1.0",
    };

    /// <summary>
    /// A command below its version floor is error 1 (incompatible version), not 2: the spec reserves
    /// 2 for an unsupported *configuration field*, and libcni's skel answers exactly this case with
    /// <c>ErrIncompatibleCNIVersion</c> and "config version does not allow CHECK/GC/STATUS".
    /// </summary>
    public static void EnsureCommandAllowed(CniCommand command, string cniVersion)
    {
        string min = MinimumFor(command);
        if (!AtLeast(cniVersion, min))
        {
            throw new CniException(
                CniErrorCode.IncompatibleVersion,
                $"cniVersion: \"{cniVersion}\" does not allow {command.ToWire()} (needs {min} or later)");
        }
    }

    /// <summary>
    /// Checks the config's <c>cniVersion</c>. Missing is error 7: spec 1.x lists <c>cniVersion</c> as a
    /// required field ("Fields … are required unless specifically marked optional"). libcni's decoder
    /// would instead assume "0.1.0" and fail with 1; a clear "missing" names the real problem.
    /// </summary>
    public static void EnsureSupported(string? cniVersion)
    {
        if (string.IsNullOrEmpty(cniVersion))
        {
            throw CniException.Invalid("cniVersion", "required field is missing");
        }
        if (!IsSupported(cniVersion))
        {
            throw new CniException(
                CniErrorCode.IncompatibleVersion,
                $"cniVersion: {Quote.Of(cniVersion)} is not supported (supported: {string.Join(", ", s_supported)})");
        }
    }

    /// <summary>The VERSION answer: <c>{"cniVersion":"1.1.0","supportedVersions":[…]}</c>.</summary>
    public static void WriteVersionResponse(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteString("cniVersion", Latest);
        writer.WriteStartArray("supportedVersions");
        foreach (var v in s_supported)
        {
            writer.WriteStringValue(v);
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.Flush();
    }

    /// <summary>
    /// The version to put in an error object: the config's own when Trellis supports it, else
    /// <see cref="Latest"/>. Never throws: it runs exactly when the input is bad.
    /// </summary>
    public static string ForErrors(ReadOnlySpan<byte> stdin)
    {
        try
        {
            var reader = new Utf8JsonReader(stdin, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return Latest;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isVersion = reader.ValueTextEquals("cniVersion"u8);
                if (!reader.Read())
                {
                    return Latest;
                }
                if (isVersion && reader.TokenType == JsonTokenType.String)
                {
                    string? v = reader.GetString();
                    return IsSupported(v) ? v! : Latest;
                }
                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }
        catch (InvalidOperationException)
        {
            // Invalid UTF-8 inside the version string.
        }
        return Latest;
    }

    private static CniVersion Parse(string version) =>
        CniVersion.TryParse(version, out var v)
            ? v
            : throw new CniException(CniErrorCode.DecodeFailure, $"cniVersion: {Quote.Of(version)} is not a version (major.minor.patch)");
}
