#!/usr/bin/env bash
# Builds every Trellis executable into artifacts/bin, once per source state. Both are published
# NativeAOT: trellis-cni is exec'd on every pod start, trellis on every probe and by every pod's workload.
# A stamp of the commit plus a hash of uncommitted changes skips the work when nothing changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/artifacts/bin"
stamp_file="$root/artifacts/.build-stamp"
cd "$root"
# The stamp is the content of every source file that goes into the executables (committed or not).
stamp=$(find src Directory.Build.props Directory.Packages.props -type f \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) \
          -not -path '*/obj/*' -not -path '*/bin/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] && [ -x "$out/trellis-cni" ] && [ -x "$out/trellis" ]; then
  exit 0
fi
rm -rf "$out"; mkdir -p "$out"
echo "building Trellis into $out ..." >&2
dotnet publish src/Trellis.Cni -c Release -r linux-x64 -o "$out" -nologo -v:q >&2
dotnet publish src/Trellis.Cli -c Release -r linux-x64 -o "$out" -nologo -v:q >&2
rm -f "$out"/*.dbg "$out"/*.pdb
echo "$stamp" > "$stamp_file"
