#!/usr/bin/env bash
# Builds every Trellis executable into artifacts/bin, once per source state, all NativeAOT:
# trellis-cni is exec'd on every pod start, trellis on every probe and by every pod's workload,
# trellisd once per node, trellis-dns as the cluster's DNS pods.
# A hash of the sources that go into them skips the work when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/artifacts/bin"
stamp_file="$root/artifacts/.build-stamp"
cd "$root"
mkdir -p "$root/artifacts"
# Test assemblies run in parallel and each may ask for a build: one at a time, the rest then see the stamp.
exec 9>"$root/artifacts/.build-lock"
flock 9
# The stamp is the content of every source file that goes into the executables (committed or not).
stamp=$(find src Directory.Build.props Directory.Packages.props -type f \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) \
          -not -path '*/obj/*' -not -path '*/bin/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] && [ -x "$out/trellis-cni" ] && [ -x "$out/trellis" ] && [ -x "$out/trellisd" ] && [ -x "$out/trellis-dns" ]; then
  exit 0
fi
# Published beside the old binaries and swapped in only when everything built, so a failed
# build never leaves artifacts/bin empty.
new="$out.new"
rm -rf "$new"; mkdir -p "$new"
echo "building Trellis into $out ..." >&2
dotnet publish src/Trellis.Cni -c Release -r linux-x64 -o "$new" -nologo -v:q >&2
dotnet publish src/Trellis.Cli -c Release -r linux-x64 -o "$new" -nologo -v:q >&2
dotnet publish src/Trellis.Agent -c Release -r linux-x64 -o "$new" -nologo -v:q >&2
dotnet publish src/Trellis.DnsServer -c Release -r linux-x64 -o "$new" -nologo -v:q >&2
rm -f "$new"/*.dbg "$new"/*.pdb
rm -rf "$out.old"
if [ -d "$out" ]; then mv "$out" "$out.old"; fi
mv "$new" "$out"
rm -rf "$out.old"
echo "$stamp" > "$stamp_file"
