using System.Net;
using System.Net.Sockets;
using Trellis.Core.Cni;
using Trellis.Core.Ipam;
using Trellis.IpamStore;
using Trellis.Model;
using Trellis.Netlink;

namespace Trellis.Cni;

/// <summary>
/// The plugin's commands, in the shape of the reference plugins (cmdAdd/cmdDel/cmdCheck):
/// a node bridge holding the gateway, a veth pair per attachment with the host end on the
/// bridge, addresses from the built-in host-local IPAM. ADD undoes its partial work on failure;
/// DEL tolerates everything already being gone; GC removes what killed invocations left.
/// </summary>
internal sealed partial class BridgePlugin
{
    private readonly NetConf _conf;
    private readonly CniEnvironment _env;
    private readonly IpamDiskStore _store;

    public BridgePlugin(NetConf conf, CniEnvironment env)
    {
        _conf = conf;
        _env = env;
        _store = new IpamDiskStore(conf.Ipam.DataDir, conf.Name);
    }

    public CniResult? Run() => _env.Command switch
    {
        CniCommand.Add => Add(),
        CniCommand.Del => Del(),
        CniCommand.Check => Check(),
        CniCommand.Status => Status(),
        CniCommand.Gc => Gc(),
        _ => throw new CniException(CniErrorCode.InvalidEnvironment, $"CNI_COMMAND: '{_env.Command}' is not handled"),
    };

    /// <summary>
    /// How long an invocation waits for the node's IPAM lock before answering "try again later"
    /// (error 11). Every holder keeps it for about a millisecond, so seconds of waiting mean
    /// something is wrong (a stuck filesystem); TRELLIS_CNI_LOCK_TIMEOUT_MS overrides it.
    /// </summary>
    private static TimeSpan LockTimeout =>
        Environment.GetEnvironmentVariable("TRELLIS_CNI_LOCK_TIMEOUT_MS") is { } ms && int.TryParse(ms, out int v) && v > 0
            ? TimeSpan.FromMilliseconds(v)
            : TimeSpan.FromSeconds(20);

    private IDisposable LockStore()
    {
        try
        {
            return _store.Lock(LockTimeout);
        }
        catch (TimeoutException e)
        {
            throw new CniException(CniErrorCode.TryAgainLater, $"ipam.dataDir: {e.Message}");
        }
    }

    private string HostVeth => HostVethName.For(_conf.Name, _env.ContainerId!, _env.IfName!);

    private static NetNs OpenContainerNetNs(string path)
    {
        try
        {
            return NetNs.Open(path);
        }
        catch (NetlinkException e) when (e.IsNotFound)
        {
            throw new CniException(CniErrorCode.UnknownContainer, $"CNI_NETNS: network namespace '{path}' does not exist");
        }
        catch (NetlinkException e)
        {
            // ENOTDIR, ENAMETOOLONG, EACCES, not a namespace file…: the variable is unusable.
            throw new CniException(CniErrorCode.InvalidEnvironment, $"CNI_NETNS: cannot open '{path}': {e.ErrnoName}");
        }
    }

    private static CniException Fail(string what, NetlinkException e) =>
        new(CniErrorCode.IoFailure, $"{what}: {e.Message}");
}
