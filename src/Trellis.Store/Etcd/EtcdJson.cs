using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Trellis.Store;

/// <summary>
/// The JSON of etcd's gRPC gateway (<c>/v3/…</c>): protobuf messages in proto3 JSON form, so
/// bytes fields are base64, 64-bit integers arrive as strings and fields at their default
/// (0, false, empty) are omitted. Written with <see cref="Utf8JsonWriter"/> and read with
/// <see cref="JsonDocument"/>: no reflection, so it stays NativeAOT-safe.
/// </summary>
internal static class EtcdJson
{
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Writes one JSON object; the returned memory is not pooled, so retries may resend it.</summary>
    public static ReadOnlyMemory<byte> Object(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        return buffer.WrittenMemory;
    }

    public static byte[] Key(string key) => Encoding.UTF8.GetBytes(key);

    /// <summary>
    /// etcd's range_end for "every key starting with <paramref name="prefix"/>": the prefix with
    /// its last byte incremented (clientv3's GetPrefixRangeEnd). A UTF-8 string never ends in
    /// 0xFF, and a byte prefix of UTF-8 text is exactly a string prefix, so this selects what
    /// <c>StartsWith(prefix, Ordinal)</c> selects in the other backends.
    /// </summary>
    public static byte[] PrefixEnd(byte[] prefix)
    {
        byte[] end = (byte[])prefix.Clone();
        for (int i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xFF)
            {
                end[i]++;
                return end[..(i + 1)];
            }
        }
        return [0]; // all 0xFF: etcd's "to the end of the keyspace"; unreachable for UTF-8 keys
    }

    /// <summary>An int64 field, which proto3 JSON writes as a string (and omits when 0).</summary>
    public static long Int64(JsonElement parent, string name)
    {
        if (!parent.TryGetProperty(name, out var value))
        {
            return 0;
        }
        return value.ValueKind switch
        {
            JsonValueKind.String => long.Parse(value.GetString()!, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
            JsonValueKind.Number => value.GetInt64(),
            _ => throw new JsonException($"field '{name}' is {value.ValueKind}, expected an integer"),
        };
    }

    public static bool Bool(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.True;

    public static long HeaderRevision(JsonElement response) =>
        response.TryGetProperty("header", out var header) ? Int64(header, "revision") : throw new JsonException("response has no header");

    /// <summary>The first entry of a range response's <c>kvs</c>, or null when it has none.</summary>
    public static StoreItem? FirstKv(JsonElement rangeResponse) =>
        rangeResponse.TryGetProperty("kvs", out var kvs) && kvs.GetArrayLength() > 0 ? Item(kvs[0]) : null;

    public static List<StoreItem> Kvs(JsonElement rangeResponse)
    {
        var items = new List<StoreItem>();
        if (rangeResponse.TryGetProperty("kvs", out var kvs))
        {
            foreach (var kv in kvs.EnumerateArray())
            {
                items.Add(Item(kv));
            }
        }
        return items;
    }

    /// <summary>A mvccpb.KeyValue as a <see cref="StoreItem"/> (a fresh array the caller owns).</summary>
    public static StoreItem Item(JsonElement kv) => new(
        KeyText(kv),
        kv.TryGetProperty("value", out var value) ? value.GetBytesFromBase64() : [],
        Int64(kv, "create_revision"),
        Int64(kv, "mod_revision"),
        Int64(kv, "lease"));

    /// <summary>
    /// A key as text. Store contents are untrusted (another etcd client may have written any
    /// bytes): a key that is not UTF-8 is an error naming it, never a silently altered string.
    /// </summary>
    public static string KeyText(JsonElement kv)
    {
        byte[] key = kv.GetProperty("key").GetBytesFromBase64();
        try
        {
            return s_strictUtf8.GetString(key);
        }
        catch (DecoderFallbackException)
        {
            throw new JsonException($"etcd holds a key that is not UTF-8 text (base64 {Convert.ToBase64String(key)}); Trellis keys are text");
        }
    }

    /// <summary>
    /// The gateway's error forms: unary calls answer <c>{"error":"…","message":"…","code":N}</c>,
    /// streaming calls <c>{"error":{"grpc_code":N,"message":"…",…}}</c>. Null when
    /// <paramref name="root"/> is not an error.
    /// </summary>
    public static (int Code, string Message)? Error(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("error", out var error))
        {
            return null;
        }
        if (error.ValueKind == JsonValueKind.Object)
        {
            return ((int)Int64(error, "grpc_code"), Text(error, "message") ?? "(no message)");
        }
        return ((int)Int64(root, "code"), Text(root, "message") ?? Text(root, "error") ?? "(no message)");

        static string? Text(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }
}
