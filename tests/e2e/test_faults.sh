#!/usr/bin/env bash
# End to end: faults around a running pvwatch (issue 6, "Faults").
#
#   1. Disk full: the database lives on a 4 MiB tmpfs (we run as root in
#      the test container, so 'mount -t tmpfs' works) that a filler file
#      fills up. Senders get AE (never AA for what was not stored), nothing
#      acknowledged is lost, and when the filler is deleted the next
#      message gets AA without a restart. Where mounting is impossible the
#      same is done with a file-size limit on the pvwatch process
#      (prlimit --fsize, SIGXFSZ ignored, so write() fails with EFBIG —
#      SQLite then reports an I/O error instead of "disk full"); the output
#      says which was used.
#   2. The database write-locked by another process (Python's sqlite3,
#      BEGIN EXCLUSIVE, held): AE after busy_timeout (5 s), no crash; AA
#      once the lock is released.
#   3. SMTP down: the alert is committed, its outbox row stays pending and
#      is retried; when a server appears on the port the mail is delivered,
#      once.
#   4. Plugin directory unusable: a file instead of a directory, a missing
#      directory, a dangling plugin symlink, and (run as 'nobody' with
#      setpriv, since root ignores modes) a directory with mode 000:
#      'pvwatch check' and 'pvwatch run' exit 2 naming the path and reason.
#   5. Reload with a broken plugin: a syntax error saved into a plugin while
#      pvwatch runs leaves the old rules in force (facts still raise
#      alerts), raises the engine alert "Rule reload failed"; saving the
#      fixed file reloads.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUSY_TIMEOUT=5 # s: store.c's sqlite3_busy_timeout
MNT=$T/small

# The tmpfs must be unmounted before lib.sh removes $T: stop every process
# first (pvwatch holds the database open), then unmount, then clean up.
# shellcheck disable=SC2317 # called by the EXIT trap
_faults_cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    if mountpoint -q "$MNT" 2>/dev/null; then
        umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    fi
    _cleanup
}
trap _faults_cleanup EXIT

MED_HDR='patient_id,drug,start,dose,dose_unit'

# oru CTL PATIENT ANC [NTE-BYTES]: an ORU^R01 with one ANC result (10*9/L)
# and, optionally, an NTE of that many bytes (to fill a disk quickly).
oru() {
    printf 'MSH|^~\\&|FAULTS|LAB|PVWATCH|PV|20260301120000||ORU^R01|%s|P|2.5.1\r' "$1"
    printf 'PID|1||%s^^^E2E^MR\r' "$2"
    printf 'OBR|1|ORD-%s||57021-8^CBC^LN|||20260301100000\r' "$1"
    printf 'OBX|1|NM|751-8^Neutrophils^LN||%s|10*9/L|1.5-7.0|L|||F|||20260301100000\r' "$3"
    if [ "${4:-0}" -gt 0 ]; then
        printf 'NTE|1||%s\r' "$(head -c "$4" /dev/zero | tr '\0' n)"
    fi
}

# send FILE: 'pvwatch send' to $PORT with a deadline; sets SEND_RC,
# SEND_OUT (its output line) and SEND_MS.
SEND_RC=0
SEND_OUT=""
SEND_MS=0
now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    printf '%s' $((t / 1000))
}
send() {
    local t0
    t0=$(now_ms)
    SEND_OUT=$(timeout 60 "$PVWATCH" send "127.0.0.1:$PORT" "$1" 2>&1)
    SEND_RC=$?
    SEND_MS=$(($(now_ms) - t0))
}

# ack_code: the code of the last send ("AA", "AE", ...), from its line
# "FILE:LINE: CODE control-id [text]".
ack_code() {
    printf '%s' "$SEND_OUT" | sed -n 's/^[^ ]*: \(A[AER]\) .*/\1/p' | head -n 1
}

# start_run DIR: 'pvwatch run -c DIR/pv.lua' in DIR; sets PV_PID and PORT.
start_run() {
    start_pv_in "$1" "$1/pv" run -c pv.lua
    expect_running "$1/pv"
    PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1/pv.err" | head -n 1)
    if [ -z "$PORT" ]; then
        fail "pvwatch did not name its MLLP port"
        finish
    fi
}

# drop DIR NAME TEXT: puts a file into DIR/inbox the safe way (written as
# .NAME, then renamed) and waits until it was processed.
drop() {
    printf '%s' "$3" >"$1/inbox/.$2"
    mv "$1/inbox/.$2" "$1/inbox/$2"
    check_wait "[ -e '$1/inbox/processed/$2' ]" 15 "$2 is processed from the inbox"
}

