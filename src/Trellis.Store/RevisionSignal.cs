namespace Trellis.Store;

/// <summary>
/// Wakes idle watchers when the store's revision moves past the one they have read up to.
/// Watchers never receive events through it (they read their own from the store, which is what
/// makes replay and live delivery one code path); it only says "there may be more".
/// </summary>
internal sealed class RevisionSignal
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _advanced = NewSource();
    private long _latest;

    /// <summary>Records that the store reached <paramref name="revision"/>; wakes waiters if it is new.</summary>
    public void Publish(long revision)
    {
        TaskCompletionSource woken;
        lock (_gate)
        {
            if (revision <= _latest)
            {
                return;
            }
            _latest = revision;
            woken = _advanced;
            _advanced = NewSource();
        }
        woken.SetResult();
    }

    /// <summary>Completes once a revision greater than <paramref name="revision"/> has been published.</summary>
    public Task WaitBeyondAsync(long revision, CancellationToken ct)
    {
        Task next;
        lock (_gate)
        {
            if (_latest > revision)
            {
                return Task.CompletedTask;
            }
            next = _advanced.Task;
        }
        // Publish may bring the revision only to ≤ revision (another watcher's prefix, a lease
        // write): the caller re-reads, finds nothing and waits again — a cheap spurious wake-up.
        return next.WaitAsync(ct);
    }

    // Asynchronous continuations: Publish runs inside a writer's critical section and must not
    // execute watcher code inline.
    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
