namespace Trellis.Bgp.Wire;

/// <summary>A NOTIFICATION's error code, subcode and data (RFC 4271 §4.5, §6).</summary>
public readonly record struct BgpError(byte Code, byte Subcode, byte[]? Data = null)
{
    public const byte MessageHeader = 1;
    public const byte OpenMessage = 2;
    public const byte UpdateMessage = 3;
    public const byte HoldTimerExpired = 4;
    public const byte FiniteStateMachine = 5;
    public const byte Cease = 6;

    // Message header subcodes.
    public const byte ConnectionNotSynchronized = 1;
    public const byte BadMessageLength = 2;
    public const byte BadMessageType = 3;

    // OPEN subcodes.
    public const byte UnsupportedVersionNumber = 1;
    public const byte BadPeerAs = 2;
    public const byte BadBgpIdentifier = 3;
    public const byte UnsupportedOptionalParameter = 4;
    public const byte UnacceptableHoldTime = 6;
    public const byte UnsupportedCapability = 7;

    // UPDATE subcodes.
    public const byte MalformedAttributeList = 1;
    public const byte UnrecognizedWellKnownAttribute = 2;
    public const byte MissingWellKnownAttribute = 3;
    public const byte AttributeFlagsError = 4;
    public const byte AttributeLengthError = 5;
    public const byte InvalidOriginAttribute = 6;
    public const byte InvalidNextHopAttribute = 8;
    public const byte OptionalAttributeError = 9;
    public const byte InvalidNetworkField = 10;
    public const byte MalformedAsPath = 11;

    // Cease subcodes (RFC 4486).
    public const byte AdministrativeShutdown = 2;
    public const byte PeerDeconfigured = 3;
    public const byte AdministrativeReset = 4;
    public const byte ConnectionRejected = 5;
    public const byte ConnectionCollisionResolution = 7;

    public override string ToString() => $"{CodeName(Code)}/{Subcode}" + (Data is { Length: > 0 } d ? " data " + Convert.ToHexStringLower(d) : "");

    public static string CodeName(byte code) => code switch
    {
        MessageHeader => "message-header-error",
        OpenMessage => "open-message-error",
        UpdateMessage => "update-message-error",
        HoldTimerExpired => "hold-timer-expired",
        FiniteStateMachine => "fsm-error",
        Cease => "cease",
        _ => "code-" + code,
    };
}

/// <summary>Malformed input that must end the session with this NOTIFICATION (never escapes a session).</summary>
public sealed class BgpMessageException : Exception
{
    public BgpMessageException(BgpError error, string detail)
        : base($"{error}: {detail}")
    {
        Error = error;
    }

    public BgpMessageException()
    {
    }

    public BgpMessageException(string message)
        : base(message)
    {
    }

    public BgpMessageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public BgpError Error { get; }
}

/// <summary>A message the caller asked to encode does not fit BGP's limits (a bug in the caller, not peer input).</summary>
public sealed class BgpEncodeException : Exception
{
    public BgpEncodeException()
    {
    }

    public BgpEncodeException(string message)
        : base(message)
    {
    }

    public BgpEncodeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
