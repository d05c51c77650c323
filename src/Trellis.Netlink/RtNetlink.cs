using Trellis.Netlink.Wire;

namespace Trellis.Netlink;

/// <summary>
/// An rtnetlink handle bound to one network namespace: links, addresses, routes, neighbours and
/// the bridge FDB, with verbs named after iproute2. One socket serves every request; requests
/// are serialised, so a handle may be shared between threads.
/// </summary>
public sealed partial class RtNetlink : IDisposable
{
    private const int MaxDumpAttempts = 5;

    private readonly NetlinkSocket _socket;
    private readonly NetlinkWriter _writer = new();
    private readonly Lock _lock = new();
    private bool _disposed;

    private RtNetlink(NetlinkSocket socket) => _socket = socket;

    /// <summary>Opens a handle in the calling thread's network namespace.</summary>
    public static RtNetlink Open() => new(NetlinkSocket.Open());

    /// <summary>
    /// Opens a handle in <paramref name="ns"/>. The socket is created on a thread that has
    /// entered the namespace; a netlink socket stays in the namespace it was created in, so the
    /// handle works from any thread afterwards.
    /// </summary>
    public static RtNetlink OpenIn(NetNs ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        return new RtNetlink(ns.Run(static () => NetlinkSocket.Open()));
    }

    /// <summary>As <see cref="OpenIn(NetNs)"/> with a given initial receive buffer (tests).</summary>
    internal static RtNetlink OpenIn(NetNs ns, int receiveBufferSize) =>
        new(ns.Run(() => NetlinkSocket.Open(receiveBufferSize)));

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _socket.Dispose();
        }
    }

    /// <summary>Resets the writer and starts a request; caller holds <see cref="_lock"/>.</summary>
    private uint Begin(ushort type, ushort flags)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _writer.Reset();
        uint sequence = _socket.NextSequence();
        _writer.BeginMessage(type, (ushort)(MessageFlags.NLM_F_REQUEST | flags), sequence);
        return sequence;
    }

    /// <summary>Finishes the request begun by <see cref="Begin"/> and waits for its ACK.</summary>
    private bool Execute(uint sequence, in Op op, bool tolerateNotFound = false)
    {
        _writer.EndMessage();
        return _socket.Execute(_writer.WrittenSpan, sequence, op, tolerateNotFound);
    }

    /// <summary>Runs a dump, starting over when the kernel reports it inconsistent (NLM_F_DUMP_INTR).</summary>
    private List<T> Dump<T>(ushort type, Collector<T> collector, Action<NetlinkWriter, Collector<T>> writeBody, MessageHandler<Collector<T>> handler, in Op op)
    {
        lock (_lock)
        {
            for (int attempt = 1; ; attempt++)
            {
                uint sequence = Begin(type, MessageFlags.NLM_F_DUMP);
                writeBody(_writer, collector);
                _writer.EndMessage();
                if (_socket.Dump(_writer.WrittenSpan, sequence, collector, handler, op))
                {
                    return collector.Items;
                }
                collector.Items.Clear();
                if (attempt == MaxDumpAttempts)
                {
                    throw new NetlinkException(Errno.EBUSY, op.Operation, op.Describe(), $"dump interrupted {MaxDumpAttempts} times in a row");
                }
            }
        }
    }

    /// <summary>Result list plus the filters a dump applies on our side.</summary>
    private sealed class Collector<T>
    {
        public List<T> Items { get; } = [];
        public int? Index { get; init; }
        public byte Family { get; init; }
        public int? Table { get; init; }
    }

    private static void CheckIndex(int index, string paramName = "index")
    {
        if (index <= 0)
        {
            throw new ArgumentOutOfRangeException(paramName, index, "an ifindex is a positive number");
        }
    }
}
