using System.Text.Encodings.Web;
using System.Text.Json;

namespace Trellis.Core.Cni;

/// <summary>Writer settings for everything the plugin prints.</summary>
public static class CniJson
{
    /// <summary>
    /// Relaxed escaping: messages quote values (<c>CNI_IFNAME: "eth0/x" …</c>) and the default encoder
    /// would print every quote as <c>\u0022</c>. Output goes to a runtime's pipe, never into HTML.
    /// </summary>
    public static JsonWriterOptions WriterOptions { get; } = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };
}
