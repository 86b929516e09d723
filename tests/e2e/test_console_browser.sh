#!/usr/bin/env bash
# End to end: the review console (issue 16) in a real browser. Debian's
# chromium, headless, driven by playwright-core from the committed lock
# file in tests/e2e/npm/console/ (no browser download; node and chromium
# as for the npm MLLP peers, TESTING.md). The database is made by pvwatch
# itself: the bundled sample feeds plus generated CSV and HL7 feeds
# (console_seed.py), ingested through the whole rule pack, so every alert
# is a real one; a few records carry XSS payloads (a patient id, an event
# term, a test rule's title). Then 'pvwatch run' with http.listen on a free
# loopback port, a reviewer and a viewer ('pvwatch users add'), and
# console_browser.js: log in, filter the worklist (against sqlite3
# counts), the alert chart's SVG (threshold line and exposure band at x(t)
# of the SQLite rows), acknowledge, comment twice with one request_id,
# close with an outcome (the alert_actions rows checked in SQLite), the
# viewer's POSTs refused, POSTs without or with a wrong CSRF token refused,
# the XSS payloads inert, no console error or CSP violation, and
# screenshots of the worklist, an alert, a patient, the rules page that are
# not blank, written to $PV_BUILD_DIR/console-shots/.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NPM=$PV_SOURCE_DIR/tests/e2e/npm/console
SHOTS=$PV_BUILD_DIR/console-shots
NODE_TIMEOUT=240 # seconds: the outer bound of the browser run
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

section "prerequisites: node, chromium, playwright-core, sqlite3"
for tool in node sqlite3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail "$tool is not installed (.ci/deps.sh installs it)"
        finish
    fi
done
if [ ! -x /usr/bin/chromium ]; then
    fail "/usr/bin/chromium is not installed (Debian's chromium; .ci/deps.sh)"
    finish
fi
if [ ! -d "$NPM/node_modules/playwright-core" ]; then
    (cd "$NPM" && timeout 300 npm ci --silent --no-audit --no-fund) >&2 || {
        fail "cannot install playwright-core in $NPM (npm ci)"
        finish
    }
fi
pass

