using System.Net;
using System.Net.Sockets;

namespace Trellis.Store.Tests.Etcd;

/// <summary>
/// A <see cref="ClusterStoreOptions.ConnectSocket"/> that keeps every socket it makes, so a test
/// can cut a store's connections under it (as a network failure would) and hold back new ones.
/// </summary>
internal sealed class RecordingConnector
{
    private readonly Lock _gate = new();
    private readonly List<Socket> _sockets = [];
    private TaskCompletionSource _open = Opened();
    private int _connections;

    public int Connections => Volatile.Read(ref _connections);

    public async ValueTask<Socket> ConnectAsync(DnsEndPoint endpoint, CancellationToken ct)
    {
        Task open;
        lock (_gate)
        {
            open = _open.Task;
        }
        await open.WaitAsync(ct);
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endpoint, ct);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        lock (_gate)
        {
            _sockets.Add(socket);
        }
        Interlocked.Increment(ref _connections);
        return socket;
    }

    /// <summary>Shuts down every connection made so far: reads on them end, as when a peer vanishes.</summary>
    public void CutAll()
    {
        lock (_gate)
        {
            foreach (var socket in _sockets)
            {
                try
                {
                    socket.Shutdown(SocketShutdown.Both);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    // Already closed by its owner.
                }
            }
            _sockets.Clear();
        }
    }

    /// <summary>New connections wait until <see cref="Release"/>.</summary>
    public void Hold()
    {
        lock (_gate)
        {
            if (_open.Task.IsCompleted)
            {
                _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public void Release()
    {
        lock (_gate)
        {
            _open.TrySetResult();
        }
    }

    private static TaskCompletionSource Opened()
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.SetResult();
        return source;
    }
}
