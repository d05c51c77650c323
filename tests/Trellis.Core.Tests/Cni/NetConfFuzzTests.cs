using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;
using Trellis.Core.Cni;
using Trellis.Core.Ipam;
using Trellis.Model;

namespace Trellis.Core.Tests.Cni;

/// <summary>
/// Mutates valid configurations (structurally and byte-wise) and demands that parsing either yields
/// a configuration that keeps every invariant the allocator relies on, or fails with a
/// <see cref="CniException"/> carrying a spec code. Any other exception is a bug.
/// </summary>
public class NetConfFuzzTests
{
    private const int Iterations = 12_000;

    private static readonly (string Json, CniCommand Command)[] s_bases =
    [
        (Json.Base, CniCommand.Add),
        ("""{"cniVersion":"0.3.1","name":"legacy","type":"bridge","bridge":"cni0","isDefaultGateway":true,"ipam":{"type":"host-local","subnet":"10.1.0.0/16","rangeStart":"10.1.1.10","rangeEnd":"10.1.1.50","gateway":"10.1.0.1","routes":[{"dst":"0.0.0.0/0"},{"dst":"10.96.0.0/12","gw":"10.1.0.1"}]}}""", CniCommand.Add),
        ("""{"cniVersion":"1.0.0","name":"dual","type":"trellis-cni","mtu":1500,"ipam":{"ranges":[[{"subnet":"10.244.1.0/25"},{"subnet":"10.244.1.128/25","rangeStart":"10.244.1.130","rangeEnd":"10.244.1.140","gateway":"10.244.1.129"}],[{"subnet":"fd00:10:244:1::/64","gateway":"fd00:10:244:1::1"}]],"routes":[{"dst":"::/0"},{"dst":"0.0.0.0/0"}],"dataDir":"/run/trellis/ipam"},"dns":{"nameservers":["10.96.0.10","fd00::a"],"domain":"cluster.local","search":["svc.cluster.local"],"options":["ndots:5"]}}""", CniCommand.Del),
        ("""{"cniVersion":"0.4.0","name":"chk","type":"trellis-cni","ipam":{"ranges":[[{"subnet":"192.168.0.0/30"}]]},"prevResult":{"cniVersion":"0.4.0","interfaces":[{"name":"trellis0","mac":"0a:58:c0:a8:00:01"},{"name":"eth0","mac":"0a:58:c0:a8:00:02","sandbox":"/run/netns/x"}],"ips":[{"version":"4","address":"192.168.0.2/30","gateway":"192.168.0.1","interface":1}],"routes":[{"dst":"0.0.0.0/0","gw":"192.168.0.1"}],"dns":{}}}""", CniCommand.Check),
        ("""{"cniVersion":"1.1.0","name":"gc","type":"trellis-cni","ipam":{"ranges":[[{"subnet":"10.244.2.0/24"}]]},"cni.dev/valid-attachments":[{"containerID":"3f6940ab5ab4","ifname":"eth0"}],"cni.dev/attachments":[{"containerID":"3f6940ab5ab4","ifname":"eth0"}]}""", CniCommand.Gc),
        ("""{"cniVersion":"1.1.0","name":"rt","type":"trellis-cni","hairpinMode":true,"ipam":{"ranges":[[{"subnet":"10.244.3.0/24","rangeStart":"10.244.3.100"}]]},"runtimeConfig":{"mac":"0a:58:0a:f4:03:09","ips":["10.244.3.9/24"],"ipRanges":[[{"subnet":"10.99.0.0/28"}]]},"args":{"cni":{"ips":["10.244.3.8"],"mac":"0a:58:0a:f4:03:08"}},"prevResult":{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mtu":1500}],"ips":[{"address":"10.244.3.9/24","interface":0}],"routes":[{"dst":"0.0.0.0/0","table":100,"scope":0,"priority":5}]}}""", CniCommand.Status),
    ];

