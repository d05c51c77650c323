#!/usr/bin/env bash
# The one test command: installs what the tests need, builds the executables, runs every test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
dotnet test Trellis.slnx -nologo "$@"
