#!/usr/bin/env bash
# End to end: the review console's HTTP server (issue 16; core/http.c),
# with curl against a real 'pvwatch run' whose http.listen is a free
# loopback port, then 'pvwatch serve' alone against the same database:
# the login redirect, the session cookie's flags, CSRF and role checks on
# POST (refused: 403 and no alert_actions row), an acknowledgement by a
# reviewer (one row, actor and entered_by the user, once for a request_id
# posted twice), the security headers, health and metrics without login,
# a patient id with markup shown escaped, and MLLP still acknowledged while
# the console serves; the login's next (local paths only), last_seen
# moved at most once a minute, and the pool threads SCHED_IDLE under run
# but not under serve.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! command -v curl >/dev/null 2>&1; then
    echo "curl not installed: skipped" >&2
    exit 77
fi

XSS='<script>alert(1)</script>'
write_config pv.lua 'http = { listen = "127.0.0.1:0", threads = 2 }'
mkdir -p inbox
cat >meds.csv <<EOF
patient_id,drug,start,dose,dose_unit
P1,baricitinib,2026-01-01,2,mg
"$XSS",baricitinib,2026-01-01,2,mg
EOF
cat >labs.csv <<EOF
patient_id,code,value,unit,observed_at
P1,751-8,900,cells/mm3,2026-02-01
"$XSS",751-8,400,cells/mm3,2026-02-01
EOF
pv ingest -c pv.lua meds.csv labs.csv
assert_eq 0 "$RC" "set-up: ingest"
A1=$(q "SELECT id FROM alerts WHERE patient_id='P1' ORDER BY id LIMIT 1")
AX=$(q "SELECT id FROM alerts WHERE patient_id='$XSS' ORDER BY id LIMIT 1")
assert_match '^[0-9]+ [0-9]+$' "$A1 $AX" "set-up: an alert for P1 and one for the markup id"

PW_R='reviewer-password-1'
PW_V='viewer-password-12'
printf '%s\n' "$PW_R" | "$PVWATCH" users -c pv.lua add rita --role reviewer --password-stdin >users.out 2>&1
assert_eq 0 "$?" "set-up: users add rita (reviewer)"
printf '%s\n' "$PW_V" | "$PVWATCH" users -c pv.lua add victor --role viewer --password-stdin >>users.out 2>&1
assert_eq 0 "$?" "set-up: users add victor (viewer)"

start_pv pv run -c pv.lua
expect_running pv
WEB=$(sed -n 's|.*console listening on http://\(127\.0\.0\.1:[0-9]*\)/.*|\1|p' pv.err | head -n 1)
MLLP=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
assert_match '^127\.0\.0\.1:[1-9][0-9]*$' "$WEB" "run names the console's address"
if [ -z "$WEB" ]; then
    cat pv.err >&2
    finish
fi
BASE="http://$WEB"

# hget PATH [CURL-ARGS...]: GET; headers in $T/h, body in $T/b, status in
# $CODE.
CODE=""
hget() {
    local path=$1
    shift
    CODE=$(curl -s -o "$T/b" -D "$T/h" -w '%{http_code}' "$@" "$BASE$path")
}
# hpost PATH DATA [CURL-ARGS...]: POST a form.
hpost() {
    local path=$1 data=$2
    shift 2
    CODE=$(curl -s -o "$T/b" -D "$T/h" -w '%{http_code}' \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        --data-raw "$data" "$@" "$BASE$path")
}
header() {
    tr -d '\r' <"$T/h" | sed -n "s/^$1: //Ip" | head -n 1
}
actions() {
    q "SELECT count(*) FROM alert_actions WHERE alert_id = $1 AND action NOT IN ('opened', 'escalated', 'repeated')"
}
# qw SQL: a write to pv.db beside the running pvwatch (the test's own
# changes: backdating a session).
qw() {
    "$PYTHON" -c 'import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=10)
con.execute(sys.argv[2])
con.commit()' pv.db "$1"
}
# console_threads PID: "TID POLICY NICE" for each of PID's threads named
# pv-console (core/http.c names a pool thread at its first request);
# /proc/PID/task/TID/stat: field 41 is the policy (0 SCHED_OTHER, 5
# SCHED_IDLE), field 19 the nice value.
console_threads() {
    local t st f
    for t in /proc/"$1"/task/*; do
        [ "$(cat "$t/comm" 2>/dev/null)" = pv-console ] || continue
        st=$(cat "$t/stat" 2>/dev/null) || continue
        st=${st##*) }
        read -r -a f <<<"$st"
        echo "${t##*/} ${f[38]} ${f[16]}"
    done
}