alive() {
    if kill -0 "$PV_PID" 2>/dev/null; then pass; else
        fail "$1: pvwatch is no longer running"
        finish
    fi
}

# ---------------------------------------------------------------------------
section "disk full: AE while full, nothing acknowledged lost, AA when space returns"
mkdir -p "$MNT" full/inbox
FULL_MODE=tmpfs
if [ "${PV_FAULTS_FORCE_FSIZE:-0}" != 1 ] && mount -t tmpfs -o size=4m,mode=0700 tmpfs "$MNT" 2>full/mount.err; then
    echo "   disk full: a 4 MiB tmpfs at $MNT"
else
    FULL_MODE=fsize
    echo "   SKIP tmpfs: $(if [ "${PV_FAULTS_FORCE_FSIZE:-0}" = 1 ]; then echo "PV_FAULTS_FORCE_FSIZE=1"; else
        echo "cannot mount a tmpfs here: $(cat full/mount.err 2>/dev/null)"; fi);" \
        "using a file-size limit on the pvwatch process instead (prlimit --fsize)"
fi
(
    cd full || exit 1
    write_config pv.lua "database = \"$MNT/pv.db\"
mllp = { listen = \"127.0.0.1:0\", max_message = 1048576 }"
)
if [ "$FULL_MODE" = fsize ]; then
    # An ignored SIGXFSZ is inherited through exec: write() then fails with
    # EFBIG instead of killing the process.
    trap '' XFSZ
    start_run full
    trap - XFSZ
else
    start_run full
fi

# A few messages before the disk fills: acknowledged, so they must survive.
declare -A CODE=()
AA_IDS=()
for i in 1 2 3; do
    oru "FULL-$i" "P-FULL-$i" 0.8 >"full/m$i.hl7"
    send "full/m$i.hl7"
    CODE[FULL-$i]=$(ack_code)
    [ "${CODE[FULL-$i]}" = AA ] && AA_IDS+=("FULL-$i")
done
assert_eq "AA AA AA" "${CODE[FULL-1]} ${CODE[FULL-2]} ${CODE[FULL-3]}" "before the disk fills: AA"

# Fill the disk (or set the size limit just above what the files have).
if [ "$FULL_MODE" = tmpfs ]; then
    dd if=/dev/zero of="$MNT/filler" bs=64k 2>/dev/null
    echo "   filler: $(du -k "$MNT/filler" | cut -f1) kB; free now: $(df -k "$MNT" | awk 'NR == 2 { print $4 }') kB"
else
    used=$(($(stat -c %s "$MNT/pv.db") + $(stat -c %s "$MNT/pv.db-wal" 2>/dev/null || echo 0)))
    prlimit --pid "$PV_PID" --fsize=$((used + 65536)):unlimited
fi

# Big messages until the store fails (bounded: 40 messages at most).
n=3
ae_seen=0
while [ "$n" -lt 43 ]; do
    n=$((n + 1))
    oru "FULL-$n" "P-FULL-$n" 0.8 200000 >"full/m$n.hl7"
    send "full/m$n.hl7"
    CODE[FULL-$n]=$(ack_code)
    case "${CODE[FULL-$n]}" in
    AA) AA_IDS+=("FULL-$n") ;;
    AE)
        ae_seen=$((ae_seen + 1))
        [ "$ae_seen" -ge 3 ] && break
        ;;
    *) fail "FULL-$n: neither AA nor AE: $SEND_OUT" ;;
    esac
done
echo "   $n messages sent; AA: ${#AA_IDS[@]}, AE: $ae_seen"
assert_eq 3 "$ae_seen" "once the disk is full, senders get AE"
assert_match 'AE FULL-[0-9]+ .*database error' "$SEND_OUT" "the AE says the message could not be stored"
if [ "$FULL_MODE" = tmpfs ]; then
    assert_match '(not committed|not stored).*disk is full' "$(cat full/pv.err)" \
        "the log says what failed and why (disk is full)"
else
    assert_match '(not committed|not stored).*(I/O|disk)' "$(cat full/pv.err)" \
        "the log says what failed and why (an I/O error)"
fi
alive "while the disk is full"

# Space returns: the next message gets AA, without a restart.
if [ "$FULL_MODE" = tmpfs ]; then
    rm -f "$MNT/filler"
else
    prlimit --pid "$PV_PID" --fsize=unlimited:unlimited
