using System.Diagnostics.CodeAnalysis;

namespace Trellis.Core.Objects;

public sealed partial class LabelSelector
{
    /// <summary>
    /// Parses kubectl's <c>-l</c> syntax (labels.Parse): comma-separated terms <c>a=b</c>, <c>a==b</c>, <c>a!=b</c>,
    /// <c>a in (x,y)</c>, <c>a notin (x)</c>, <c>a</c>, <c>!a</c>, <c>a&gt;1</c>, <c>a&lt;1</c>. An empty string selects
    /// everything. Errors (<see cref="FormatException"/>) quote the term at fault.
    /// </summary>
    public static LabelSelector Parse(string text) =>
        TryParse(text, out var selector, out var error) ? selector : throw new FormatException(error);

    public static bool TryParse(string? text, [NotNullWhen(true)] out LabelSelector? selector, [NotNullWhen(false)] out string? error)
    {
        selector = null;
        var parser = new SelectorParser(text ?? "");
        var reqs = new List<LabelRequirement>();
        while (true)
        {
            parser.SkipSpace();
            if (parser.AtEnd && reqs.Count == 0)
            {
                break;
            }
            int start = parser.Position;
            if (!parser.TryRequirement(out var req, out var problem))
            {
                error = $"invalid selector term \"{parser.TermAt(start)}\": {problem}";
                return false;
            }
            if (LabelRequirement.Problems(req.Key, req.Operator, req.Values).FirstOrDefault() is { } bad)
            {
                error = $"invalid selector term \"{parser.TermAt(start)}\": {bad}";
                return false;
            }
            reqs.Add(req);
            var (tok, lit) = parser.Next(values: false);
            if (tok == Token.End)
            {
                break;
            }
            if (tok != Token.Comma)
            {
                error = $"invalid selector term \"{parser.TermAt(start)}\": found '{lit}', expected: ',' or end of string";
                return false;
            }
            parser.SkipSpace();
            if (parser.AtEnd)
            {
                error = "invalid selector: ends with ','";
                return false;
            }
        }
        selector = reqs.Count == 0 ? Everything : Create(reqs);
        error = null;
        return true;
    }

    private enum Token
    {
        End,
        Identifier,
        Comma,
        OpenParen,
        CloseParen,
        Equals,
        DoubleEquals,
        NotEquals,
        Bang,
        Greater,
        Less,
        In,
        NotIn,
    }

    // The lexer and grammar of k8s.io/apimachinery/pkg/labels/selector.go.
    private sealed class SelectorParser(string text)
    {
        public int Position { get; private set; }

        public bool AtEnd => Position >= text.Length;

        public void SkipSpace()
        {
            while (Position < text.Length && char.IsWhiteSpace(text[Position]))
            {
                Position++;
            }
        }

        /// <summary>The text of the term starting at <paramref name="start"/>: up to the next ',' outside parentheses.</summary>
        public string TermAt(int start)
        {
            int depth = 0;
            int i = start;
            for (; i < text.Length; i++)
            {
                char c = text[i];
                if (c == '(')
                {
                    depth++;
                }
                else if (c == ')')
                {
                    depth--;
                }
                else if (c == ',' && depth <= 0)
                {
                    break;
                }
            }
            return text[start..i].Trim();
        }

        public (Token, string) Peek(bool values)
        {
            int save = Position;
            var t = Next(values);
            Position = save;
            return t;
        }

        public (Token Token, string Literal) Next(bool values)
        {
            SkipSpace();
            if (AtEnd)
            {
                return (Token.End, "");
            }
            char c = text[Position];
            switch (c)
            {
                case ',':
                    Position++;
                    return (Token.Comma, ",");
                case '(':
                    Position++;
                    return (Token.OpenParen, "(");
                case ')':
                    Position++;
                    return (Token.CloseParen, ")");
                case '>':
                    Position++;
                    return (Token.Greater, ">");
                case '<':
                    Position++;
                    return (Token.Less, "<");
                case '=':
                    Position++;
                    if (!AtEnd && text[Position] == '=')
                    {
                        Position++;
                        return (Token.DoubleEquals, "==");
                    }
                    return (Token.Equals, "=");
                case '!':
                    Position++;
                    if (!AtEnd && text[Position] == '=')
                    {
                        Position++;
                        return (Token.NotEquals, "!=");
                    }
                    return (Token.Bang, "!");
            }
            int start = Position;
            while (Position < text.Length && !char.IsWhiteSpace(text[Position]) && text[Position] is not (',' or '(' or ')' or '=' or '!' or '<' or '>'))
            {
                Position++;
            }
            string word = text[start..Position];
            if (!values)
            {
                if (word == "in")
                {
                    return (Token.In, word);
                }
                if (word == "notin")
                {
                    return (Token.NotIn, word);
                }
            }
            return (Token.Identifier, word);
        }

