namespace Trellis.Core.Cni;

public enum CniCommand
{
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

public static class CniCommands
{
    /// <summary>The <c>CNI_COMMAND</c> spelling (case-sensitive, as libcni's skel compares it).</summary>
    public static string ToWire(this CniCommand command) => command switch
    {
        CniCommand.Add => "ADD",
        CniCommand.Del => "DEL",
        CniCommand.Check => "CHECK",
        CniCommand.Status => "STATUS",
        CniCommand.Gc => "GC",
        CniCommand.Version => "VERSION",
        _ => throw new ArgumentOutOfRangeException(nameof(command)),
    };

    public static bool TryParse(string? text, out CniCommand command)
    {
        switch (text)
        {
            case "ADD": command = CniCommand.Add; return true;
            case "DEL": command = CniCommand.Del; return true;
            case "CHECK": command = CniCommand.Check; return true;
            case "STATUS": command = CniCommand.Status; return true;
            case "GC": command = CniCommand.Gc; return true;
            case "VERSION": command = CniCommand.Version; return true;
            default: command = default; return false;
        }
    }

    /// <summary>Parses <c>CNI_COMMAND</c>; missing or unknown is error 4 naming the variable.</summary>
    public static CniCommand Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            throw CniException.Env("CNI_COMMAND", "required variable is missing");
        }
        if (!TryParse(text, out var command))
        {
            throw CniException.Env("CNI_COMMAND", $"{Quote.Of(text)} is not one of ADD, DEL, CHECK, STATUS, GC, VERSION");
        }
        return command;
    }
}