    private static readonly string[] s_strings =
    [
        "", " ", "0.0.0.0/0", "::/0", "10.244.1.0/24", "10.244.1.0/31", "10.244.1.0/32", "10.244.1.1", "10.244.1.255", "10.244.1.0",
        "10.244.1.300", "010.244.1.1", "0x0a.0.0.1", "10.1", "fd00::1", "fd00::/127", "fd00:10:244:1::/64", "[::1]", "fe80::1%eth0",
        "::ffff:10.244.1.5", "10.244.1.5/24", "10.244.1.5/33", "10.244.1.5/-1", "0a:58:0a:f4:01:05", "ff:ff:ff:ff:ff:ff",
        "00:00:00:00:00:00", "1.1.0", "0.4.0", "0.2.0", "1.1", "host-local", "dhcp", "trellis0", "eth0/x", "..", "a b", "/var/lib",
        "relative", "\u0000", "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9", "\ud83d\ude00", new string('x', 300), "null", "true", "{}", "[]",
    ];

    private static readonly string[] s_numbers =
    [
        "0", "-1", "1", "67", "68", "1279", "1280", "1500", "65535", "65536", "4094", "4095", "2147483647", "2147483648",
        "-2147483649", "9223372036854775808", "1e308", "-0", "1.5", "1E2", "123456789012345678901234567890",
    ];

    private static readonly string[] s_keys =
    [
        "ipMasq", "vlan", "vlanTrunk", "macspoofchk", "enabledad", "portIsolation", "promiscMode", "hairpinMode", "isGateway",
        "isDefaultGateway", "MTU", "mtu", "subnet", "rangeStart", "rangeEnd", "gateway", "ranges", "routes", "dataDir", "type",
        "prevResult", "cni.dev/valid-attachments", "runtimeConfig", "args", "dns", "ipam", "name", "cniVersion", "bridge", "x",
    ];

    [Fact]
    public void Mutated_configs_parse_to_valid_configs_or_fail_with_a_spec_code()
    {
        int ok = 0, refused = 0;
        var gen = Gen.Select(Gen.Int[0, s_bases.Length - 1], Gen.Int[0, 14], Gen.UInt.Array[1, 4]);
        gen.Sample(
            (baseIndex, commandPick, ops) =>
            {
                var (text, command) = Mutate(baseIndex, commandPick, ops);
                NetConf conf;
                try
                {
                    conf = NetConf.Parse(text, command);
                }
                catch (CniException e)
                {
                    Assert.Contains(e.Code, (int[])[CniErrorCode.IncompatibleVersion, CniErrorCode.UnsupportedField, CniErrorCode.DecodeFailure, CniErrorCode.InvalidConfig]);
                    Assert.False(string.IsNullOrWhiteSpace(e.Message));
                    Assert.DoesNotContain(e.Message, char.IsControl);
                    using var doc = JsonDocument.Parse(Json.Write(w => e.WriteErrorJson(w, CniVersions.ForErrors(text))));
                    Assert.Equal(e.Code, doc.RootElement.GetProperty("code").GetInt32());
                    Interlocked.Increment(ref refused);
                    return;
                }
                CheckInvariants(conf, command);
                Interlocked.Increment(ref ok);
            },
            iter: Iterations,
            print: t => Encoding.UTF8.GetString(Mutate(t.Item1, t.Item2, t.Item3).Text));

        // The mutations must leave a fair share valid, or the invariants were never exercised.
        Assert.True(ok > Iterations / 20, $"only {ok} of {Iterations} mutated configs parsed");
        Assert.True(refused > Iterations / 5, $"only {refused} of {Iterations} mutated configs were refused");
    }

