#!/usr/bin/env bash
# bench_console_pv.sh: what bench_console.sh gives bench_mllp as PVWATCH for
# the "console on" configuration. bench_mllp runs it as 'PVWATCH run -c
# pv.lua' in its temporary directory (a copy of the 100k-alert database as
# pv.db, --db). It turns the console on in that config (http.listen on a
# free loopback port), starts the clients that hammer the pages, as the
# viewer 'bench' that bench_console.sh added to the database before
# bench_mllp copies it (bench_console_client.mjs hammer, in the background:
# they find the port in pv.log and stop when pvwatch is gone, appending
# their figures to $BENCH_CONSOLE_STATS), and becomes pvwatch (exec:
# bench_mllp's SIGTERM and waitpid reach pvwatch itself).
# Environment: BENCH_CONSOLE_PVWATCH (the real binary), BENCH_CONSOLE_STATS,
# BENCH_CONSOLE_CLIENTS (default 8), BENCH_CONSOLE_PW.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pv=${BENCH_CONSOLE_PVWATCH:?BENCH_CONSOLE_PVWATCH: the pvwatch binary}
if [ "${1:-}" != run ] || [ "${2:-}" != -c ] || [ -z "${3:-}" ]; then
    echo "bench_console_pv.sh: expected 'run -c CONFIG', got: $*" >&2
    exit 2
fi
cfg=$3
# BENCH_CONSOLE_THREADS: http.threads (unset: pvwatch's default, min(4, cores)).
echo "http = { listen = \"127.0.0.1:0\"${BENCH_CONSOLE_THREADS:+, threads = $BENCH_CONSOLE_THREADS} }" >>"$cfg"
# BENCH_CONSOLE_CLIENT_NICE: run the clients under 'nice -n N' (they stand
# for browsers on other machines; unset: the same priority as pvwatch).
nice -n "${BENCH_CONSOLE_CLIENT_NICE:-0}" node "$here/bench_console_client.mjs" hammer pv.log bench "$BENCH_CONSOLE_PW" \
    "${BENCH_CONSOLE_CLIENTS:-8}" $$ "$BENCH_CONSOLE_STATS" </dev/null \
    >/dev/null 2>>"${BENCH_CONSOLE_STATS}.err" &
exec "$pv" "$@"
