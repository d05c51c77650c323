using System.Runtime.CompilerServices;

namespace Trellis.Store;

/// <summary>One read of the event log for a watcher.</summary>
/// <param name="Events">Matching events after the requested revision, in revision order.</param>
/// <param name="ScannedThrough">
/// The store revision the read saw (its snapshot). When <paramref name="Truncated"/> is false, no
/// event ≤ this is missing for the prefix, so the watcher may skip ahead to it even if nothing matched.
/// </param>
/// <param name="Truncated">The batch limit cut the read short: read again at once.</param>
internal readonly record struct WatchBatch(IReadOnlyList<WatchEvent> Events, long ScannedThrough, bool Truncated);

/// <summary>
/// The watch loop every backend shares: read the log after the last delivered revision, deliver,
/// and when caught up sleep until the store's revision moves. History replay and live delivery are
/// the same loop over the same log, so there is no hand-over between them where an event could be
/// missed or delivered twice; a reconnecting watcher is simply a new loop from its last revision.
/// </summary>
internal static class WatchStream
{
    /// <summary>Bounds memory per read and lets a far-behind watcher deliver while it catches up.</summary>
    public const int BatchSize = 256;

    /// <summary>
    /// <paramref name="readAfter"/> returns the events after a revision (throwing
    /// <see cref="StoreCompactedException"/> when they are gone); <paramref name="signal"/> wakes
    /// the loop when the store moves; <paramref name="idleRecheck"/> bounds how long it trusts the
    /// signal alone (infinite for in-process backends whose signal cannot fail).
    /// </summary>
    public static async IAsyncEnumerable<WatchEvent> RunAsync(
        Func<long, WatchBatch> readAfter,
        RevisionSignal signal,
        TimeSpan idleRecheck,
        long fromRevision,
        object owner,
        CancellationToken disposing,
        [EnumeratorCancellation] CancellationToken ct)
    {
        long after = fromRevision;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(disposing.IsCancellationRequested, owner);
            WatchBatch batch = readAfter(after);
            foreach (var e in batch.Events)
            {
                yield return e;
                after = e.Revision;
            }
            if (batch.Truncated)
            {
                continue;
            }
            after = Math.Max(after, batch.ScannedThrough);
            await WaitAsync(signal, idleRecheck, after, owner, disposing, ct).ConfigureAwait(false);
        }
    }

    private static async Task WaitAsync(RevisionSignal signal, TimeSpan idleRecheck, long after, object owner, CancellationToken disposing, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, disposing);
        try
        {
            // The idle re-check is real time on purpose: it paces I/O, not store semantics.
            await signal.WaitBeyondAsync(after, linked.Token).WaitAsync(idleRecheck, TimeProvider.System, linked.Token).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Read again even without a signal: a backend whose change detection failed then
            // surfaces its error to the watcher instead of leaving it waiting forever.
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && disposing.IsCancellationRequested)
        {
            // The store closed under the watcher: say so, rather than look like the caller cancelled.
            throw new ObjectDisposedException(owner.GetType().Name, "the store was disposed while a watch was open");
        }
    }
}
