#!/usr/bin/env bash
# Crash consistency of 'pvwatch run' (issue 6): SIGKILL at random moments
# under MLLP senders, a growing tailed CSV file, inbox files and a real SMTP
# server; then checks that nothing acknowledged was lost or stored twice, no
# alert was duplicated and every alert mail arrived exactly once.
#
#   tests/crash/run.sh                 # short: 8 kills (what ctest runs)
#   tests/crash/run.sh --kills 60      # long
#   tests/crash/run.sh --help          # every option (crash.py)
#
# PVWATCH (the binary) and PV_SOURCE_DIR (the source tree, for plugins/ and
# scripts/) come from ctest; by hand they default to build/pvwatch (or
# build-c/pvwatch) and this script's ../.. . The last line of the output is
# 'N passed, N failed'; the exit status is 1 when anything failed.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PV_SOURCE_DIR=${PV_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
if [ -z "${PVWATCH:-}" ]; then
    for b in "$PV_SOURCE_DIR/build/pvwatch" "$PV_SOURCE_DIR/build-c/pvwatch"; do
        if [ -x "$b" ]; then
            PVWATCH=$b
            break
        fi
    done
fi
if [ ! -x "${PVWATCH:-}" ]; then
    echo "pvwatch binary not found (set PVWATCH or build first)" >&2
    exit 1
fi
# The Debian interpreter sees python3-aiosmtpd (../shared/TESTING.md).
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
if ! "$PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
    echo "python3-aiosmtpd is not installed (apt-get install -y python3-aiosmtpd)" >&2
    exit 1
fi
PYTHONDONTWRITEBYTECODE=1 exec "$PYTHON" "$here/crash.py" --pvwatch "$PVWATCH" --source "$PV_SOURCE_DIR" \
    --python "$PYTHON" "$@"