fi
oru FULL-AFTER P-FULL-AFTER 0.8 >full/after.hl7
send full/after.hl7
assert_eq AA "$(ack_code)" "space returned: the next message gets AA at once ($SEND_OUT)"
# The senders re-send what got AE: each gets AA now.
resent_ok=0
for id in "${!CODE[@]}"; do
    [ "${CODE[$id]}" = AE ] || continue
    send "full/m${id#FULL-}.hl7"
    [ "$(ack_code)" = AA ] && resent_ok=$((resent_ok + 1))
done
assert_eq "$ae_seen" "$resent_ok" "every message that got AE gets AA when sent again"
alive "after the disk had space again"
stop_pv "$PV_PID" 15
assert_eq 0 "$STOP_RC" "pvwatch stops with status 0"

# Nothing acknowledged lost: every AA'd message is stored exactly once,
# with its observation.
missing=""
for id in "${AA_IDS[@]}"; do
    got="$(q -d "$MNT/pv.db" "SELECT count(*) FROM messages WHERE control_id = '$id'")|$(q -d "$MNT/pv.db" "SELECT count(*) FROM observations o JOIN messages m ON m.id = o.message_id WHERE m.control_id = '$id'")"
    [ "$got" = "1|1" ] || missing="$missing $id($got)"
done
assert_eq "" "$missing" "every message acknowledged AA (${#AA_IDS[@]} before, during and after) is stored once with its fact"
assert_eq $((n + 1)) "$(q -d "$MNT/pv.db" "SELECT count(DISTINCT control_id) FROM messages WHERE control_id LIKE 'FULL-%'")" \
    "after the re-sends, all $((n + 1)) messages are stored"
assert_eq 0 "$(q -d "$MNT/pv.db" "SELECT count(*) FROM (SELECT control_id FROM messages GROUP BY control_id HAVING count(*) > 1)")" \
    "none twice"
assert_eq ok "$(q -d "$MNT/pv.db" 'PRAGMA integrity_check')" "the database is intact"

# ---------------------------------------------------------------------------
section "the database write-locked by another process: AE after busy_timeout, then AA"
mkdir -p main/inbox main/plugins
cp "$PV_SOURCE_DIR/plugins/cytopenia.lua" main/plugins/
SMTP_PORT=$("$PYTHON" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(
    cd main || exit 1
    CFG_PLUGINS=$T/main/plugins write_config pv.lua "email = { url = \"smtp://127.0.0.1:$SMTP_PORT\", tls = \"none\",
  from = \"pvwatch@example.org\", to = { \"safety@example.org\" }, min_severity = \"low\",
  timeout = 2, retry_base = 0.2, retry_cap = 0.5, max_attempts = 1000 }"
)
start_run main
cat >locker.py <<'EOF'
import os, sqlite3, sys, time
db, flag, release = sys.argv[1:4]
con = sqlite3.connect(db, isolation_level=None, timeout=10)
con.execute("BEGIN EXCLUSIVE")
open(flag, "w").write("locked\n")
deadline = time.monotonic() + 60
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.05)
con.execute("ROLLBACK")
con.close()
EOF
timeout 90 "$PYTHON" locker.py main/pv.db locked.flag release.flag &
LOCKER_PID=$!
BG_PIDS+=("$LOCKER_PID")
check_wait "[ -s locked.flag ]" 15 "another process holds the write lock"
oru LOCK-1 P-LOCK 0.8 >lock.hl7
send lock.hl7
echo "   while locked: $SEND_OUT ($SEND_MS ms)"
assert_eq "AE|1" "$(ack_code)|$SEND_RC" "while the database is locked: AE (and 'pvwatch send' exits 1)"
assert_eq True "$(awk -v ms="$SEND_MS" -v b="$BUSY_TIMEOUT" 'BEGIN { print (ms >= b * 1000 - 500 && ms < b * 1000 + 4000) ? "True" : "False" }')" \
    "after busy_timeout (${BUSY_TIMEOUT} s; took $SEND_MS ms)"
alive "while the database is locked"
assert_match 'message not stored: .*(locked|busy)' "$(cat main/pv.err)" "the log names the lock"
: >release.flag
wait_for "! kill -0 $LOCKER_PID" 15
send lock.hl7
assert_eq AA "$(ack_code)" "the lock released: the same message gets AA ($SEND_OUT)"
assert_eq "1|1" "$(q -d main/pv.db "SELECT count(*) FROM messages WHERE control_id = 'LOCK-1'")|$(q -d main/pv.db "SELECT count(*) FROM observations WHERE patient_id = 'P-LOCK'")" \
    "stored once"

