#!/usr/bin/env bash
# console_docs_shots.sh [OUTDIR]: makes the screenshots of docs/review.md
# (default OUTDIR: docs/img/ of the source tree). Not a test: the same
# seed as test_console_browser.sh (console_seed.py through 'pvwatch
# ingest' and the whole rule pack) without its hostile records, 'pvwatch
# run' with the console on, one reviewer, then console_docs_shots.js (a
# few actions, then the pages). PVWATCH, PV_BUILD_DIR as for the tests.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=${1:-$PV_SOURCE_DIR/docs/img}
mkdir -p "$out"
out=$(cd "$out" && pwd)
"$PYTHON" "$PV_SOURCE_DIR/tests/e2e/console_seed.py" feeds || exit 1
mkdir plugins && cp "$PV_SOURCE_DIR"/plugins/*.lua plugins/
CFG_PLUGINS=$T/plugins write_config pv.lua 'http = { listen = "127.0.0.1:0" }'
pv ingest -c pv.lua feeds/medications.csv \
    "$PV_SOURCE_DIR"/examples/feeds/medications.csv \
    "$PV_SOURCE_DIR"/examples/feeds/pemphigus_medications.csv \
    feeds/labs.csv feeds/labs.hl7 "$PV_SOURCE_DIR"/examples/feeds/labs.csv \
    feeds/events.csv "$PV_SOURCE_DIR"/examples/feeds/events.csv
[ "$RC" = 0 ] || { echo "ingest failed: $ERR" >&2; exit 1; }
pw=docs-$RANDOM-passphrase
printf '%s\n' "$pw" | "$PVWATCH" users -c pv.lua add dr.lindqvist --role reviewer --password-stdin >/dev/null || exit 1
start_pv pv run -c pv.lua
expect_running pv
wait_for "grep -q 'console listening on' pv.err" 15 || exit 1
wait_for "[ \"\$(q \"SELECT count(*) > 0 FROM alerts WHERE rule = 'baricitinib.screening_missing'\")\" = 1 ]" 15 || exit 1
port=$(sed -n 's|.*console listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' pv.err | head -1)
PV_URL=http://127.0.0.1:$port PV_DB=$T/pv.db PV_SHOTS=$out \
    PV_REVIEWER="dr.lindqvist:$pw" \
    timeout 240 node "$PV_SOURCE_DIR/tests/e2e/console_docs_shots.js" || exit 1
stop_pv "$PV_PID"