# ---------------------------------------------------------------------------
section "health and metrics need no login"
hget /livez
assert_eq 200 "$CODE" "/livez"
hget /healthz
assert_eq 200 "$CODE" "/healthz (alias)"
check_wait "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $BASE/readyz)\" = 200 ]" 10 \
    "/readyz says 200 once the engine is ready"
hget /metrics
assert_eq 200 "$CODE" "/metrics"
assert_match '^text/plain; version=0\.0\.4' "$(header Content-Type)" "/metrics content type"
assert_no_match 'P1|script' "$(cat "$T/b")" "/metrics shows no patient id"

# ---------------------------------------------------------------------------
section "not logged in"
hget "/alerts/$A1?x=1"
assert_eq 303 "$CODE" "a page without a session redirects"
assert_eq "/login?next=/alerts/$A1%3Fx%3D1" "$(header Location)" "to /login?next=the page"
hget /
assert_eq 303 "$CODE" "the worklist without a session redirects"
hpost "/alerts/$A1/ack" "csrf=x&request_id=r0"
assert_eq 403 "$CODE" "a POST without a session is refused"
assert_eq 0 "$(actions "$A1")" "and records nothing"
hget /login
assert_eq 200 "$CODE" "the login page"
hget /nothing/here
assert_eq 303 "$CODE" "an unknown path without a session redirects to the login too"
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$BASE/")
assert_eq 405 "$CODE" "DELETE is not allowed"
hget "/login?next=%00"
assert_eq 400 "$CODE" "a NUL in the query is refused"
hget "/login?next=%g1"
assert_eq 400 "$CODE" "a bad percent escape is refused"
head -c 70000 /dev/zero | tr '\0' a >big.txt
CODE=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary @big.txt "$BASE/login")
assert_eq 413 "$CODE" "a form body over 64 KiB is refused"

# ---------------------------------------------------------------------------
section "security headers"
hget /login
assert_eq "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'" \
    "$(header Content-Security-Policy)" "Content-Security-Policy"
assert_eq nosniff "$(header X-Content-Type-Options)" "X-Content-Type-Options"
assert_eq no-referrer "$(header Referrer-Policy)" "Referrer-Policy"
assert_eq DENY "$(header X-Frame-Options)" "X-Frame-Options"
assert_eq no-store "$(header Cache-Control)" "Cache-Control on a page"
hget /livez
assert_eq DENY "$(header X-Frame-Options)" "headers on /livez too"

# ---------------------------------------------------------------------------
section "login"
hpost /login "name=rita&password=wrong-password-0"
assert_ne 303 "$CODE" "a wrong password does not log in"
assert_eq "" "$(header Set-Cookie)" "and sets no cookie"
hpost /login "name=rita&password=$PW_R" -H "Origin: http://evil.example"
assert_eq 403 "$CODE" "a login form posted from another origin is refused"
hpost "/login?next=//evil.example/x" "name=rita&password=$PW_R"
assert_eq "/" "$(header Location)" "a next that leaves the site goes to / instead"
hpost "/login?next=/rules" "name=rita&password=$PW_R"
assert_eq "/rules" "$(header Location)" "a local next is where the login leads"
hget "/login?next=%2Falerts%2F$A1%3Fx%3D1"
assert_match "name=\"next\" value=\"/alerts/$A1\?x=1\"" "$(cat "$T/b")" \
    "the login form carries the page asked for as its next field"
