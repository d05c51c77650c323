using Trellis.Netlink.Codec;
using Trellis.Netlink.Wire;

namespace Trellis.Netlink;

public sealed partial class RtNetlink
{
    /// <summary>Flags of every "ip link add": fail with EEXIST rather than touch an existing link.</summary>
    private const ushort Create = MessageFlags.NLM_F_ACK | MessageFlags.NLM_F_CREATE | MessageFlags.NLM_F_EXCL;

    private static readonly MessageHandler<Collector<Link>> s_collectLink = static (in NetlinkMessage message, Collector<Link> collector) =>
    {
        if (message.Type == MessageType.RTM_NEWLINK)
        {
            collector.Items.Add(LinkCodec.Decode(message));
        }
    };

    /// <summary><c>ip link show</c></summary>
    public IReadOnlyList<Link> LinkList() =>
        Dump(MessageType.RTM_GETLINK, new Collector<Link>(), static (w, _) => LinkCodec.WriteGet(w, 0, null), s_collectLink, new Op(MessageType.RTM_GETLINK, "links"));

    /// <summary><c>ip link show dev NAME</c>; null when there is no such link.</summary>
    public Link? LinkGetByName(string name)
    {
        InterfaceName.Validate(name, nameof(name));
        return GetLink(0, name, new Op(MessageType.RTM_GETLINK, "link", Name: name));
    }

    /// <summary><c>ip link show</c> for one ifindex; null when there is no such link.</summary>
    public Link? LinkGetByIndex(int index)
    {
        CheckIndex(index);
        return GetLink(index, null, new Op(MessageType.RTM_GETLINK, "link", Index: index));
    }

    /// <summary><c>ip link add NAME type veth peer name PEER [netns NS]</c>; returns the local end.</summary>
    public Link LinkAddVeth(string name, string peerName, VethOptions? options = null)
    {
        InterfaceName.Validate(name, nameof(name));
        InterfaceName.Validate(peerName, nameof(peerName));
        var op = new Op(MessageType.RTM_NEWLINK, "veth", Name: name, Peer: peerName);
        var peerNs = options?.PeerNetNs?.Handle;
        bool referenced = false;
        try
        {
            // Keep the namespace fd open until the kernel has read it.
            peerNs?.DangerousAddRef(ref referenced);
            int peerFd = peerNs is null ? -1 : (int)peerNs.DangerousGetHandle();
            lock (_lock)
            {
                uint sequence = Begin(MessageType.RTM_NEWLINK, Create);
                LinkCodec.WriteVeth(_writer, name, peerName, options, peerFd);
                Execute(sequence, op);
            }
        }
        finally
        {
            if (referenced)
            {
                peerNs!.DangerousRelease();
            }
        }
        var link = Created(name, op);
        if (options?.Alias is { } alias)
        {
            // rtnl_newlink ignores IFLA_IFALIAS (only do_setlink applies it), so the alias
            // needs its own RTM_SETLINK.
            LinkSetAlias(link.Index, alias);
            link = link with { Alias = alias.Length == 0 ? null : alias };
        }
        return link;
    }

    /// <summary><c>ip link add NAME type bridge [vlan_filtering 0|1] [forward_delay N]</c></summary>
    public Link LinkAddBridge(string name, BridgeOptions? options = null)
    {
        InterfaceName.Validate(name, nameof(name));
        var op = new Op(MessageType.RTM_NEWLINK, "bridge", Name: name);
        lock (_lock)
        {
            uint sequence = Begin(MessageType.RTM_NEWLINK, Create);
            LinkCodec.WriteBridge(_writer, name, options);
            Execute(sequence, op);
        }
        return Created(name, op);
    }

