namespace Trellis.Nftables;

public sealed record NftClientOptions
{
    /// <summary>The nft executable, looked up in PATH unless absolute.</summary>
    public string NftPath { get; init; } = "nft";

    /// <summary>
    /// A network namespace file (<c>/var/run/netns/NAME</c>, <c>/proc/PID/ns/net</c>) to run nft in. Null runs it
    /// in the calling thread's namespace — right for trellisd, which lives in its node's namespace.
    /// </summary>
    public string? NetnsPath { get; init; }

    /// <summary>How long one nft run may take before it is killed (a transaction never needs more than a few seconds).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
}
