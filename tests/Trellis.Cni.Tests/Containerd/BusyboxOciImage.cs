using System.Formats.Tar;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Trellis.Cni.Tests.Containerd;

/// <summary>
/// Builds a one-layer OCI image (image-layout tarball) around a static busybox, offline: no registry,
/// no docker. Import it with <c>ctr images import --base-name <see cref="BaseName"/> image.tar</c>.
/// </summary>
public static class BusyboxOciImage
{
    public const string BaseName = "docker.io/trellis/busybox";
    public const string Tag = "test";
    public const string Reference = BaseName + ":" + Tag;

    /// <summary>Served by <c>httpd -f -p PORT -h /www</c>.</summary>
    public const string IndexHtml = "hello from trellis\n";

    private static readonly string[] s_applets =
        ["sh", "cat", "echo", "ip", "ls", "nc", "httpd", "sleep", "wget", "ps", "netstat", "hostname", "true", "printf"];

    // Fixed timestamps keep the digests stable from run to run.
    private static readonly DateTimeOffset s_epoch = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static void WriteArchive(string busyboxPath, string archivePath)
    {
        byte[] layer = BuildLayer(busyboxPath);
        string layerDigest = Digest(layer);

        string arch = RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => "amd64",
            Architecture.Arm64 => "arm64",
            Architecture.X86 => "386",
            Architecture.Arm => "arm",
            var other => other.ToString().ToLowerInvariant(),
        };

        byte[] config = Json(new JsonObject
        {
            ["architecture"] = arch,
            ["os"] = "linux",
            ["created"] = s_epoch.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
            ["config"] = new JsonObject
            {
                ["Env"] = new JsonArray("PATH=/bin"),
                ["Cmd"] = new JsonArray("/bin/sh"),
                ["WorkingDir"] = "/",
            },
            ["rootfs"] = new JsonObject
            {
                ["type"] = "layers",
                // Uncompressed layer: diff_id == layer digest.
                ["diff_ids"] = new JsonArray(layerDigest),
            },
        });
        string configDigest = Digest(config);

        byte[] manifest = Json(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = Descriptor("application/vnd.oci.image.config.v1+json", configDigest, config.Length),
            ["layers"] = new JsonArray(Descriptor("application/vnd.oci.image.layer.v1.tar", layerDigest, layer.Length)),
        });
        string manifestDigest = Digest(manifest);

        JsonObject manifestDescriptor = Descriptor("application/vnd.oci.image.manifest.v1+json", manifestDigest, manifest.Length);
        manifestDescriptor["platform"] = new JsonObject { ["architecture"] = arch, ["os"] = "linux" };
        manifestDescriptor["annotations"] = new JsonObject
        {
            // containerd's importer takes this full name as is; other tools read ref.name (the tag),
            // which ctr prefixes with --base-name.
            ["io.containerd.image.name"] = Reference,
            ["org.opencontainers.image.ref.name"] = Tag,
        };
        byte[] index = Json(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.index.v1+json",
            ["manifests"] = new JsonArray(manifestDescriptor),
        });

        using FileStream fs = File.Create(archivePath);
        using var tar = new TarWriter(fs, TarEntryFormat.Ustar, leaveOpen: false);
        AddFile(tar, "oci-layout", Encoding.UTF8.GetBytes("{\"imageLayoutVersion\":\"1.0.0\"}"), Mode644);
        AddFile(tar, "index.json", index, Mode644);
        AddDirectory(tar, "blobs/", Mode755);
        AddDirectory(tar, "blobs/sha256/", Mode755);
        AddFile(tar, BlobPath(layerDigest), layer, Mode644);
        AddFile(tar, BlobPath(configDigest), config, Mode644);
        AddFile(tar, BlobPath(manifestDigest), manifest, Mode644);
    }

    private static byte[] BuildLayer(string busyboxPath)
    {
        using var ms = new MemoryStream();
        using (var tar = new TarWriter(ms, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (string dir in new[] { "bin/", "dev/", "etc/", "proc/", "sys/", "root/", "www/" })
            {
                AddDirectory(tar, dir, Mode755);
            }

            AddDirectory(tar, "tmp/", Mode755 | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite | UnixFileMode.StickyBit);
            AddFile(tar, "bin/busybox", File.ReadAllBytes(busyboxPath), Mode755);
            foreach (string applet in s_applets)
            {
                tar.WriteEntry(new UstarTarEntry(TarEntryType.SymbolicLink, "bin/" + applet)
                {
                    LinkName = "busybox",
                    Mode = Mode755,
                    ModificationTime = s_epoch,
                });
            }

            AddFile(tar, "etc/passwd", Encoding.ASCII.GetBytes("root:x:0:0:root:/root:/bin/sh\n"), Mode644);
            AddFile(tar, "etc/group", Encoding.ASCII.GetBytes("root:x:0:\n"), Mode644);
            AddFile(tar, "www/index.html", Encoding.ASCII.GetBytes(IndexHtml), Mode644);
        }

        return ms.ToArray();
    }

    private const UnixFileMode Mode644 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private const UnixFileMode Mode755 = Mode644 | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    private static void AddDirectory(TarWriter tar, string name, UnixFileMode mode) =>
        tar.WriteEntry(new UstarTarEntry(TarEntryType.Directory, name) { Mode = mode, ModificationTime = s_epoch });

    private static void AddFile(TarWriter tar, string name, byte[] content, UnixFileMode mode) =>
        tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = mode,
            ModificationTime = s_epoch,
            DataStream = new MemoryStream(content, writable: false),
        });

    private static JsonObject Descriptor(string mediaType, string digest, long size) => new()
    {
        ["mediaType"] = mediaType,
        ["digest"] = digest,
        ["size"] = size,
    };

    private static byte[] Json(JsonObject o) => Encoding.UTF8.GetBytes(o.ToJsonString());

    private static string Digest(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    private static string BlobPath(string digest) => "blobs/sha256/" + digest["sha256:".Length..];
}
