namespace Trellis.Nftables;

/// <summary>
/// nft failed: the command, its exit code, and the errors parsed from its stderr, the first of which names the
/// transaction line at fault. A failed <c>nft -f</c> changed nothing: the batch is aborted as a whole.
/// </summary>
public sealed class NftException : Exception
{
    public NftException()
        : this("nft failed")
    {
    }

    public NftException(string message)
        : base(message)
    {
        Command = "nft";
        Stderr = string.Empty;
    }

    public NftException(string message, Exception innerException)
        : base(message, innerException)
    {
        Command = "nft";
        Stderr = string.Empty;
    }

    /// <summary>A failed nft run; public so fakes can raise the errors the real one does.</summary>
    public NftException(string command, int exitCode, IReadOnlyList<NftError> errors, string stderr)
        : base(Format(command, exitCode, errors ?? [], stderr ?? string.Empty))
    {
        Command = command ?? "nft";
        ExitCode = exitCode;
        Errors = errors ?? [];
        Stderr = stderr ?? string.Empty;
    }

    /// <summary>What was run, e.g. <c>nft -f -</c>.</summary>
    public string Command { get; }

    /// <summary>nft's exit status; null when it did not get to exit (not found, timed out).</summary>
    public int? ExitCode { get; }

    public IReadOnlyList<NftError> Errors { get; } = [];

    /// <summary>nft's stderr as it was.</summary>
    public string Stderr { get; }

    /// <summary>The first located error's transaction line (1-based).</summary>
    public int? Line => Errors.FirstOrDefault(e => e.Line is not null)?.Line;

    /// <summary>The text of <see cref="Line"/>.</summary>
    public string? LineText => Errors.FirstOrDefault(e => e.Line is not null)?.LineText;

    /// <summary>nft's first error message ("Could not process rule: No such file or directory").</summary>
    public string? NftMessage => Errors.Count > 0 ? Errors[0].Message : null;

    /// <summary>Every error is "No such file or directory": what was to be changed or listed does not exist.</summary>
    public bool IsNotFound => Errors.Count > 0 && Errors.All(e => e.IsNotFound);

    /// <summary>Every error is "File exists".</summary>
    public bool IsAlreadyExists => Errors.Count > 0 && Errors.All(e => e.IsAlreadyExists);

    private static string Format(string command, int exitCode, IReadOnlyList<NftError> errors, string stderr)
    {
        if (errors.Count == 0)
        {
            string text = stderr.Trim();
            return $"{command}: exit code {exitCode}{(text.Length == 0 ? "" : ": " + text)}";
        }
        string first = $"{command}: {errors[0]}";
        return errors.Count == 1 ? first : $"{first} (and {errors.Count - 1} more: {string.Join("; ", errors.Skip(1))})";
    }
}