section "seed: sample and generated feeds through pvwatch ingest"
"$PYTHON" "$PV_SOURCE_DIR/tests/e2e/console_seed.py" feeds || {
    fail "console_seed.py failed"
    finish
}
mkdir plugins && cp "$PV_SOURCE_DIR"/plugins/*.lua feeds/xss_rule.lua plugins/
CFG_PLUGINS=$T/plugins write_config pv.lua \
    'http = { listen = "127.0.0.1:0", threads = 2, session_hours = 1 }'
pv ingest -c pv.lua feeds/medications.csv feeds/hostile.csv \
    "$PV_SOURCE_DIR"/examples/feeds/medications.csv \
    "$PV_SOURCE_DIR"/examples/feeds/pemphigus_medications.csv \
    feeds/labs.csv feeds/labs.hl7 feeds/hostile_labs.csv \
    "$PV_SOURCE_DIR"/examples/feeds/labs.csv feeds/events.csv \
    feeds/hostile_events.csv "$PV_SOURCE_DIR"/examples/feeds/events.csv
assert_eq 0 "$RC" "pvwatch ingest of the seed feeds (stderr: $ERR)"
n_alerts=$(q "SELECT count(*) FROM alerts")
assert_match '^[0-9]+$' "$n_alerts" "alerts counted"
if [ "${n_alerts:-0}" -ge 25 ]; then pass; else fail "the seed raised only $n_alerts alerts"; fi
assert_eq 1 "$(q "SELECT count(*) > 0 FROM alerts WHERE rule = 'baricitinib.neutropenia' AND patient_id LIKE 'PV-1%'")" \
    "the generated patients raised neutropenia alerts"
XSS_PID="<img src=x onerror=alert('pid')>"
assert_eq 1 "$(q "SELECT count(*) > 0 FROM alerts WHERE patient_id = '${XSS_PID//\'/\'\'}'")" \
    "the hostile patient id has an alert"

section "users: a reviewer and a viewer"
REV=rita.reviewer
REV_PW=rita-$RANDOM-passphrase
VIEW=victor.viewer
VIEW_PW=victor-$RANDOM-passphrase
printf '%s\n' "$REV_PW" | "$PVWATCH" users -c pv.lua add "$REV" --role reviewer --password-stdin >users.out 2>&1
assert_eq 0 $? "users add $REV ($(cat users.out))"
printf '%s\n' "$VIEW_PW" | "$PVWATCH" users -c pv.lua add "$VIEW" --role viewer --password-stdin >users.out 2>&1
assert_eq 0 $? "users add $VIEW ($(cat users.out))"

section "pvwatch run with the console on"
start_pv pv run -c pv.lua
expect_running pv
check_wait "grep -q 'console listening on http://127.0.0.1:' pv.err" 15 \
    "the engine says where the console listens"
PORT=$(sed -n 's|.*console listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' pv.err | head -1)
assert_match '^[0-9]+$' "$PORT" "the console's port"
URL=http://127.0.0.1:$PORT
check_wait "curl -fsS -o /dev/null $URL/livez" 15 "/livez answers"
# The scheduled rules run a second after start-up, all patients in one
# transaction (docs/rules.md, "every"); the seed's patients on baricitinib
# have no TB/HBV screening, so their alerts mark that the run committed.
# After it nothing changes the alerts for a day: the browser's counts and
# SQLite's agree.
check_wait "[ \"\$(q \"SELECT count(*) > 0 FROM alerts WHERE rule = 'baricitinib.screening_missing'\")\" = 1 ]" 15 \
    "the scheduled rules' first run committed"

section "the login form only from this site"
# A browser under the console's Referrer-Policy: no-referrer sends a form's
# Origin as "null"; its Sec-Fetch-Site then tells our own form (the
# browser below logs in that way) from another site's.
login_code() {
    curl -s -o /dev/null -w '%{http_code}' "$@" \
        --data-urlencode "name=$REV" --data-urlencode "password=$REV_PW" "$URL/login"
}
assert_eq 403 "$(login_code -H 'Origin: http://evil.example')" \
    "a login posted from another origin is refused"
assert_eq 403 "$(login_code -H 'Origin: null' -H 'Sec-Fetch-Site: cross-site')" \
    "a login with Origin null from another site is refused"
assert_eq 403 "$(login_code -H 'Origin: null')" \
    "a login with Origin null and no Sec-Fetch-Site is refused"
assert_eq 303 "$(login_code -H 'Origin: null' -H 'Sec-Fetch-Site: same-origin')" \
    "a login with Origin null from this site's own form is accepted"

section "the browser"
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
PV_URL=$URL PV_DB=$T/pv.db PV_SHOTS=$SHOTS PV_REVIEWER="$REV:$REV_PW" \
    PV_VIEWER="$VIEW:$VIEW_PW" PV_XSS_PID=$XSS_PID \
    timeout "$NODE_TIMEOUT" node "$PV_SOURCE_DIR/tests/e2e/console_browser.js" >browser.log 2>&1
brc=$?
sed 's/^/    /' browser.log
assert_eq 0 "$brc" "console_browser.js: every browser assertion passed"
for s in worklist alert patient; do
    assert_file "$SHOTS/$s.png" "screenshot $s.png in the build tree"
done

section "after the browser"
assert_eq 1 "$(q "SELECT count(*) FROM alert_actions WHERE actor = '$REV' AND action = 'closed' AND outcome = 'intervention:dose_interrupted'")" \
    "one close with the outcome, by the reviewer"
assert_eq 0 "$(q "SELECT count(*) FROM alert_actions WHERE actor = '$VIEW' OR entered_by = '$VIEW'")" \
    "no action by the viewer"
# The engine writes the alert-log line of each console action (the
# console's pipeline queues it, as the CLI beside a running engine does).
check_wait "grep '\"event\":\"closed\"' alerts.jsonl | grep -q '\"by\":\"$REV\".*\"outcome\":\"intervention:dose_interrupted\"'" 10 \
    "the reviewer's close, with its outcome, reaches the alert log"
if kill -0 "$PV_PID" 2>/dev/null; then pass; else fail "pvwatch run died during the browser run"; fi
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "pvwatch run stops cleanly"
assert_no_match 'ERROR|error:' "$(cat pv.err)" "no error in pvwatch's log"

finish