    [Fact]
    public void Random_environments_parse_or_fail_with_error_4()
    {
        string[] commands = ["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION", "add", "", "INIT"];
        string[] values = ["", "eth0", "eth0/x", ".", "..", "a:b", "a b", "3f6940ab5ab4", "-x", "/run/netns/p", "x\u0000y", new string('e', 16), "é", "IgnoreUnknown=1;IP=10.0.0.1", "IP=1.2.3.4,fd00::1", "MAC=0a:58:0a:f4:01:05", "K=V", "A=B=C", ";", "IgnoreUnknown=true;FOO=bar", "IP=10.0.0.999"];
        var gen = Gen.Select(Gen.Int[0, commands.Length - 1], Gen.Int[-1, values.Length - 1].Array[5], Gen.String[0, 20]);
        gen.Sample(
            (cmd, picks, random) =>
            {
                string?[] vars = picks.Select(p => p < 0 ? null : p == values.Length - 1 ? random : values[p]).ToArray();
                string[] names = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"];
                string? Get(string k) => k == "CNI_COMMAND" ? commands[cmd] : vars[Array.IndexOf(names, k)];
                try
                {
                    var env = CniEnvironment.Parse(Get);
                    if (env.Command is CniCommand.Add or CniCommand.Check or CniCommand.Del)
                    {
                        Assert.Null(CniNames.CheckIdentifier(env.ContainerId!));
                        Assert.Null(CniNames.CheckInterfaceName(env.IfName!));
                    }
                }
                catch (CniException e)
                {
                    Assert.Equal(CniErrorCode.InvalidEnvironment, e.Code);
                    Assert.StartsWith("CNI_", e.Message, StringComparison.Ordinal);
                }
            },
            iter: 10_000);
    }

    private static (byte[] Text, CniCommand Command) Mutate(int baseIndex, int commandPick, uint[] ops)
    {
        var (json, command) = s_bases[baseIndex];
        // Mostly the base's own command; sometimes another, to exercise version floors and GC/CHECK requirements.
        if (commandPick >= 12)
        {
            command = (CniCommand)(commandPick - 12 + 2); // Check, Status, Gc
        }
        var bytes = Encoding.UTF8.GetBytes(json);
        foreach (var op in ops)
        {
            var rnd = new Random((int)op);
            int kind = (int)(op % 13);
            if (kind <= 8)
            {
                string text;
                try
                {
                    text = Encoding.UTF8.GetString(bytes);
                    var root = JsonNode.Parse(text);
                    if (root is null)
                    {
                        continue;
                    }
                    text = MutateTree(root, kind, rnd);
                }
                catch (JsonException)
                {
                    continue; // an earlier byte-level mutation broke the JSON; tree edits no longer apply
                }
                catch (InvalidOperationException)
                {
                    continue;
                }
                catch (ArgumentException)
                {
                    continue; // JsonObject refuses the duplicate keys an earlier mutation made
                }
                bytes = Encoding.UTF8.GetBytes(text);
            }
            else
            {
                bytes = MutateBytes(bytes, kind, rnd);
            }
        }
        return (bytes, command);
    }

    private static string MutateTree(JsonNode root, int kind, Random rnd)
    {
        var slots = new List<(JsonNode Parent, string? Key, int Index)>();
        Collect(root, slots);
        if (slots.Count == 0)
        {
            return root.ToJsonString();
        }
        var (parent, key, index) = slots[rnd.Next(slots.Count)];
        switch (kind)
        {
            case 0: // delete
                Remove(parent, key, index);
                break;
            case 1: // duplicate a key (text level: JsonObject cannot hold duplicates)
                if (key is not null)
                {
                    string dup = $"\"{key}\":{RandomValue(rnd, 0)?.ToJsonString() ?? "null"},";
                    string text = root.ToJsonString();
                    string needle = $"\"{key}\":";
                    int at = text.IndexOf(needle, StringComparison.Ordinal);
                    return at < 0 ? text : text.Insert(at, dup);
                }
                break;
            case 2: // change type
            case 3: // random value of any kind
                Replace(parent, key, index, RandomValue(rnd, 0));
                break;
            case 4: // random string
                Replace(parent, key, index, JsonValue.Create(s_strings[rnd.Next(s_strings.Length)]));
                break;
            case 5: // random or extreme number
                Replace(parent, key, index, JsonNode.Parse(s_numbers[rnd.Next(s_numbers.Length)]));
                break;
            case 6: // nested garbage, sometimes deeper than the parser allows
                Replace(parent, key, index, Nest(rnd.Next(1, 80), rnd));
                break;
            case 7: // swap two values
                var (p2, k2, i2) = slots[rnd.Next(slots.Count)];
                var a = Get(parent, key, index);
                var b = Get(p2, k2, i2);
                if (a is not null && b is not null && !IsAncestor(a, b) && !IsAncestor(b, a) && a != b)
                {
                    Replace(parent, key, index, b.DeepClone());
                    Replace(p2, k2, i2, a.DeepClone());
                }
                break;
            default: // add a (known or unknown) key to some object
                var objects = slots.Select(s => Get(s.Parent, s.Key, s.Index)).OfType<JsonObject>().Append(root as JsonObject).OfType<JsonObject>().ToList();
                if (objects.Count > 0)
                {
                    var target = objects[rnd.Next(objects.Count)];
                    string newKey = s_keys[rnd.Next(s_keys.Length)];
                    target[newKey] = RandomValue(rnd, 0);
                }
                break;
        }
        return root.ToJsonString();
    }