hpost /login "name=rita&password=$PW_R&next=%2Falerts%2F$A1%3Fx%3D1"
assert_eq "/alerts/$A1?x=1" "$(header Location)" "the form's next is where the login leads"
for bad in '%2F%2Fevil.example%2Fx' '%2F%5Cevil.example' 'https%3A%2F%2Fevil.example%2F' \
    '%2Fa%0D%0ASet-Cookie%3A+x%3D1' 'javascript%3Aalert(1)' '%2F%09%2Fevil.example'; do
    hpost /login "name=rita&password=$PW_R&next=$bad"
    assert_eq "303 /" "$CODE $(header Location)" "a hostile next ($bad) leads to / instead"
done
hget "/login?next=%2F%2Fevil.example"
assert_match 'name="next" value=""' "$(cat "$T/b")" "the login form never carries a next that leaves the site"
hpost /login "name=rita&password=wrong-password-0&next=%2Frules"
assert_match 'name="next" value="/rules"' "$(cat "$T/b")" "a failed login shows the form again with its next"
hpost /login "name=rita&password=$PW_R" -H "Origin: $BASE"
assert_eq 303 "$CODE" "rita logs in"
COOKIE=$(header Set-Cookie)
assert_match '^pvwatch_session=[0-9a-f]{64};' "$COOKIE" "the session cookie"
assert_match '; HttpOnly' "$COOKIE" "HttpOnly"
assert_match '; SameSite=Strict' "$COOKIE" "SameSite=Strict"
assert_match '; Path=/' "$COOKIE" "Path=/"
RC_JAR=(-H "Cookie: ${COOKIE%%;*}")
hget / "${RC_JAR[@]}"
assert_eq 200 "$CODE" "the worklist with the session"
hget "/alerts/$A1" "${RC_JAR[@]}"
assert_eq 200 "$CODE" "the alert page"
CSRF=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/b" | head -n 1)
assert_match '^[0-9a-f]{64}$' "$CSRF" "the alert page's forms carry the CSRF token"

# ---------------------------------------------------------------------------
section "sessions.last_seen: moved by a request, at most once a minute"
TOK=${COOKIE%%;*}
TOKH=$(printf '%s' "${TOK#pvwatch_session=}" | sha256sum | cut -d' ' -f1)
seen() { q "SELECT last_seen FROM sessions WHERE token_sha256 = '$TOKH'"; }
qw "UPDATE sessions SET last_seen = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 seconds') WHERE token_sha256 = '$TOKH'"
SEEN0=$(seen)
assert_match '^20[0-9-]+T' "$SEEN0" "the session has a last_seen"
hget / "${RC_JAR[@]}"
assert_eq "200 $SEEN0" "$CODE $(seen)" "a request 30 s after the last one writes nothing"
qw "UPDATE sessions SET last_seen = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-120 seconds') WHERE token_sha256 = '$TOKH'"
hget / "${RC_JAR[@]}"
AGE=$(q "SELECT strftime('%s', 'now') - strftime('%s', last_seen) FROM sessions WHERE token_sha256 = '$TOKH'")
assert_match '^[0-9]$' "$AGE" "a request two minutes after the last one moves last_seen to now (age ${AGE}s)"

# ---------------------------------------------------------------------------
section "CSRF and roles"
hpost "/alerts/$A1/ack" "request_id=r1" "${RC_JAR[@]}"
assert_eq 403 "$CODE" "a POST without csrf is refused"
hpost "/alerts/$A1/ack" "csrf=0000000000000000000000000000000000000000000000000000000000000000&request_id=r1" "${RC_JAR[@]}"
assert_eq 403 "$CODE" "a POST with a wrong csrf is refused"
hpost "/alerts/$A1/ack" "csrf=$CSRF&request_id=r1&x=%zz" "${RC_JAR[@]}"
assert_eq 400 "$CODE" "a malformed form is refused"
assert_eq 0 "$(actions "$A1")" "no alert_actions row after refused POSTs"
hpost /login "name=victor&password=$PW_V"
assert_eq 303 "$CODE" "victor (viewer) logs in"
VCOOKIE=$(header Set-Cookie)
hget "/alerts/$A1" -H "Cookie: ${VCOOKIE%%;*}"
assert_eq 200 "$CODE" "a viewer reads the alert page"
VCSRF=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/b" | head -n 1)
hpost "/alerts/$A1/ack" "csrf=$VCSRF&request_id=v1" -H "Cookie: ${VCOOKIE%%;*}"
assert_eq 403 "$CODE" "a viewer's POST is refused"
assert_eq 0 "$(actions "$A1")" "and records nothing"

