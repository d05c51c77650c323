using System.Text;

namespace Trellis.Core.Nft;

internal enum TokenKind
{
    Word,
    String,
    LBrace,
    RBrace,
    Comma,
    Semicolon,
    Colon,
}

internal readonly record struct Token(TokenKind Kind, string Text)
{
    public bool Is(string word) => Kind == TokenKind.Word && Text == word;

    public override string ToString() => Kind == TokenKind.String ? "\"" + Text + "\"" : Text;
}

/// <summary>One statement of a transaction with the line it starts on (for errors) and its tokens.</summary>
internal sealed record NftStatement(int Line, string Text, IReadOnlyList<Token> Tokens);

/// <summary>
/// Splits <c>nft -f</c> text into statements: one per line, except that a line with an open <c>{</c>
/// continues until its <c>}</c> (nft accepts multi-line element lists), and a trailing <c>\</c> continues.
/// </summary>
internal static class NftLexer
{
    public static List<NftStatement> Split(string text)
    {
        var statements = new List<NftStatement>();
        var tokens = new List<Token>();
        var raw = new StringBuilder();
        int line = 1;
        int startLine = 1;
        int depth = 0;
        int i = 0;

        void Flush()
        {
            if (tokens.Count > 0)
            {
                statements.Add(new NftStatement(startLine, raw.ToString().Trim(), [.. tokens]));
            }
            tokens.Clear();
            raw.Clear();
        }

        void Begin()
        {
            if (tokens.Count == 0)
            {
                startLine = line;
                raw.Clear();
            }
        }

        while (i < text.Length)
        {
            char c = text[i];
            if (c == '\n')
            {
                line++;
                i++;
                if (depth == 0)
                {
                    Flush();
                }
                else
                {
                    raw.Append(' ');
                }
                continue;
            }
            if (c == '\\' && i + 1 < text.Length && (text[i + 1] == '\n' || (text[i + 1] == '\r' && i + 2 < text.Length && text[i + 2] == '\n')))
            {
                // Line continuation: swallow the newline.
                i += text[i + 1] == '\r' ? 3 : 2;
                line++;
                raw.Append(' ');
                continue;
            }
            if (char.IsWhiteSpace(c))
            {
                raw.Append(c);
                i++;
                continue;
            }
            if (c == '#')
            {
                while (i < text.Length && text[i] != '\n')
                {
                    i++;
                }
                continue;
            }
            Begin();
            switch (c)
            {
                case '"':
                    {
                        int end = text.IndexOf('"', i + 1);
                        int nl = text.IndexOf('\n', i + 1);
                        if (end < 0 || (nl >= 0 && nl < end))
                        {
                            string rest = text[i..(nl < 0 ? text.Length : nl)];
                            throw new NftParseException(line, (raw + rest).Trim(), "unterminated string");
                        }
                        tokens.Add(new Token(TokenKind.String, text[(i + 1)..end]));
                        raw.Append(text, i, end - i + 1);
                        i = end + 1;
                        continue;
                    }
                case '{':
                    depth++;
                    tokens.Add(new Token(TokenKind.LBrace, "{"));
                    break;
                case '}':
                    depth--;
                    if (depth < 0)
                    {
                        throw new NftParseException(line, (raw + "}").Trim(), "unbalanced '}'");
                    }
                    tokens.Add(new Token(TokenKind.RBrace, "}"));
                    break;
                case ',':
                    tokens.Add(new Token(TokenKind.Comma, ","));
                    break;
                case ';':
                    if (depth == 0)
                    {
                        // nft accepts "stmt; stmt" on one line.
                        raw.Append(c);
                        i++;
                        Flush();
                        continue;
                    }
                    tokens.Add(new Token(TokenKind.Semicolon, ";"));
                    break;
                default:
                    {
                        int start = i;
                        while (i < text.Length && !char.IsWhiteSpace(text[i]) && "{},;\"#".IndexOf(text[i], StringComparison.Ordinal) < 0)
                        {
                            i++;
                        }
                        string word = text[start..i];
                        raw.Append(word);
                        if (word == ":")
                        {
                            tokens.Add(new Token(TokenKind.Colon, ":"));
                        }
                        else if (word.Length > 1 && word[^1] == ':' && word.IndexOf(':', StringComparison.Ordinal) == word.Length - 1)
                        {
                            // "0: goto x" — a key glued to its colon (an IPv6 address has other colons).
                            tokens.Add(new Token(TokenKind.Word, word[..^1]));
                            tokens.Add(new Token(TokenKind.Colon, ":"));
                        }
                        else
                        {
                            tokens.Add(new Token(TokenKind.Word, word));
                        }
                        continue;
                    }
            }
            raw.Append(c);
            i++;
        }
        if (depth > 0)
        {
            throw new NftParseException(startLine, raw.ToString().Trim(), "unbalanced '{' (missing '}')");
        }
        Flush();
        return statements;
    }

    /// <summary>Canonical text of a token run: single spaces, commas glued to what precedes them.</summary>
    public static string Join(IEnumerable<Token> tokens)
    {
        var sb = new StringBuilder();
        foreach (var t in tokens)
        {
            if (sb.Length > 0 && t.Kind is not (TokenKind.Comma or TokenKind.Semicolon))
            {
                sb.Append(' ');
            }
            else if (t.Kind == TokenKind.Semicolon)
            {
                sb.Append(' ');
            }
            sb.Append(t.ToString());
        }
        return sb.ToString();
    }
}

/// <summary>A cursor over a statement's tokens; every error names the statement's line and text.</summary>
internal sealed class TokenReader
{
    private readonly NftStatement _statement;
    private readonly IReadOnlyList<Token> _tokens;
    private int _pos;

    public TokenReader(NftStatement statement, int start = 0, int end = -1)
    {
        _statement = statement;
        _tokens = end < 0 ? statement.Tokens : [.. statement.Tokens.Take(end)];
        _pos = start;
    }

    public NftStatement Statement => _statement;

    public int Position => _pos;

    public bool AtEnd => _pos >= _tokens.Count;

    public Token? Peek(int ahead = 0) => _pos + ahead < _tokens.Count ? _tokens[_pos + ahead] : null;

    public bool PeekIs(string word, int ahead = 0) => Peek(ahead) is { } t && t.Is(word);

    public bool PeekKind(TokenKind kind) => Peek() is { } t && t.Kind == kind;

    public Token Next(string what)
    {
        if (AtEnd)
        {
            throw Error($"expected {what} at end of statement");
        }
        return _tokens[_pos++];
    }

    public string NextWord(string what)
    {
        var t = Next(what);
        if (t.Kind != TokenKind.Word)
        {
            throw Error($"expected {what}, found '{t}'");
        }
        return t.Text;
    }

    public void Expect(string word)
    {
        var t = Next($"'{word}'");
        if (!t.Is(word))
        {
            throw Error($"expected '{word}', found '{t}'");
        }
    }

    public void Expect(TokenKind kind, string what)
    {
        var t = Next(what);
        if (t.Kind != kind)
        {
            throw Error($"expected {what}, found '{t}'");
        }
    }

    public bool TryConsume(string word)
    {
        if (PeekIs(word))
        {
            _pos++;
            return true;
        }
        return false;
    }

    public bool TryConsume(TokenKind kind)
    {
        if (PeekKind(kind))
        {
            _pos++;
            return true;
        }
        return false;
    }

    public IEnumerable<Token> Range(int from, int to) => _tokens.Skip(from).Take(to - from);

    public NftParseException Error(string reason) => new(_statement.Line, _statement.Text, reason);
}
