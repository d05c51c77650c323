namespace Trellis.Core.Objects;

/// <summary>A manifest that cannot be read: bad YAML/JSON, a document that is not an object, no apiVersion or kind.</summary>
public sealed class ManifestException : Exception
{
    public ManifestException(string sourceName, int document, int? line, int? column, string problem)
        : base(Format(sourceName, document, line, column, problem))
    {
        SourceName = sourceName;
        Document = document;
        Line = line;
        Column = column;
        Problem = problem;
    }

    public ManifestException()
        : this("<input>", 0, null, null, "invalid manifest")
    {
    }

    public ManifestException(string message)
        : this("<input>", 0, null, null, message)
    {
    }

    public ManifestException(string message, Exception innerException)
        : base(message, innerException)
    {
        SourceName = "<input>";
        Problem = message;
    }

    /// <summary>The file name (or "-") the text came from.</summary>
    public string SourceName { get; }

    /// <summary>1-based index of the YAML document (or JSON value) in the stream.</summary>
    public int Document { get; }

    /// <summary>1-based, where the parser gives one.</summary>
    public int? Line { get; }

    /// <summary>1-based, where the parser gives one.</summary>
    public int? Column { get; }

    /// <summary>The message without the location.</summary>
    public string Problem { get; }

    private static string Format(string sourceName, int document, int? line, int? column, string problem)
    {
        string where = line is { } l ? $" (line {l}, column {column ?? 1})" : "";
        return $"{sourceName}: document {document}{where}: {problem}";
    }
}
