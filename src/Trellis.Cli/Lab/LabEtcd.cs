using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Trellis.Core.Lab;
using Trellis.Model;
using Trellis.Netlink;
using Trellis.Store;

namespace Trellis.Cli.Lab;

/// <summary>One member of the lab's own etcd cluster: its name (etcd's --name), underlay address and data directory.</summary>
public sealed record LabEtcdMember(string Name, string Ip, string DataDir);

/// <summary>
/// `lab up --store etcd` (DESIGN.md §4): a 3-member etcd cluster on the lab's underlay, where node
/// namespaces reach it the way real nodes reach an etcd cluster. Members listen on extra addresses
/// of bridge ul0 (underlay .2, .3, .4: the outside host is .1 and nodes start at .11); the
/// supervisor runs them in the underlay netns and restarts a killed member on its own data dir.
/// Processes in the host netns reach them only through sockets created inside the underlay
/// (<see cref="Open"/>): the lab is never connected to the host.
/// </summary>
public static class LabEtcd
{
    public const int MemberCount = 3;
    public const int ClientPort = 2379;
    public const int PeerPort = 2380;

    /// <summary>The members for <paramref name="config"/>, or the reason there is no room for them on its underlay.</summary>
    public static (IReadOnlyList<LabEtcdMember> Members, string? Error) Plan(LabConfig config)
    {
        var members = new List<LabEtcdMember>();
        var broadcast = IPAddressMath.LastAddress(config.Underlay);
        for (int i = 1; i <= MemberCount; i++)
        {
            var ip = IPAddressMath.Add(config.Underlay.BaseAddress, 1 + i);
            if (!config.Underlay.Contains(ip) || ip.Equals(broadcast) || ip.Equals(config.OutsideIp)
                || config.Nodes.FirstOrDefault(n => n.Ip.Equals(ip)) is not null)
            {
                var taken = config.Nodes.FirstOrDefault(n => n.Ip.Equals(ip));
                return ([], $"store: etcd needs {MemberCount} free underlay addresses after the network address of {config.Underlay} (the outside host and nodes use the others), but {ip} is "
                    + (taken is not null ? $"node {taken.Name}'s" : ip.Equals(config.OutsideIp) ? "the outside IP" : "not a host address of the underlay"));
            }
            string name = $"etcd-{i.ToString(CultureInfo.InvariantCulture)}";
            members.Add(new LabEtcdMember(name, ip.ToString(), $"{LabLifecycle.StoreDir(config.Name)}/etcd/{name}"));
        }
        return (members, null);
    }

    public static string Url(IReadOnlyList<LabEtcdMember> members) =>
        "etcd://" + string.Join(',', members.Select(m => $"{m.Ip}:{ClientPort.ToString(CultureInfo.InvariantCulture)}"));

    /// <summary>The supervisor slot's node field for a member ("1" for etcd-1), so its log is etcd-1.log.</summary>
    public static string SlotNode(LabEtcdMember m) => m.Name["etcd-".Length..];

    /// <summary>The member's command line: etcd exec'd by nsenter inside the underlay netns (the recorded PID is etcd's).</summary>
    public static IReadOnlyList<string> Argv(LabState lab, LabEtcdMember m)
    {
        string cluster = string.Join(',', lab.EtcdMembers.Select(x => $"{x.Name}=http://{x.Ip}:{PeerPort.ToString(CultureInfo.InvariantCulture)}"));
        string client = $"http://{m.Ip}:{ClientPort.ToString(CultureInfo.InvariantCulture)}";
        string peer = $"http://{m.Ip}:{PeerPort.ToString(CultureInfo.InvariantCulture)}";
        return
        [
            "nsenter", "--net=" + LabNetwork.NetnsPath(lab.UnderlayNetns), "--", "etcd",
            "--name", m.Name,
            "--data-dir", m.DataDir,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            // Used only when the data dir is empty; a restarted member rejoins from its data.
            "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", "trellis-" + lab.Name,
            "--max-request-bytes", "2097152",
            // Fast elections: every member is on one bridge in one machine.
            "--heartbeat-interval", "50", "--election-timeout", "500", "--pre-vote",
            "--logger", "zap", "--log-outputs", "stderr",
        ];
    }

    /// <summary>
    /// Opens the lab's store from a process outside the underlay (the CLI in the host netns): when
    /// the lab runs its own etcd, every connection's socket is created inside the underlay netns.
    /// A sqlite store or an external etcd URL opens as usual.
    /// </summary>
    public static IClusterStore Open(LabState lab)
    {
        if (lab.EtcdMembers.Count == 0)
        {
            return ClusterStore.Open(lab.Store);
        }
        string underlay = LabNetwork.NetnsPath(lab.UnderlayNetns);
        return ClusterStore.Open(lab.Store, new ClusterStoreOptions
        {
            ConnectSocket = async (endpoint, ct) =>
            {
                Socket socket;
                using (var ns = NetNs.Open(underlay))
                {
                    socket = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                }
                try
                {
                    await socket.ConnectAsync(endpoint, ct).ConfigureAwait(false);
                    return socket;
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        });
    }

    /// <summary>Waits until the cluster answers a read (a leader is elected: reads carry hasleader).</summary>
    public static async Task WaitReadyAsync(LabState lab, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                await using var store = Open(lab);
                await store.GetAsync("/registry/namespaces/default", ct).ConfigureAwait(false);
                return;
            }
            catch (StoreUnavailableException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
            catch (StoreUnavailableException e)
            {
                throw new TimeoutException($"the lab's etcd ({lab.Store}) did not answer within {timeout.TotalSeconds:0}s (see {LabNames.LogDir(lab.Name)}/etcd-*.log): {e.Message}", e);
            }
        }
    }
}