# ---------------------------------------------------------------------------
section "acknowledge, once for a request_id posted twice"
hpost "/alerts/$A1/ack" "csrf=$CSRF&request_id=req-ack-1" "${RC_JAR[@]}"
assert_eq 303 "$CODE" "the reviewer's ack"
assert_eq "/alerts/$A1" "$(header Location)" "back to the alert page"
assert_eq "acknowledged|rita|rita" "$(q "SELECT action, actor, entered_by FROM alert_actions WHERE alert_id = $A1 AND action = 'acknowledged'")" \
    "one alert_actions row, actor and entered_by the user"
assert_eq acknowledged "$(q "SELECT status FROM alerts WHERE id = $A1")" "the alert is acknowledged"
hpost "/alerts/$A1/ack" "csrf=$CSRF&request_id=req-ack-1" "${RC_JAR[@]}"
assert_eq 303 "$CODE" "the same form posted again"
assert_eq 1 "$(actions "$A1")" "still one row"
check_wait "grep -q '\"acknowledged\"' alerts.jsonl" 10 "the engine writes the ack's alert-log line"

# ---------------------------------------------------------------------------
section "markup in a patient id is shown as text"
hget "/alerts/$AX" "${RC_JAR[@]}"
assert_eq 200 "$CODE" "the alert page of the markup id"
assert_no_match '<script>alert\(1\)</script>' "$(cat "$T/b")" "no live script tag in the page"
assert_match '&lt;script&gt;alert\(1\)&lt;/script&gt;' "$(cat "$T/b")" "the id shown escaped"
hget "/patients/%3Cscript%3Ealert(1)%3C%2Fscript%3E" "${RC_JAR[@]}"
assert_eq 200 "$CODE" "the patient page of the markup id"
assert_no_match '<script>alert\(1\)</script>' "$(cat "$T/b")" "no live script tag in the patient page"

# ---------------------------------------------------------------------------
section "MLLP still acknowledges while the console serves"
printf 'MSH|^~\\&|E2E|E2ELAB|PVWATCH|PV|20260301120000||ORU^R01^ORU_R01|HTTP-1|P|2.5.1\rPID|1||P9^^^E2E^MR||Doe^Jane||19700101|F\rOBR|1|ORD-1||57021-8^CBC^LN|||20260301100000\rOBX|1|NM|751-8^ANC^LN||3.1|10*9/L|1.5-7.0|N|||F|||20260301100000\r' >m1.hl7
CURLS=()
for i in 1 2 3 4; do
    curl -s -o "$T/page$i" -w '%{http_code}' "${RC_JAR[@]}" "$BASE/?i=$i" >"$T/code$i" &
    CURLS+=($!)
done
pv send "127.0.0.1:$MLLP" m1.hl7
assert_eq 0 "$RC" "pvwatch send"
assert_match 'AA' "$OUT" "the message is acknowledged AA"
wait "${CURLS[@]}"
assert_eq "200 200 200 200" "$(cat "$T/code1") $(cat "$T/code2") $(cat "$T/code3") $(cat "$T/code4")" \
    "the pages asked at the same time were served"

# ---------------------------------------------------------------------------
section "under run, the console's threads yield the CPU to the engine"
THR=$(console_threads "$PV_PID")
assert_match '^[0-9]+ ' "$THR" "the pool threads that served are named pv-console"
assert_eq "" "$(echo "$THR" | awk '$2 != 5 && !($2 == 0 && $3 == 19)')" \
    "each is SCHED_IDLE (policy 5), else nice 19: $(echo "$THR" | tr '\n' ';')"
