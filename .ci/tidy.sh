#!/usr/bin/env bash
# clang-tidy over core/*.c with the checks of .clang-tidy (the static
# analyzer and bugprone-*). Not part of tests/run-all.sh: on 2 cores it takes
# about 6 minutes (every file through the analyzer). Exit 1 when any warning
# is printed. Usage: .ci/tidy.sh [BUILD_DIR] (default build-tidy, configured
# here with compile_commands.json when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-tidy}
if [ ! -f "$build/compile_commands.json" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
fi
# The console's pages include templates generated at build time.
cmake --build "$build" --target pvcore -j"$(nproc)" >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cd "$root"
printf '%s\n' core/*.c |
    xargs -P"$(nproc)" -n4 clang-tidy -p "$build" --quiet >"$log" 2>/dev/null || true
if grep -q "warning:" "$log"; then
    grep -A3 "warning:" "$log"
    echo "clang-tidy: $(grep -c 'warning:' "$log") warning(s) above" >&2
    exit 1
fi
echo "clang-tidy: clean"
