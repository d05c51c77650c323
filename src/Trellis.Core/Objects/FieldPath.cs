namespace Trellis.Core.Objects;

/// <summary>Field paths written as the API server writes them: <c>spec.containers[0].ports[1].containerPort</c>.</summary>
internal static class FieldPath
{
    public static string Child(string parent, string name) => parent.Length == 0 ? name : parent + "." + name;

    public static string Index(string parent, int index) => $"{parent}[{index}]";

    public static string Key(string parent, string key) => $"{parent}[{key}]";
}
