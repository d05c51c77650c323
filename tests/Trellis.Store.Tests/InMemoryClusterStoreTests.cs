using Trellis.Store.Tests.Contract;
using Trellis.Store.Tests.Support;

namespace Trellis.Store.Tests;

/// <summary>The contract against the in-memory fake, plus its <see cref="InMemoryClusterStore.Dump"/> form.</summary>
public sealed class InMemoryClusterStoreTests : ClusterStoreContract
{
    protected override IClusterStore CreateStore(ClusterStoreOptions options) => new InMemoryClusterStore(options);

    protected override IClusterStore OpenPeerClient(ClusterStoreOptions options) => new SharedClient(Store);

    protected override Task CompactAsync(IClusterStore store, long revision) => ((InMemoryClusterStore)store).CompactAsync(revision);

    [Fact]
    public async Task Dump_prints_one_line_per_key_in_key_order()
    {
        var store = (InMemoryClusterStore)Store;
        long lease = await store.GrantLeaseAsync(TimeSpan.FromSeconds(30));
        await store.CreateAsync("/registry/pods/demo/web-2", Bytes.Utf8("""{"kind":"Pod","metadata":{"name":"web-2"}}"""));
        long r = await store.CreateAsync("/registry/pods/demo/web-1", Bytes.Utf8("""{"kind":"Pod"}"""));
        await store.UpdateAsync("/registry/pods/demo/web-1", Bytes.Utf8("""{"kind":"Pod","status":{}}"""), r);
        await store.CreateAsync("/trellis/leases/subnets/10.244.1.0-24", Bytes.Utf8("node-1"), lease);
        await store.CreateAsync("/bin", new byte[] { 0, 1, 0xFF });
        await store.CreateAsync("/gone", Bytes.Utf8("x"));
        await store.DeleteAsync("/gone");

        Assert.Equal(
            """
            /bin create=5 mod=5 lease=0 base64:AAH/
            /registry/pods/demo/web-1 create=2 mod=3 lease=0 {"kind":"Pod","status":{}}
            /registry/pods/demo/web-2 create=1 mod=1 lease=0 {"kind":"Pod","metadata":{"name":"web-2"}}
            /trellis/leases/subnets/10.244.1.0-24 create=4 mod=4 lease=1 node-1

            """.Replace("\r\n", "\n", StringComparison.Ordinal),
            store.Dump());
    }

    [Fact]
    public void Dump_of_an_empty_store_is_empty() => Assert.Equal("", ((InMemoryClusterStore)Store).Dump());
}
