using System.Text.Json;

namespace Trellis.Core.Cni;

/// <summary>
/// An error the plugin reports to the runtime as the spec's error object. <see cref="Exception.Message"/>
/// is the spec's <c>msg</c> and always starts with the field or variable at fault.
/// </summary>
public sealed class CniException : Exception
{
    public CniException(int code, string msg, string? details = null)
        : base(msg)
    {
        Code = code;
        Details = details;
    }

    public CniException()
        : this(CniErrorCode.Internal, "internal error")
    {
    }

    public CniException(string message)
        : this(CniErrorCode.Internal, message)
    {
    }

    public CniException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = CniErrorCode.Internal;
    }

    public int Code { get; }

    public string? Details { get; }

    /// <summary>Writes <c>{"cniVersion","code","msg","details"}</c>; <c>details</c> is omitted when empty, as libcni does.</summary>
    public void WriteErrorJson(Utf8JsonWriter writer, string cniVersion)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteString("cniVersion", cniVersion);
        writer.WriteNumber("code", Code);
        writer.WriteString("msg", Message);
        if (!string.IsNullOrEmpty(Details))
        {
            writer.WriteString("details", Details);
        }
        writer.WriteEndObject();
        writer.Flush();
    }

    internal static CniException Invalid(string field, string problem) =>
        new(CniErrorCode.InvalidConfig, $"{field}: {problem}");

    internal static CniException Unsupported(string field, string value, string why) =>
        new(CniErrorCode.UnsupportedField, $"{field}: {value} is not supported: {why}");

    internal static CniException Env(string variable, string problem) =>
        new(CniErrorCode.InvalidEnvironment, $"{variable}: {problem}");
}