        public bool TryRequirement([NotNullWhen(true)] out LabelRequirement? req, [NotNullWhen(false)] out string? problem)
        {
            req = null;
            // Keys are read in "values" mode, as Go's parser does, so "in" and "notin" may be label keys.
            var (tok, lit) = Next(values: true);
            bool not = false;
            if (tok == Token.Bang)
            {
                not = true;
                (tok, lit) = Next(values: true);
            }
            if (tok != Token.Identifier)
            {
                problem = $"found '{Show(tok, lit)}', expected: identifier";
                return false;
            }
            string key = lit;
            var (next, nextLit) = Peek(values: false);
            if (next is Token.End or Token.Comma)
            {
                req = new LabelRequirement(key, not ? SelectorOperator.DoesNotExist : SelectorOperator.Exists, []);
                problem = null;
                return true;
            }
            if (not)
            {
                problem = $"found '{Show(next, nextLit)}', expected: ',' or end of string after '!{key}'";
                return false;
            }
            var (opTok, opLit) = Next(values: false);
            SelectorOperator op;
            switch (opTok)
            {
                case Token.Equals: op = SelectorOperator.Equals; break;
                case Token.DoubleEquals: op = SelectorOperator.DoubleEquals; break;
                case Token.NotEquals: op = SelectorOperator.NotEquals; break;
                case Token.In: op = SelectorOperator.In; break;
                case Token.NotIn: op = SelectorOperator.NotIn; break;
                case Token.Greater: op = SelectorOperator.GreaterThan; break;
                case Token.Less: op = SelectorOperator.LessThan; break;
                default:
                    problem = $"found '{Show(opTok, opLit)}', expected: '=', '!=', '==', 'in', 'notin', '>' or '<'";
                    return false;
            }
            var values = new List<string>();
            if (op is SelectorOperator.In or SelectorOperator.NotIn)
            {
                var (open, openLit) = Next(values: true);
                if (open != Token.OpenParen)
                {
                    problem = $"found '{Show(open, openLit)}', expected: '('";
                    return false;
                }
                // "(a,b)", "(a,)" and "()" as in Go: an empty slot is the empty value.
                bool expectValue = true;
                while (true)
                {
                    var (t, l) = Next(values: true);
                    if (t == Token.CloseParen)
                    {
                        if (expectValue)
                        {
                            values.Add("");
                        }
                        break;
                    }
                    if (t == Token.Identifier && expectValue)
                    {
                        values.Add(l);
                        expectValue = false;
                    }
                    else if (t == Token.Comma)
                    {
                        if (expectValue)
                        {
                            values.Add("");
                        }
                        expectValue = true;
                    }
                    else
                    {
                        problem = t == Token.End ? "found end of string, expected: ')'" : $"found '{Show(t, l)}', expected: ',', ')' or identifier";
                        return false;
                    }
                }
            }
            else
            {
                var (t, l) = Peek(values: true);
                if (t is Token.End or Token.Comma)
                {
                    values.Add(""); // "a=" is a = "".
                }
                else if (t == Token.Identifier)
                {
                    Next(values: true);
                    values.Add(l);
                }
                else
                {
                    problem = $"found '{Show(t, l)}', expected: identifier";
                    return false;
                }
            }
            req = new LabelRequirement(key, op, [.. values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)]);
            problem = null;
            return true;
        }

        private static string Show(Token t, string lit) => t == Token.End ? "end of string" : lit;
    }
}
