using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Trellis.Bgp.Fsm;
using Trellis.Bgp.Wire;

namespace Trellis.Bgp.Session;

/// <summary>
/// A TCP connection feeding an FSM: a read loop that cuts the stream into messages, and a write loop
/// draining a queue so the FSM (which sends under its lock) never blocks on a slow peer.
/// </summary>
internal sealed class SocketTransport : IBgpTransport
{
    private readonly Socket _socket;
    private readonly Channel<byte[]> _outbox = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
    private BgpFsm? _fsm;
    private int _closed;

    public SocketTransport(Socket socket, bool outgoing)
    {
        _socket = socket;
        IsOutgoing = outgoing;
        LocalAddress = (socket.LocalEndPoint as IPEndPoint)?.Address is { } a && a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : (socket.LocalEndPoint as IPEndPoint)?.Address;
        Description = $"{(outgoing ? "to" : "from")} {socket.RemoteEndPoint}";
    }

    public bool IsOutgoing { get; }

    public string Description { get; }

    public IPAddress? LocalAddress { get; }

    public void Start(BgpFsm fsm)
    {
        _fsm = fsm;
        _ = Task.Run(WriteLoopAsync);
        _ = Task.Run(ReadLoopAsync);
    }

    public void Send(byte[] message) => _outbox.Writer.TryWrite(message);

    public void Close() => _outbox.Writer.TryComplete();

    private async Task WriteLoopAsync()
    {
        try
        {
            var batch = new List<ArraySegment<byte>>();
            while (await _outbox.Reader.WaitToReadAsync().ConfigureAwait(false))
            {
                batch.Clear();
                while (batch.Count < 256 && _outbox.Reader.TryRead(out var message))
                {
                    batch.Add(message);
                }
                await _socket.SendAsync(batch, SocketFlags.None).ConfigureAwait(false);
            }
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The read loop reports the loss; nothing more to send on a dead connection.
        }
        finally
        {
            Dispose();
        }
    }

    private async Task ReadLoopAsync()
    {
        var fsm = _fsm!;
        byte[] buffer = new byte[64 * 1024];
        int filled = 0;
        string reason = "closed by peer";
        try
        {
            while (true)
            {
                int n = await _socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }
                filled += n;
                int offset = 0;
                while (filled - offset >= BgpHeader.Length)
                {
                    int length;
                    try
                    {
                        length = BgpHeader.Parse(buffer.AsSpan(offset, BgpHeader.Length)).Length;
                    }
                    catch (BgpMessageException e)
                    {
                        fsm.ProtocolError(this, e.Error, e.Message);
                        return;
                    }
                    if (filled - offset < length)
                    {
                        break;
                    }
                    fsm.MessageReceived(this, buffer.AsSpan(offset, length));
                    offset += length;
                }
                if (offset > 0)
                {
                    buffer.AsSpan(offset, filled - offset).CopyTo(buffer);
                    filled -= offset;
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            reason = e.Message;
        }
        fsm.ConnectionClosed(this, reason);
        Dispose();
    }

    private void Dispose()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            _outbox.Writer.TryComplete();
            _socket.Dispose();
        }
    }
}