    /// <summary><c>ip link add NAME type vxlan id VNI dstport PORT [local IP] [dev DEV] [nolearning] [ttl N]</c></summary>
    public Link LinkAddVxlan(string name, VxlanOptions options)
    {
        InterfaceName.Validate(name, nameof(name));
        ArgumentNullException.ThrowIfNull(options);
        if (options.Vni is < 0 or > 0xffffff)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Vni, "a VNI is 24 bits");
        }
        if (options.Port is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Port, "not a UDP port");
        }
        var op = new Op(MessageType.RTM_NEWLINK, "vxlan", Name: name);
        lock (_lock)
        {
            uint sequence = Begin(MessageType.RTM_NEWLINK, Create);
            LinkCodec.WriteVxlan(_writer, name, options);
            Execute(sequence, op);
        }
        return Created(name, op);
    }

    /// <summary><c>ip link set dev X up</c></summary>
    public void LinkSetUp(int index) => SetFlags(index, Ifla.IFF_UP, "up");

    /// <summary><c>ip link set dev X down</c></summary>
    public void LinkSetDown(int index) => SetFlags(index, 0, "down");

    /// <summary><c>ip link set dev X mtu N</c></summary>
    public void LinkSetMtu(int index, int mtu)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mtu);
        lock (_lock)
        {
            uint sequence = BeginSetLink(index);
            _writer.WriteU32(Ifla.IFLA_MTU, (uint)mtu);
            Execute(sequence, new Op(MessageType.RTM_SETLINK, "link", Index: index, Detail: "set mtu"));
        }
    }

    /// <summary><c>ip link set dev X address MAC</c></summary>
    public void LinkSetMac(int index, byte[] mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        lock (_lock)
        {
            uint sequence = BeginSetLink(index);
            _writer.WriteAttribute(Ifla.IFLA_ADDRESS, mac);
            Execute(sequence, new Op(MessageType.RTM_SETLINK, "link", Index: index, Detail: "set address"));
        }
    }

    /// <summary><c>ip link set dev X master BRIDGE</c></summary>
    public void LinkSetMaster(int index, int masterIndex)
    {
        CheckIndex(masterIndex, nameof(masterIndex));
        SetMaster(index, masterIndex, "set master");
    }

    /// <summary><c>ip link set dev X nomaster</c></summary>
    public void LinkSetNoMaster(int index) => SetMaster(index, 0, "set nomaster");

    /// <summary>
    /// <c>ip link set dev X name NEW</c>. The kernel refuses (EBUSY) to rename a link that is
    /// up, unless the driver allows live renames; bring it down first.
    /// </summary>
    public void LinkSetName(int index, string name)
    {
        InterfaceName.Validate(name, nameof(name));
        lock (_lock)
        {
            uint sequence = BeginSetLink(index);
            _writer.WriteString(Ifla.IFLA_IFNAME, name);
            Execute(sequence, new Op(MessageType.RTM_SETLINK, "link", Index: index, Detail: "rename to '" + name + "'"));
        }
    }

    /// <summary><c>ip link set dev X alias TEXT</c>; an empty alias removes it.</summary>
    public void LinkSetAlias(int index, string alias)
    {
        ArgumentNullException.ThrowIfNull(alias);
        lock (_lock)
        {
            uint sequence = BeginSetLink(index);
            _writer.WriteString(Ifla.IFLA_IFALIAS, alias);
            Execute(sequence, new Op(MessageType.RTM_SETLINK, "link", Index: index, Detail: "set alias"));
        }
    }

    /// <summary><c>ip link set dev X netns NS</c>; the link keeps its name and gets a new ifindex only on a clash.</summary>
    public void LinkSetNetNs(int index, NetNs ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        var handle = ns.Handle;
        bool referenced = false;
        try
        {
            handle.DangerousAddRef(ref referenced);
            lock (_lock)
            {
                uint sequence = BeginSetLink(index);
                _writer.WriteU32(Ifla.IFLA_NET_NS_FD, (uint)(int)handle.DangerousGetHandle());
                Execute(sequence, new Op(MessageType.RTM_SETLINK, "link", Index: index, Detail: "move to " + ns));
            }
        }
        finally
        {
            if (referenced)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary><c>bridge link set dev X hairpin on|off</c>: let a bridge port send frames back out the port they came in on.</summary>
    public void LinkSetBridgePortHairpin(int index, bool on)
    {
        CheckIndex(index);
        lock (_lock)
        {
            uint sequence = Begin(MessageType.RTM_SETLINK, MessageFlags.NLM_F_ACK);
            // AF_BRIDGE routes the request to the port's master (br_setlink).
            LinkCodec.WriteHeader(_writer, index, AddressFamilies.AF_BRIDGE);
            // NLA_F_NESTED matters: br_setlink reads an IFLA_PROTINFO without it as the legacy
            // single-byte port state, not as nested IFLA_BRPORT_* attributes.
            int protinfo = _writer.BeginNested(Ifla.IFLA_PROTINFO | AttributeFlags.NLA_F_NESTED);
            _writer.WriteU8(Ifla.IFLA_BRPORT_MODE, on ? (byte)1 : (byte)0);
            _writer.EndNested(protinfo);
            Execute(sequence, new Op(MessageType.RTM_SETLINK, "bridge port", Index: index, Detail: on ? "hairpin on" : "hairpin off"));
        }
    }

    /// <summary><c>ip link del dev X</c> (a veth takes its peer with it).</summary>
    public void LinkDel(int index)
    {
        CheckIndex(index);
        lock (_lock)
        {
            uint sequence = Begin(MessageType.RTM_DELLINK, MessageFlags.NLM_F_ACK);
            LinkCodec.WriteHeader(_writer, index);
            Execute(sequence, new Op(MessageType.RTM_DELLINK, "link", Index: index));
        }
    }

    /// <summary><c>ip link del NAME</c>; false when there is no such link.</summary>
    public bool LinkDelByName(string name)
    {
        InterfaceName.Validate(name, nameof(name));
        lock (_lock)
        {
            uint sequence = Begin(MessageType.RTM_DELLINK, MessageFlags.NLM_F_ACK);
            LinkCodec.WriteHeader(_writer, 0);
            _writer.WriteString(Ifla.IFLA_IFNAME, name);
            return Execute(sequence, new Op(MessageType.RTM_DELLINK, "link", Name: name), tolerateNotFound: true);
        }
    }

    private Link? GetLink(int index, string? name, in Op op)
    {
        lock (_lock)
        {
            uint sequence = Begin(MessageType.RTM_GETLINK, 0);
            LinkCodec.WriteGet(_writer, index, name);
            _writer.EndMessage();
            var collector = new Collector<Link>();
            return _socket.Get(_writer.WrittenSpan, sequence, collector, s_collectLink, op) && collector.Items.Count == 1
                ? collector.Items[0]
                : null;
        }
    }

    /// <summary>Reads back a link just created, for its ifindex and kernel-chosen settings.</summary>
    private Link Created(string name, in Op op) =>
        LinkGetByName(name)
        ?? throw new NetlinkException(Errno.ENODEV, op.Operation, op.Describe(), "created, but gone before it could be read back");

    private uint BeginSetLink(int index, uint flags = 0, uint change = 0)
    {
        CheckIndex(index);
        uint sequence = Begin(MessageType.RTM_SETLINK, MessageFlags.NLM_F_ACK);
        LinkCodec.WriteHeader(_writer, index, AddressFamilies.AF_UNSPEC, flags, change);
        return sequence;
    }

    private void SetFlags(int index, uint flags, string detail)
    {
        lock (_lock)
        {
            // ifi_change masks which bits of ifi_flags apply, so only IFF_UP is touched.
            uint sequence = BeginSetLink(index, flags, Ifla.IFF_UP);
            Execute(sequence, new Op(MessageType.RTM_SETLINK, "link", Index: index, Detail: detail));
        }
    }

    private void SetMaster(int index, int masterIndex, string detail)
    {
        lock (_lock)
        {
            uint sequence = BeginSetLink(index);
            _writer.WriteU32(Ifla.IFLA_MASTER, (uint)masterIndex);
            Execute(sequence, new Op(MessageType.RTM_SETLINK, "link", Index: index, Detail: detail));
        }
    }
}
