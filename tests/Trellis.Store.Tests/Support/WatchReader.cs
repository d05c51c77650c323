namespace Trellis.Store.Tests.Support;

/// <summary>
/// Reads a watch one event at a time with real-time timeouts, keeping the pending MoveNextAsync
/// across calls (an async enumerator must not be advanced twice at once), so a test can ask both
/// "give me the next event" and "is the stream quiet?" of the same watch.
/// </summary>
internal sealed class WatchReader : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    private readonly CancellationTokenSource _cts = new();
    private readonly IAsyncEnumerator<WatchEvent> _events;
    private Task<bool>? _pending;

    public WatchReader(IClusterStore store, string prefix, long fromRevision)
    {
        _events = store.WatchAsync(prefix, fromRevision).GetAsyncEnumerator(_cts.Token);
    }

    public async Task<WatchEvent> NextAsync(TimeSpan? timeout = null)
    {
        _pending ??= _events.MoveNextAsync().AsTask();
        var finished = await Task.WhenAny(_pending, Task.Delay(timeout ?? DefaultTimeout));
        if (finished != _pending)
        {
            throw new TimeoutException($"no watch event within {timeout ?? DefaultTimeout}");
        }
        var pending = _pending;
        _pending = null;
        if (!await pending)
        {
            throw new InvalidOperationException("the watch ended");
        }
        return _events.Current;
    }

    public async Task<List<WatchEvent>> TakeAsync(int count, TimeSpan? timeout = null)
    {
        var events = new List<WatchEvent>(count);
        for (int i = 0; i < count; i++)
        {
            events.Add(await NextAsync(timeout));
        }
        return events;
    }

    /// <summary>True when no event arrives within <paramref name="wait"/> (the pending read is kept for later).</summary>
    public async Task<bool> IsQuietAsync(TimeSpan wait)
    {
        _pending ??= _events.MoveNextAsync().AsTask();
        return await Task.WhenAny(_pending, Task.Delay(wait)) != _pending;
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        if (_pending is not null)
        {
            try
            {
                await _pending;
            }
            catch (OperationCanceledException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
            catch (StoreException)
            {
            }
        }
        await _events.DisposeAsync();
        _cts.Dispose();
    }
}