# ---------------------------------------------------------------------------
section "SMTP down: the outbox row stays pending, nothing is lost"
drop main meds.csv "$MED_HDR
P-MAIL,baricitinib,2026-01-01,2,mg
P-R1,baricitinib,2026-01-01,2,mg
P-R2,baricitinib,2026-01-01,2,mg
P-R3,baricitinib,2026-01-01,2,mg
P-R4,baricitinib,2026-01-01,2,mg
"
oru MAIL-1 P-MAIL 0.8 >mail.hl7
send mail.hl7
assert_eq AA "$(ack_code)" "the lab is stored (AA)"
assert_eq 1 "$(q -d main/pv.db "SELECT count(*) FROM alerts WHERE patient_id = 'P-MAIL' AND rule = 'baricitinib.neutropenia'")" \
    "the alert is committed"
check_wait "[ \"\$(q -d main/pv.db \"SELECT attempts >= 3 FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE a.patient_id = 'P-MAIL'\")\" = 1 ]" 20 \
    "delivery is retried while nothing listens on the SMTP port"
assert_eq "pending" "$(q -d main/pv.db "SELECT o.status FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE a.patient_id = 'P-MAIL'")" \
    "the outbox row stays pending"
assert_ne "" "$(q -d main/pv.db "SELECT last_error FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE a.patient_id = 'P-MAIL'")" \
    "with the last error recorded"
alive "while SMTP is down"
"$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$T/maildir" >smtp.log 2>&1 &
SMTP_PID=$!
BG_PIDS+=("$SMTP_PID")
check_wait "[ \"\$(q -d main/pv.db \"SELECT o.status FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE a.patient_id = 'P-MAIL'\")\" = sent ]" 20 \
    "once a server listens, the mail is sent"
check_wait "[ \"\$(find '$T/maildir/new' -type f 2>/dev/null | wc -l)\" -ge 1 ]" 10 "and arrives"
sleep_until=$(($(date +%s) + 2))
wait_for "[ \$(date +%s) -ge $sleep_until ]" 5 # two more retry periods: no second copy
assert_eq 1 "$(grep -l 'P-MAIL' "$T"/maildir/new/* 2>/dev/null | wc -l | tr -d ' ')" "exactly once"

# ---------------------------------------------------------------------------
section "reload with a broken plugin: old rules stay, engine alert, fixed file reloads"
oru R-1 P-R1 0.8 >r1.hl7
send r1.hl7
assert_eq 1 "$(q -d main/pv.db "SELECT count(*) FROM alerts WHERE patient_id = 'P-R1' AND rule = 'baricitinib.neutropenia'")" \
    "before: a fact raises the alert"
cp main/plugins/cytopenia.lua cytopenia.good
reload_fail0=$(grep -c 'reload failed' main/pv.err)
printf '\nlocal broken = = 1\n' >>main/plugins/cytopenia.lua
check_wait "[ \$(grep -c 'reload failed' main/pv.err) -gt $reload_fail0 ]" 10 \
    "saving a syntax error triggers a reload, which fails"
assert_match 'cytopenia\.lua:[0-9]+:' "$(sed -n '/reload failed/,$p' main/pv.err)" "the log names the file and line"
# The log line comes first, the engine alert's commit right after it.
wait_for "[ \"\$(q -d main/pv.db \"SELECT count(*) FROM alerts WHERE rule = 'pvwatch.reload'\")\" = 1 ]" 10
assert_eq "1|high|open" \
    "$(q -d main/pv.db "SELECT count(*), severity, status FROM alerts WHERE signal = 'engine' AND rule = 'pvwatch.reload' AND title LIKE 'Rule reload failed%'")" \
    "an engine alert 'Rule reload failed' is raised"
assert_match 'cytopenia\.lua' "$(q -d main/pv.db "SELECT detail FROM alerts WHERE rule = 'pvwatch.reload'")" \
    "its detail names the plugin"
oru R-2 P-R2 0.8 >r2.hl7
send r2.hl7
assert_eq AA "$(ack_code)" "while the plugin is broken, facts are still stored (AA)"
assert_eq 1 "$(q -d main/pv.db "SELECT count(*) FROM alerts WHERE patient_id = 'P-R2' AND rule = 'baricitinib.neutropenia'")" \
    "and the old rules still raise alerts"
# SIGHUP while still broken: fails again; the engine alert repeats.
kill -HUP "$PV_PID"
check_wait "[ \$(grep -c 'reload failed' main/pv.err) -gt $((reload_fail0 + 1)) ]" 10 "SIGHUP: the reload fails again"
wait_for "[ \"\$(q -d main/pv.db \"SELECT max(occurrences) FROM alerts WHERE rule = 'pvwatch.reload'\")\" = 2 ]" 10
assert_eq "1|2" "$(q -d main/pv.db "SELECT count(*), max(occurrences) FROM alerts WHERE rule = 'pvwatch.reload'")" \
    "the same engine alert, repeated (occurrences 2)"
