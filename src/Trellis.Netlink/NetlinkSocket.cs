using System.Runtime.InteropServices;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink;

/// <summary>Called for each reply message of a dump or get; state carries the caller's result list and filters.</summary>
internal delegate void MessageHandler<TState>(in NetlinkMessage message, TState state);

/// <summary>
/// A NETLINK_ROUTE socket with synchronous request/reply: every request carries a fresh
/// sequence number and replies with any other number (left over from an earlier request that
/// failed half-way) are skipped, so one socket can be reused for any number of requests.
/// Not thread-safe: <see cref="RtNetlink"/> serialises access.
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    private const int ReceiveBufferSize = 64 * 1024;
    private const int ReceiveTimeoutSeconds = 30;
    private const int MaxTruncationRetries = 2;

    private readonly FileDescriptorHandle _fd;
    private byte[] _receiveBuffer;
    private uint _sequence;

    private NetlinkSocket(FileDescriptorHandle fd, uint portId, int receiveBufferSize)
    {
        _fd = fd;
        PortId = portId;
        _receiveBuffer = new byte[receiveBufferSize];
    }

    public uint PortId { get; }

    /// <summary>Opens a socket in the calling thread's network namespace.</summary>
    /// <param name="receiveBufferSize">Initial receive buffer; tests shrink it to exercise truncation.</param>
    public static NetlinkSocket Open(int receiveBufferSize = ReceiveBufferSize)
    {
        int raw = Interop.Socket(NetlinkProtocol.AF_NETLINK, Interop.SOCK_RAW | Interop.SOCK_CLOEXEC, NetlinkProtocol.NETLINK_ROUTE);
        if (raw < 0)
        {
            throw new NetlinkException(Marshal.GetLastPInvokeError(), "socket", "AF_NETLINK/NETLINK_ROUTE");
        }
        var fd = new FileDescriptorHandle(raw);
        try
        {
            // Extended acks give "why" text with errors; capped acks keep an error reply from
            // echoing our whole request back; strict checking makes the kernel reject garbage in
            // dump headers and honour the filters we put there (ifindex, table).
            SetOption(fd, NetlinkProtocol.SOL_NETLINK, NetlinkProtocol.NETLINK_EXT_ACK, 1, required: false);
            SetOption(fd, NetlinkProtocol.SOL_NETLINK, NetlinkProtocol.NETLINK_CAP_ACK, 1, required: false);
            SetOption(fd, NetlinkProtocol.SOL_NETLINK, NetlinkProtocol.NETLINK_GET_STRICT_CHK, 1, required: false);
            var timeout = new Interop.TimeVal { Seconds = ReceiveTimeoutSeconds };
            if (Interop.SetSockOpt(fd, Interop.SOL_SOCKET, Interop.SO_RCVTIMEO, &timeout, sizeof(Interop.TimeVal)) != 0)
            {
                throw new NetlinkException(Marshal.GetLastPInvokeError(), "setsockopt", "SO_RCVTIMEO");
            }

            var address = new Interop.SockAddrNetlink { Family = NetlinkProtocol.AF_NETLINK };
            if (Interop.Bind(fd, &address, sizeof(Interop.SockAddrNetlink)) != 0)
            {
                throw new NetlinkException(Marshal.GetLastPInvokeError(), "bind", "AF_NETLINK socket");
            }
            int length = sizeof(Interop.SockAddrNetlink);
            if (Interop.GetSockName(fd, &address, &length) != 0)
            {
                throw new NetlinkException(Marshal.GetLastPInvokeError(), "getsockname", "AF_NETLINK socket");
            }
            return new NetlinkSocket(fd, address.PortId, receiveBufferSize);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    public uint NextSequence() => ++_sequence;

    private static void SetOption(FileDescriptorHandle fd, int level, int name, int value, bool required)
    {
        if (Interop.SetSockOpt(fd, level, name, &value, sizeof(int)) != 0 && required)
        {
            throw new NetlinkException(Marshal.GetLastPInvokeError(), "setsockopt", $"level {level} option {name}");
        }
    }

    public void Dispose() => _fd.Dispose();

    /// <summary>Sends a request and waits for its ACK; an NLMSG_ERROR becomes a <see cref="NetlinkException"/>.</summary>
    public void Execute(ReadOnlySpan<byte> request, uint sequence, in Op op) =>
        Execute(request, sequence, op, tolerateNotFound: false);

    /// <summary>
    /// As <see cref="Execute(ReadOnlySpan{byte}, uint, in Op)"/>, but with
    /// <paramref name="tolerateNotFound"/> a "not found" errno returns false instead of
    /// throwing: "delete if present" is an expected outcome and should not cost an exception.
    /// </summary>
    public bool Execute(ReadOnlySpan<byte> request, uint sequence, in Op op, bool tolerateNotFound)
    {
        Send(request, op);
        while (true)
        {
            if (Receive(op, dontWait: false, out var datagram) == Received.Truncated)
            {
                // An ack is a few dozen bytes (capped), so this cannot be our answer arriving cut.
                throw new NetlinkException(Errno.EMSGSIZE, op.Operation, op.Describe(), "reply truncated");
            }
            var reader = new NetlinkMessageReader(datagram);
            while (reader.TryRead(out var message))
            {
                if (message.Sequence != sequence)
                {
                    continue;
                }
                if (message.Type == MessageType.NLMSG_ERROR)
                {
                    var error = ErrorOf(message, op);
                    if (error is null)
                    {
                        return true;
                    }
                    if (tolerateNotFound && error.IsNotFound)
                    {
                        return false;
                    }
                    throw error;
                }
                // Anything else with our sequence (an NLM_F_ECHO copy) is not the answer; keep reading.
            }
        }
    }

    /// <summary>
    /// Sends a GET for one object and hands its reply to <paramref name="handler"/>. Returns
    /// false when the kernel answers "not found" (ENODEV, ENOENT, ...); other errors throw.
    /// </summary>
    public bool Get<TState>(ReadOnlySpan<byte> request, uint sequence, TState state, MessageHandler<TState> handler, in Op op)
    {
        Send(request, op);
        int attempts = 0;
        while (true)
        {
            if (Receive(op, dontWait: false, out var datagram) == Received.Truncated)
            {
                // The reply did not fit; the buffer has grown, so ask again under a new sequence.
                if (++attempts > MaxTruncationRetries)
                {
                    throw new NetlinkException(Errno.EMSGSIZE, op.Operation, op.Describe(), "reply truncated");
                }
                byte[] again = request.ToArray();
                sequence = NextSequence();
                MemoryMarshal.Write(again.AsSpan(8), in sequence);
                Send(again, op);
                continue;
            }
            var reader = new NetlinkMessageReader(datagram);
            while (reader.TryRead(out var message))
            {
                if (message.Sequence != sequence)
                {
                    continue;
                }
                if (message.Type == MessageType.NLMSG_ERROR)
                {
                    var error = ErrorOf(message, op);
                    if (error is null || error.IsNotFound)
                    {
                        return false;
                    }
                    throw error;
                }
                handler(message, state);
                return true;
            }
        }
    }

    /// <summary>
    /// Sends a dump request and feeds every reply message to <paramref name="handler"/> until
    /// NLMSG_DONE. Returns false when the kernel flagged the dump inconsistent
    /// (NLM_F_DUMP_INTR: the table changed while it was being walked); the caller retries.
    /// </summary>
    public bool Dump<TState>(ReadOnlySpan<byte> request, uint sequence, TState state, MessageHandler<TState> handler, in Op op)
    {
        Send(request, op);
        bool consistent = true;
        bool finished = false;
        try
        {
            while (true)
            {
                if (Receive(op, dontWait: false, out var datagram) == Received.Truncated)
                {
                    // Part of the dump is lost and the buffer has grown: report it like an
                    // interrupted dump so the caller starts over.
                    return false;
                }
                var reader = new NetlinkMessageReader(datagram);
                while (reader.TryRead(out var message))
                {
                    if (message.Sequence != sequence)
                    {
                        continue;
                    }
                    if ((message.Flags & MessageFlags.NLM_F_DUMP_INTR) != 0)
                    {
                        consistent = false;
                    }
                    switch (message.Type)
                    {
                        case MessageType.NLMSG_DONE:
                        case MessageType.NLMSG_ERROR:
                            // A dump that fails after it started reports the error in NLMSG_DONE's payload.
                            var error = ErrorOf(message, op);
                            if (error is not null)
                            {
                                finished = !error.IsMalformed;
                                throw error;
                            }
                            if (message.Type == MessageType.NLMSG_DONE)
                            {
                                finished = true;
                                return consistent;
                            }
                            break;
                        case MessageType.NLMSG_NOOP:
                            break;
                        case MessageType.NLMSG_OVERRUN:
                            throw new NetlinkException(Errno.ENOBUFS, op.Operation, op.Describe(), "NLMSG_OVERRUN");
                        default:
                            handler(message, state);
                            break;
                    }
                }
            }
        }
        finally
        {
            if (!finished)
            {
                DrainDump(sequence);
            }
        }
    }

    private void Send(ReadOnlySpan<byte> request, in Op op)
    {
        var kernel = new Interop.SockAddrNetlink { Family = NetlinkProtocol.AF_NETLINK };
        fixed (byte* p = request)
        {
            while (true)
            {
                nint sent = Interop.SendTo(_fd, p, (nuint)request.Length, 0, &kernel, sizeof(Interop.SockAddrNetlink));
                if (sent >= 0)
                {
                    return;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                {
                    throw new NetlinkException(errno, op.Operation, op.Describe(), "sendto failed");
                }
            }
        }
    }

    private enum Received
    {
        Datagram,
        Truncated,
        WouldBlock,
    }

    /// <summary>
    /// Receives one datagram from the kernel into the reusable buffer. MSG_TRUNC makes recvfrom
    /// return the datagram's real length: if it did not fit, the buffer grows and the caller
    /// hears <see cref="Received.Truncated"/> rather than getting a silently cut reply (the
    /// kernel caps dump chunks at 32 KiB, so with 64 KiB this takes a single huge object).
    /// </summary>
    private Received Receive(in Op op, bool dontWait, out ReadOnlySpan<byte> datagram)
    {
        datagram = default;
        int flags = Interop.MSG_TRUNC | (dontWait ? Interop.MSG_DONTWAIT : 0);
        while (true)
        {
            var from = default(Interop.SockAddrNetlink);
            int fromLength = sizeof(Interop.SockAddrNetlink);
            nint received;
            fixed (byte* p = _receiveBuffer)
            {
                received = Interop.RecvFrom(_fd, p, (nuint)_receiveBuffer.Length, flags, &from, &fromLength);
            }
            if (received < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR)
                {
                    continue;
                }
                if (errno == Errno.EAGAIN)
                {
                    return dontWait
                        ? Received.WouldBlock
                        : throw new NetlinkException(Errno.ETIMEDOUT, op.Operation, op.Describe(), $"no reply within {ReceiveTimeoutSeconds} s");
                }
                throw new NetlinkException(errno, op.Operation, op.Describe(), "recvfrom failed");
            }
            if (from.PortId != 0)
            {
                continue; // not from the kernel
            }
            if (received > _receiveBuffer.Length)
            {
                _receiveBuffer = new byte[Headers.Align((int)Math.Min(received, int.MaxValue - 3))];
                return Received.Truncated;
            }
            datagram = _receiveBuffer.AsSpan(0, (int)received);
            return Received.Datagram;
        }
    }

    /// <summary>
    /// Reads an abandoned dump to its end. The kernel runs one dump per socket and answers a
    /// new dump request with EBUSY while an old one is unfinished; it builds each next chunk
    /// inside recvmsg, so reading without blocking until NLMSG_DONE (or nothing is left)
    /// drains it. Best effort: it runs on failure paths and must not throw.
    /// </summary>
    private void DrainDump(uint sequence)
    {
        var op = new Op(MessageType.NLMSG_DONE, "abandoned dump");
        try
        {
            while (true)
            {
                var status = Receive(op, dontWait: true, out var datagram);
                if (status == Received.WouldBlock)
                {
                    return;
                }
                if (status == Received.Truncated)
                {
                    continue;
                }
                var reader = new NetlinkMessageReader(datagram);
                while (reader.TryRead(out var message))
                {
                    if (message.Sequence == sequence && message.Type is MessageType.NLMSG_DONE or MessageType.NLMSG_ERROR)
                    {
                        return;
                    }
                }
            }
        }
        catch (NetlinkException)
        {
            // A damaged leftover or a socket error: the next request reports what matters.
        }
    }

    /// <summary>
    /// The error an NLMSG_ERROR or NLMSG_DONE reply carries (a negative errno in its first four
    /// bytes), or null for an ACK / a clean end of dump.
    /// </summary>
    internal static NetlinkException? ErrorOf(in NetlinkMessage message, in Op op)
    {
        if (message.Payload.Length < 4)
        {
            // An NLMSG_DONE from a very old kernel may have no payload; an NLMSG_ERROR must.
            return message.Type == MessageType.NLMSG_DONE
                ? null
                : NetlinkException.Malformed($"NLMSG_ERROR payload of {message.Payload.Length} bytes");
        }
        int status = MemoryMarshal.Read<int>(message.Payload);
        if (status >= 0)
        {
            return null;
        }
        int errno = status == int.MinValue ? int.MaxValue : -status;
        return new NetlinkException(errno, op.Operation, op.Describe(), ExtendedAckMessage(message));
    }

    /// <summary>
    /// Finds NLMSGERR_ATTR_MSG in an error/done reply. The TLVs follow the errno and, for
    /// NLMSG_ERROR, the echoed request header (the whole request unless the ack was capped).
    /// Best effort: a damaged TLV area must not hide the errno itself.
    /// </summary>
    internal static string? ExtendedAckMessage(in NetlinkMessage message)
    {
        if ((message.Flags & MessageFlags.NLM_F_ACK_TLVS) == 0)
        {
            return null;
        }
        var payload = message.Payload;
        int offset = 4;
        if (message.Type == MessageType.NLMSG_ERROR)
        {
            if (payload.Length < 4 + Headers.NlMsgHdrSize)
            {
                return null;
            }
            uint echoedLength = MemoryMarshal.Read<uint>(payload.Slice(4));
            offset += (message.Flags & MessageFlags.NLM_F_CAPPED) != 0 ? Headers.NlMsgHdrSize : Headers.Align((int)Math.Min(echoedLength, int.MaxValue - 3));
        }
        if (offset > payload.Length)
        {
            return null;
        }
        try
        {
            var attributes = new AttributeReader(payload.Slice(offset));
            while (attributes.TryRead(out var attribute))
            {
                if (attribute.Type == NlmsgErrAttr.NLMSGERR_ATTR_MSG)
                {
                    return attribute.GetString();
                }
            }
        }
        catch (NetlinkException e) when (e.IsMalformed)
        {
        }
        return null;
    }
}
