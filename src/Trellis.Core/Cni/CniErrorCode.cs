namespace Trellis.Core.Cni;

/// <summary>
/// The spec's well-known error codes (SPEC.md 1.1.0, "Error"). Codes 1-99 are reserved for these
/// meanings; 100+ are plugin-specific.
/// </summary>
public static class CniErrorCode
{
    public const int IncompatibleVersion = 1;

    /// <summary>The message must contain the key and the value of the unsupported field.</summary>
    public const int UnsupportedField = 2;

    public const int UnknownContainer = 3;

    /// <summary>The message must contain the names of the invalid variables.</summary>
    public const int InvalidEnvironment = 4;

    public const int IoFailure = 5;
    public const int DecodeFailure = 6;
    public const int InvalidConfig = 7;
    public const int TryAgainLater = 11;

    /// <summary>STATUS: the plugin cannot service ADD requests.</summary>
    public const int NotAvailable = 50;

    /// <summary>STATUS: not available, and existing containers may have limited connectivity.</summary>
    public const int LimitedConnectivity = 51;

    /// <summary>
    /// What libcni's skel reports for a plain (untyped) error: <c>types.ErrInternal</c>. host-local
    /// returns its allocation failures ("no IP addresses available in range set: …", "requested IP
    /// address … is not available …") as plain Go errors, so a runtime driving the reference pair
    /// sees 999 for them; Trellis keeps that code so runtimes and scripts see the same thing.
    /// </summary>
    public const int Internal = 999;

    internal static bool IsKnown(int code) => code is IncompatibleVersion or UnsupportedField or UnknownContainer
        or InvalidEnvironment or IoFailure or DecodeFailure or InvalidConfig or TryAgainLater
        or NotAvailable or LimitedConnectivity or Internal;
}