    private static byte[] MutateBytes(byte[] bytes, int kind, Random rnd)
    {
        if (bytes.Length == 0)
        {
            return bytes;
        }
        switch (kind)
        {
            case 9: // truncate
                return bytes[..rnd.Next(bytes.Length)];
            case 10: // flip bits
                var flipped = (byte[])bytes.Clone();
                for (int i = rnd.Next(1, 4); i > 0; i--)
                {
                    flipped[rnd.Next(flipped.Length)] ^= (byte)(1 << rnd.Next(8));
                }
                return flipped;
            case 11: // insert random bytes
                var insert = new byte[rnd.Next(1, 6)];
                rnd.NextBytes(insert);
                int at = rnd.Next(bytes.Length);
                return [.. bytes[..at], .. insert, .. bytes[at..]];
            default: // nudge an octet of some dotted quad
                var text = Encoding.UTF8.GetString(bytes);
                var m = System.Text.RegularExpressions.Regex.Matches(text, @"\d+\.\d+\.\d+\.(\d+)");
                if (m.Count == 0)
                {
                    return bytes;
                }
                var g = m[rnd.Next(m.Count)].Groups[1];
                return Encoding.UTF8.GetBytes(text[..g.Index] + rnd.Next(0, 300).ToString(System.Globalization.CultureInfo.InvariantCulture) + text[(g.Index + g.Length)..]);
        }
    }

    private static JsonNode? RandomValue(Random rnd, int depth) => rnd.Next(depth > 2 ? 6 : 8) switch
    {
        0 => null,
        1 => JsonValue.Create(rnd.Next(2) == 0),
        2 => JsonNode.Parse(s_numbers[rnd.Next(s_numbers.Length)]),
        3 or 4 => JsonValue.Create(s_strings[rnd.Next(s_strings.Length)]),
        5 => JsonValue.Create(Encoding.UTF8.GetString(RandomBytes(rnd))),
        6 => new JsonArray(Enumerable.Range(0, rnd.Next(3)).Select(_ => RandomValue(rnd, depth + 1)).ToArray()),
        _ => new JsonObject(Enumerable.Range(0, rnd.Next(3)).Select(_ => KeyValuePair.Create(s_keys[rnd.Next(s_keys.Length)], RandomValue(rnd, depth + 1))).DistinctBy(kv => kv.Key)),
    };

    private static byte[] RandomBytes(Random rnd)
    {
        var b = new byte[rnd.Next(0, 12)];
        rnd.NextBytes(b);
        return b;
    }

    private static JsonNode Nest(int depth, Random rnd)
    {
        JsonNode node = RandomValue(rnd, 3) ?? JsonValue.Create(0);
        for (int i = 0; i < depth; i++)
        {
            node = rnd.Next(2) == 0 ? new JsonArray(node) : new JsonObject { [s_keys[rnd.Next(s_keys.Length)]] = node };
        }
        return node;
    }

    private static void Collect(JsonNode node, List<(JsonNode, string?, int)> slots)
    {
        if (node is JsonObject o)
        {
            foreach (var (k, v) in o.ToList())
            {
                slots.Add((o, k, -1));
                if (v is not null)
                {
                    Collect(v, slots);
                }
            }
        }
        else if (node is JsonArray a)
        {
            for (int i = 0; i < a.Count; i++)
            {
                slots.Add((a, null, i));
                if (a[i] is JsonNode child)
                {
                    Collect(child, slots);
                }
            }
        }
    }

    private static JsonNode? Get(JsonNode parent, string? key, int index) => key is not null ? parent[key] : parent[index];

