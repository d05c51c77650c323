namespace Trellis.Store;

/// <summary>
/// Chooses the revision to compact to, keeping at least the newest N revisions and every
/// revision younger than T (etcd's revision- and period-based retention combined). Pure: the
/// caller samples (time, current revision) on each tick, so no per-row timestamp is stored.
/// </summary>
/// <remarks>
/// A sample (t, r) means "at time t the store had reached r", so every revision ≤ r is at least
/// now − t old. The newest sample taken at or before now − T therefore bounds what may go. A
/// freshly started process has no old samples and compacts nothing until it has been up for T,
/// which errs on the side of keeping history.
/// </remarks>
internal sealed class CompactionPolicy(long minRetainedRevisions, TimeSpan minRetainedAge)
{
    private readonly List<(DateTimeOffset At, long Revision)> _samples = [];

    /// <summary>Records a sample and returns the revision to compact to (0 = nothing to do yet).</summary>
    public long Next(DateTimeOffset now, long currentRevision)
    {
        _samples.Add((now, currentRevision));
        long byCount = currentRevision - minRetainedRevisions;
        if (byCount <= 0)
        {
            return 0;
        }
        if (minRetainedAge == TimeSpan.Zero)
        {
            return byCount;
        }
        DateTimeOffset cutoff = now - minRetainedAge;
        int newestOld = _samples.FindLastIndex(s => s.At <= cutoff);
        if (newestOld < 0)
        {
            return 0;
        }
        long byAge = _samples[newestOld].Revision;
        // Older samples can never bound a later tick more tightly than this one: drop them.
        _samples.RemoveRange(0, newestOld);
        return Math.Min(byCount, byAge);
    }
}
