namespace Trellis.Store;

/// <summary>A background duty (lease sweep, compaction) run every interval of the injected clock.</summary>
internal static class PeriodicLoop
{
    /// <summary>
    /// Call directly (not through Task.Run): the first delay is then registered before the
    /// constructor returns, so a test that advances a fake clock right away always fires it.
    /// </summary>
    public static async Task RunAsync(TimeSpan interval, TimeProvider time, Func<CancellationToken, Task> tick, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                // ForceYielding: a fake clock completes the delay inside the test's Advance call;
                // the tick (which does I/O and takes locks) must not run on that thread.
                await Task.Delay(interval, time, ct).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
                await tick(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (StoreUnavailableException)
            {
                // Expected while another process holds the database past the busy timeout or the
                // disk hiccups: the duty is idempotent and the next tick (or any client's read or
                // write, which run the same checks) retries it.
            }
        }
    }
}