    private static void Replace(JsonNode parent, string? key, int index, JsonNode? value)
    {
        if (key is not null)
        {
            parent[key] = value;
        }
        else
        {
            parent[index] = value;
        }
    }

    private static void Remove(JsonNode parent, string? key, int index)
    {
        if (key is not null)
        {
            parent.AsObject().Remove(key);
        }
        else
        {
            parent.AsArray().RemoveAt(index);
        }
    }

    private static bool IsAncestor(JsonNode a, JsonNode b)
    {
        for (var p = b.Parent; p is not null; p = p.Parent)
        {
            if (p == a)
            {
                return true;
            }
        }
        return false;
    }

    private static void CheckInvariants(NetConf c, CniCommand command)
    {
        Assert.True(CniVersions.IsSupported(c.CniVersion));
        CniVersions.EnsureCommandAllowed(command, c.CniVersion);
        Assert.Null(CniNames.CheckIdentifier(c.Name));
        Assert.Null(CniNames.CheckInterfaceName(c.Bridge));
        Assert.InRange(c.Mtu, 68, 65535);
        Assert.StartsWith("/", c.Ipam.DataDir, StringComparison.Ordinal);
        Assert.False(c.HairpinMode && c.PromiscMode);
        Assert.True(!c.IsDefaultGateway || c.IsGateway);
        Assert.True(command != CniCommand.Check || c.PrevResult is not null);
        Assert.True(command != CniCommand.Gc || c.ValidAttachments is not null);
        Assert.NotEmpty(c.Ipam.Ranges);

        var all = new List<IpRange>();
        for (int s = 0; s < c.Ipam.Ranges.Count; s++)
        {
            var set = c.Ipam.Ranges[s];
            Assert.Equal(s, set.Index);
            Assert.NotEmpty(set.Ranges);
            foreach (var r in set.Ranges)
            {
                Assert.Equal(set.Family, r.Family);
                int bits = r.IsIPv4 ? 32 : 128;
                Assert.True(r.Subnet.PrefixLength <= bits - 2);
                Assert.True(IPAddressMath.Compare(r.RangeStart, r.RangeEnd) <= 0);
                Assert.True(r.Subnet.Contains(r.RangeStart) && r.Subnet.Contains(r.RangeEnd));
                Assert.NotNull(r.Gateway);
                Assert.True(r.Subnet.Contains(r.Gateway));
                Assert.NotEqual(r.Subnet.BaseAddress, r.RangeStart);
                Assert.NotEqual(IPAddressMath.LastAddress(r.Subnet), r.IsIPv4 ? r.RangeEnd : null);
                Assert.False(r.IsAllocatable(r.Gateway));
                Assert.True(r.Capacity > 0);
                foreach (var other in all)
                {
                    Assert.False(r.Overlaps(other), $"{r} overlaps {other}");
                }
                all.Add(r);
            }

            // Allocation from the parsed set honours it: a host address of one of its ranges, never a gateway.
            foreach (var last in new IPAddress?[] { null, set.Ranges[^1].RangeEnd, set.Ranges[0].RangeStart })
            {
                var a = IpAllocator.Allocate(set, _ => false, last, null);
                var owner = set.RangeFor(a.Address.Address);
                Assert.NotNull(owner);
                Assert.True(owner.IsAllocatable(a.Address.Address));
                Assert.Equal(owner.Subnet.PrefixLength, a.Address.PrefixLength);
                Assert.Equal(owner.Gateway, a.Gateway);
            }
        }

        foreach (var route in c.Ipam.Routes)
        {
            Assert.Equal(route.Dst.Network.BaseAddress, route.Dst.Address);
            Assert.True(route.Gw is null || route.Gw.AddressFamily == route.Dst.Family);
        }

        if (c.PrevResult is not null)
        {
            foreach (var ip in c.PrevResult.Ips)
            {
                Assert.True(ip.Interface is null || ip.Interface < c.PrevResult.Interfaces.Count);
            }
            foreach (var v in CniVersions.Supported)
            {
                var again = Json.ParseResult(Json.WriteResult(c.PrevResult, v), v);
                Assert.Equal(c.PrevResult.Ips.Count, again.Ips.Count);
            }
        }
    }
}
