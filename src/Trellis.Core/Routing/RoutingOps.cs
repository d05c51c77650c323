namespace Trellis.Core.Routing;

// One operation of a reconcile plan. Each prints as the iproute2 command with the same effect, which
// is also what the reconciler logs; the reconciler maps it onto the netlink call of the same name
// (LinkAdd, RouteReplace, NeighDel…), treating "already exists" on add and "not found" on delete as done.

public abstract record RoutingOp;

/// <summary><c>ip link add … type vxlan …</c>, then up.</summary>
public sealed record LinkAddOp(VxlanDeviceSpec Device) : RoutingOp
{
    public override string ToString() => $"ip link add {Device}";
}

/// <summary><c>ip link del NAME</c>: the kernel drops the device's addresses, routes, neighbours and FDB entries with it.</summary>
public sealed record LinkDeleteOp(string Name, string Reason) : RoutingOp
{
    public override string ToString() => $"ip link del {Name}  # {Reason}";
}

/// <summary><c>ip link set NAME mtu M address MAC up</c>: the attributes a VXLAN device lets us change in place.</summary>
public sealed record LinkSetOp(VxlanDeviceSpec Device, bool SetMtu, bool SetMac, bool SetUp) : RoutingOp
{
    public override string ToString() =>
        $"ip link set {Device.Name}{(SetMtu ? $" mtu {Device.Mtu}" : "")}{(SetMac ? $" address {Device.Mac}" : "")}{(SetUp ? (Device.Up ? " up" : " down") : "")}";
}

public sealed record AddressAddOp(AddressSpec Address) : RoutingOp
{
    public override string ToString() => $"ip addr add {Address}";
}

public sealed record AddressDeleteOp(AddressSpec Address) : RoutingOp
{
    public override string ToString() => $"ip addr del {Address}";
}

public sealed record RouteReplaceOp(RouteSpec Route) : RoutingOp
{
    public override string ToString() => $"ip route replace {Route}";
}

/// <summary>Deletes exactly the observed route (destination, gateway, device, protocol and metric), never a look-alike.</summary>
public sealed record RouteDeleteOp(RouteSpec Route) : RoutingOp
{
    public override string ToString() => $"ip route del {Route}";
}

public sealed record NeighReplaceOp(NeighSpec Neighbour) : RoutingOp
{
    public override string ToString() => $"ip neigh replace {Neighbour.Ip} lladdr {Neighbour.Mac} dev {Neighbour.Device} nud permanent";
}

public sealed record NeighDeleteOp(NeighSpec Neighbour) : RoutingOp
{
    public override string ToString() => $"ip neigh del {Neighbour.Ip} dev {Neighbour.Device}";
}

public sealed record FdbReplaceOp(FdbSpec Entry) : RoutingOp
{
    public override string ToString() => $"bridge fdb replace {Entry.Mac} dev {Entry.Device} dst {Entry.Destination} self permanent";
}

/// <summary>Deletes the entry for that MAC <em>and</em> destination (NDA_DST given), leaving other remotes of the MAC alone.</summary>
public sealed record FdbDeleteOp(FdbSpec Entry) : RoutingOp
{
    public override string ToString() => $"bridge fdb del {Entry.Mac} dev {Entry.Device} dst {Entry.Destination} self";
}

/// <summary>A desired route that a route Trellis does not own already occupies; it is left alone and reported.</summary>
public sealed record RouteConflict(RouteSpec Desired, RouteSpec Foreign)
{
    public override string ToString() =>
        $"route to {Desired.Destination} wanted via {Desired.Gateway} dev {Desired.Device}, but a route Trellis does not own (proto {Foreign.Protocol}: {Foreign}) holds it; left alone";
}

/// <summary>The operations that take the kernel from observed to desired, in a safe order, plus what could not be done.</summary>
public sealed record RoutingPlan(IReadOnlyList<RoutingOp> Ops, IReadOnlyList<RouteConflict> Conflicts)
{
    public bool IsEmpty => Ops.Count == 0;

    public string Dump()
    {
        var text = new System.Text.StringBuilder();
        foreach (var op in Ops)
        {
            text.Append(op).Append('\n');
        }
        foreach (var c in Conflicts)
        {
            text.Append("# conflict: ").Append(c).Append('\n');
        }
        return text.ToString();
    }
}
