using System.Buffers;
using System.Text.Json;

namespace Trellis.Store;

/// <summary>
/// Reads the gateway's streaming answers: one JSON object per line, for as long as the stream
/// lasts. Each line is parsed in place and handed to a parser before the buffer moves on.
/// </summary>
internal sealed class JsonLineReader(Stream stream) : IDisposable
{
    /// <summary>
    /// A line longer than this is refused rather than buffered: it would be a revision carrying
    /// tens of maximum-size values, or not etcd at all.
    /// </summary>
    public const int MaxLineBytes = 64 * 1024 * 1024;

    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
    private int _start;
    private int _end;
    private int _scanned;

    /// <summary>The next line parsed by <paramref name="parse"/>; <c>(false, default)</c> at the end of the stream.</summary>
    /// <exception cref="JsonException">A line is not JSON or is too long.</exception>
    public async ValueTask<(bool Ok, T Value)> ReadAsync<T>(Func<JsonElement, T> parse, CancellationToken ct)
    {
        while (true)
        {
            int newline = Array.IndexOf(_buffer, (byte)'\n', _scanned, _end - _scanned);
            if (newline >= 0)
            {
                var line = new ReadOnlyMemory<byte>(_buffer, _start, newline - _start);
                _start = _scanned = newline + 1;
                if (line.Span.Trim(" \r\t"u8).IsEmpty)
                {
                    continue;
                }
                using var document = JsonDocument.Parse(line);
                return (true, parse(document.RootElement));
            }
            _scanned = _end;
            MakeRoom();
            int read = await stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            if (read == 0)
            {
                return (false, default!);
            }
            _end += read;
        }
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void MakeRoom()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _scanned -= _start;
            _start = 0;
        }
        if (_end < _buffer.Length)
        {
            return;
        }
        if (_buffer.Length >= MaxLineBytes)
        {
            throw new JsonException($"a streamed answer line exceeds {MaxLineBytes} bytes");
        }
        byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 2, MaxLineBytes));
        Buffer.BlockCopy(_buffer, 0, larger, 0, _end);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }
}