reloaded0=$(grep -c 'rules reloaded' main/pv.err)
cp cytopenia.good main/plugins/cytopenia.lua
check_wait "[ \$(grep -c 'rules reloaded' main/pv.err) -gt $reloaded0 ]" 10 "saving the fixed file reloads the rules"
oru R-3 P-R3 0.8 >r3.hl7
send r3.hl7
assert_eq 1 "$(q -d main/pv.db "SELECT count(*) FROM alerts WHERE patient_id = 'P-R3' AND rule = 'baricitinib.neutropenia'")" \
    "after the fix: facts raise alerts"
alive "after the reloads"
stop_pv "$PV_PID" 15
assert_eq 0 "$STOP_RC" "pvwatch stops with status 0"
assert_eq "" "$(grep -iE 'abort|assert|sanitizer|segmentation' main/pv.err | head -n 3)" "no crash in the log"

# ---------------------------------------------------------------------------
section "plugin directory unusable: check and run exit 2 and say why"
mkdir -p bad
# expect_refused NAME NEEDLE: 'pvwatch check' and 'pvwatch run' with
# bad/NAME.lua exit 2 and name NEEDLE on stderr.
expect_refused() {
    pv check -c "bad/$1.lua"
    assert_eq 2 "$RC" "$1: pvwatch check exits 2"
    assert_match "$2" "$ERR" "$1: pvwatch check says why"
    timeout 20 "$PVWATCH" run -c "bad/$1.lua" >"bad/$1.run.out" 2>"bad/$1.run.err"
    assert_eq 2 "$?" "$1: pvwatch run exits 2 (and does not start)"
    assert_match "$2" "$(cat "bad/$1.run.err")" "$1: pvwatch run says why"
}
printf 'not a directory\n' >bad/plugins_file
write_config bad/file.lua 'plugins = { "plugins_file" }
mllp = { listen = "127.0.0.1:0" }'
expect_refused file "plugins_file.*(Not a directory|not a directory)"
write_config bad/missing.lua 'plugins = { "no_such_dir" }
mllp = { listen = "127.0.0.1:0" }'
expect_refused missing "no_such_dir.*(No such file|does not exist|not found)"
mkdir -p bad/dangling
ln -sf /nonexistent/plugin.lua bad/dangling/x.lua
write_config bad/dangling.lua 'plugins = { "dangling" }
mllp = { listen = "127.0.0.1:0" }'
expect_refused dangling "x\.lua.*(No such file|cannot)"
# Mode 000 means nothing to root: run as 'nobody' (setpriv) in a directory
# nobody can use.
if command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
    chmod 711 "$T"
    mkdir -p nob/plugins
    cp "$PV_SOURCE_DIR/plugins/cytopenia.lua" nob/plugins/
    cp -r "$PV_SOURCE_DIR/scripts" nob/scripts
    cat >nob/pv.lua <<'EOF'
database = "pv.db"
alert_log = "alerts.jsonl"
plugins = { "plugins" }
scripts = { "scripts" }
inbox = { path = "inbox" }
mllp = { listen = "127.0.0.1:0" }
EOF
    cp "$PVWATCH" nob/pvwatch
    chmod -R a+rX nob
    chmod 777 nob
    chmod 000 nob/plugins
    as_nobody() {
        setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups "$@"
    }
    as_nobody "$T/nob/pvwatch" check -c "$T/nob/pv.lua" >nob.out 2>nob.err
    assert_eq 2 "$?" "plugins mode 000 (as nobody): pvwatch check exits 2"
    assert_match 'plugins.*Permission denied' "$(cat nob.err)" "it says 'Permission denied' and names the directory"
    (cd nob && timeout 20 setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups \
        ./pvwatch run -c pv.lua) >nob.run.out 2>nob.run.err
    assert_eq 2 "$?" "plugins mode 000 (as nobody): pvwatch run exits 2"
    assert_match 'plugins.*Permission denied' "$(cat nob.run.err)" "and says why"
    chmod 755 nob/plugins
    as_nobody "$T/nob/pvwatch" check -c "$T/nob/pv.lua" >nob.out 2>nob.err
    assert_eq 0 "$?" "the same directory readable again: pvwatch check exits 0 (control)"
    chmod 700 "$T"
else
    echo "   SKIP mode 000 as nobody: setpriv or the user 'nobody' is missing"
fi

finish
