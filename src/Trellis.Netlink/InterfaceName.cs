using System.Text;

namespace Trellis.Netlink;

/// <summary>The kernel's dev_valid_name rules, checked before a request is sent so the error names the value.</summary>
internal static class InterfaceName
{
    /// <summary>IFNAMSIZ (16) including the terminating NUL.</summary>
    public const int MaxBytes = 15;

    public static void Validate(string name, string paramName)
    {
        ArgumentNullException.ThrowIfNull(name, paramName);
        string? problem = Check(name);
        if (problem is not null)
        {
            throw new ArgumentException($"invalid interface name '{name}': {problem}", paramName);
        }
    }

    private static string? Check(string name)
    {
        if (name.Length == 0)
        {
            return "empty";
        }
        if (name is "." or "..")
        {
            return "'.' and '..' are reserved";
        }
        if (Encoding.UTF8.GetByteCount(name) > MaxBytes)
        {
            return $"longer than {MaxBytes} bytes";
        }
        foreach (char c in name)
        {
            if (c is '/' or ':' or '\0' || char.IsWhiteSpace(c))
            {
                return "contains '/', ':', NUL or whitespace";
            }
        }
        // dev_valid_name applies isspace() to bytes, and the kernel's ctype counts 0xA0 as a space.
        if (Array.IndexOf(Encoding.UTF8.GetBytes(name), (byte)0xA0) >= 0)
        {
            return "contains byte 0xA0, which the kernel reads as whitespace";
        }
        return null;
    }
}