assert_eq "" "$(echo "$THR" | awk '$2 != 5')" "on this machine: SCHED_IDLE"
assert_eq "0 0" "$(cut -d' ' -f41,19 "/proc/$PV_PID/stat" 2>/dev/null | awk '{print $2, $1}')" \
    "the engine's loop thread stays SCHED_OTHER at nice 0"

# ---------------------------------------------------------------------------
section "logout"
hpost /logout "csrf=$CSRF&request_id=lo1" "${RC_JAR[@]}"
assert_eq 303 "$CODE" "logout"
hget / "${RC_JAR[@]}"
assert_eq 303 "$CODE" "the old cookie no longer opens the worklist"

pv serve -c pv.lua --listen "$WEB"
assert_eq 2 "$RC" "serve on the port the run's console has fails"
assert_match 'cannot listen on' "$ERR" "and says why"
assert_match 'login refused for .rita. from 127\.0\.0\.1' "$(cat pv.err)" "a refused login is logged"

stop_pv
assert_eq 0 "$STOP_RC" "run stops cleanly with the console on"

# ---------------------------------------------------------------------------
section "pvwatch check and the http table"
write_config wide.lua 'http = { listen = "0.0.0.0:8080" }'
pv check -c wide.lua
assert_eq 0 "$RC" "check: a console beyond loopback is only a warning"
assert_match "http.listen '0.0.0.0:8080' accepts connections from other machines" "$ERR" \
    "check warns that the console listens beyond loopback"
pv check -c pv.lua
assert_no_match 'http.listen' "$ERR" "no warning for a loopback console"
write_config bad.lua 'http = { listen = "nope", threads = 0, colour = 1 }'
pv check -c bad.lua
assert_eq 2 "$RC" "check: a bad http table is an error"
assert_match "http.listen 'nope' is not HOST:PORT" "$ERR" "names a listen that is not HOST:PORT"
assert_match 'http.threads' "$ERR" "names threads out of range"
assert_match "unknown key 'http.colour'" "$ERR" "names an unknown key"

# ---------------------------------------------------------------------------
section "pvwatch serve alone"
pv serve --help
assert_eq 0 "$RC" "serve --help"
assert_match 'usage: pvwatch serve' "$OUT" "serve --help prints the usage"
mkdir -p elsewhere
write_config elsewhere/pv.lua
pv serve -c elsewhere/pv.lua --listen 127.0.0.1:0
assert_eq 2 "$RC" "serve without a database fails"
assert_match 'no database' "$ERR" "and says so"
assert_no_file elsewhere/pv.db "serve creates no database"
start_pv serve serve -c pv.lua --listen 127.0.0.1:0
check_wait "grep -q 'serve running' serve.err" 15 "serve starts"
WEB=$(sed -n 's|.*console on http://\(127\.0\.0\.1:[0-9]*\)/.*|\1|p' serve.err | head -n 1)
BASE="http://$WEB"
hget /livez
assert_eq 200 "$CODE" "serve: /livez"
hpost /login "name=rita&password=$PW_R"
assert_eq 303 "$CODE" "serve: rita logs in"
COOKIE=$(header Set-Cookie)
RC_JAR=(-H "Cookie: ${COOKIE%%;*}")
hget "/alerts/$AX" "${RC_JAR[@]}"
assert_eq 200 "$CODE" "serve: the alert page"
CSRF=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/b" | head -n 1)
hpost "/alerts/$AX/ack" "csrf=$CSRF&request_id=serve-ack-1" "${RC_JAR[@]}"
assert_eq 303 "$CODE" "serve: ack"
assert_eq "rita" "$(q "SELECT actor FROM alert_actions WHERE alert_id = $AX AND action = 'acknowledged'")" "serve: the row"
THR=$(console_threads "$PV_PID")
assert_match '^[0-9]+ 0 0' "$THR" "serve alone: the pool threads are named pv-console"
assert_eq "" "$(echo "$THR" | awk '$2 != 0 || $3 != 0')" "serve alone: no pv-console thread is SCHED_IDLE or niced"
stop_pv "$PV_PID" 15 INT
assert_eq 0 "$STOP_RC" "serve stops cleanly on SIGINT"

finish
