# shellcheck shell=bash
# The globals set here (RC, OUT, ERR, STOP_RC, ...) are read by the tests.
# shellcheck disable=SC2034
# lib.sh: helpers shared by the end-to-end tests (tests/e2e/test_*.sh).
#
# Each test script sources this file, which
#   - finds the binary ($PVWATCH), the source tree ($PV_SOURCE_DIR) and the
#     shared corpus ($PV_SHARED_DIR), as ctest passes them (tests.cmake),
#     with fall-backs so a script also runs by hand: bash tests/e2e/test_x.sh
#   - makes a temporary directory ($T) and changes into it; it is removed on
#     exit (kept when PV_KEEP_TMP=1, for a post-mortem), and every pvwatch
#     started in the background with start_pv is stopped by its process id
#   - counts assertions; 'finish' prints 'N passed, N failed' and exits 1
#     when anything failed.
#
# Nothing here sleeps for luck: wait_for polls a condition until a deadline.

set -u
set -o pipefail

PV_SOURCE_DIR=${PV_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PV_SHARED_DIR=${PV_SHARED_DIR:-$PV_SOURCE_DIR/../shared}
PV_BUILD_DIR=${PV_BUILD_DIR:-$PV_SOURCE_DIR/build}
PVWATCH=${PVWATCH:-$PV_BUILD_DIR/pvwatch}
export PV_SOURCE_DIR PV_SHARED_DIR PV_BUILD_DIR PVWATCH

# The system interpreter starts in a tenth of the time of a version
# manager's shim; either will do.
if [ -x /usr/bin/python3 ]; then
    PYTHON=/usr/bin/python3
else
    PYTHON=python3
fi

PASSED=0
FAILED=0
CURRENT_SECTION=""
BG_PIDS=()

T=$(mktemp -d "${TMPDIR:-/tmp}/pvwatch-e2e.XXXXXX") || {
    echo "cannot create a temporary directory" >&2
    exit 1
}

_cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    if [ "${PV_KEEP_TMP:-0}" = 1 ]; then
        echo "kept $T" >&2
    else
        rm -rf "$T"
    fi
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

cd "$T" || exit 1

if [ ! -x "$PVWATCH" ]; then
    echo "pvwatch binary not found at $PVWATCH (build first)" >&2
    exit 1
fi

# ---------------------------------------------------------------------------
# Reporting

# section NAME: names the group of assertions that follow, for messages.
section() {
    CURRENT_SECTION=$1
    printf '== %s\n' "$1"
}

pass() {
    PASSED=$((PASSED + 1))
}

# fail MESSAGE...: records a failed assertion.
fail() {
    FAILED=$((FAILED + 1))
    # Name the test script's line: the caller's, or its caller's when
    # called from an assert_* helper.
    local i=1
    case "${FUNCNAME[1]:-}" in
    assert_* | check_*) i=2 ;;
    esac
    printf 'FAIL [%s] (%s:%s): %s\n' "$CURRENT_SECTION" \
        "$(basename "${BASH_SOURCE[$i]:-?}")" "${BASH_LINENO[$((i - 1))]:-?}" \
        "$*"
}

# assert_eq EXPECTED ACTUAL MESSAGE
assert_eq() {
    if [ "$1" = "$2" ]; then
        pass
    else
        fail "$3: expected [$1], got [$2]"
    fi
}

# assert_ne UNEXPECTED ACTUAL MESSAGE
assert_ne() {
    if [ "$1" != "$2" ]; then
        pass
    else
        fail "$3: did not expect [$1]"
    fi
}

# assert_match ERE TEXT MESSAGE: TEXT matches the extended regex.
# (A here-string, not printf | grep -q: bash's printf writes a line at a
# time, grep -q leaves at its first match, and the next write's EPIPE
# failed the pipeline under pipefail: a match reported as none, now and
# then, on a loaded machine.)
assert_match() {
    if grep -Eq -- "$1" <<<"$2"; then
        pass
    else
        fail "$3: [$2] does not match /$1/"
    fi
}

# assert_no_match ERE TEXT MESSAGE
assert_no_match() {
    if grep -Eq -- "$1" <<<"$2"; then
        fail "$3: [$2] matches /$1/"
    else
        pass
    fi
}

# assert_file FILE MESSAGE / assert_no_file FILE MESSAGE
assert_file() {
    if [ -e "$1" ]; then pass; else fail "$2: $1 does not exist"; fi
}
assert_no_file() {
    if [ -e "$1" ]; then fail "$2: $1 exists"; else pass; fi
}

# finish: prints the tally and exits with the script's status.
finish() {
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    if [ "$FAILED" -gt 0 ] || [ "$PASSED" -eq 0 ]; then
        exit 1
    fi
    exit 0
}

# ---------------------------------------------------------------------------
# Time

# _usec SECONDS: a decimal number of seconds ("10", "2.5") in microseconds.
_usec() {
    local int=${1%%.*} frac=
    [ "$int" != "$1" ] && frac=${1#*.}
    frac=${frac}000000
    echo $((10#${int:-0} * 1000000 + 10#${frac:0:6}))
}

# wait_for CONDITION TIMEOUT: evaluates the shell command CONDITION every
# 50 ms until it succeeds (returns 0) or TIMEOUT seconds (default 10; a
# decimal number) have passed (returns 1). The condition is evaluated once
# more at the deadline. The clock is bash's EPOCHREALTIME.
wait_for() {
    local cond=$1 timeout=${2:-10} now deadline
    now=${EPOCHREALTIME/[.,]/}
    deadline=$((now + $(_usec "$timeout")))
    while :; do
        if eval "$cond" >/dev/null 2>&1; then
            return 0
        fi
        now=${EPOCHREALTIME/[.,]/}
        if [ "$now" -ge "$deadline" ]; then
            eval "$cond" >/dev/null 2>&1
            return
        fi
        sleep 0.05
    done
}

# check_wait CONDITION TIMEOUT MESSAGE: wait_for as an assertion.
check_wait() {
    if wait_for "$1" "$2"; then
        pass
    else
        fail "$3 (waited ${2}s for: $1)"
    fi
}

# ---------------------------------------------------------------------------
# SQLite and JSON

# q [-d DB] SQL: prints the result of SQL on DB (default ./pv.db), one row a
# line, columns separated by '|'. Uses the sqlite3 CLI, or Python's sqlite3
# module where the CLI is missing.
q() {
    local db=pv.db
    if [ "$1" = "-d" ]; then
        db=$2
        shift 2
    fi
    if command -v sqlite3 >/dev/null 2>&1; then
        sqlite3 -batch -bail -cmd '.timeout 5000' "$db" "$1"
    else
        "$PYTHON" - "$db" "$1" <<'EOF'
import sqlite3, sys
con = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=5)
for row in con.execute(sys.argv[2]):
    print("|".join("" if v is None else str(v) for v in row))
EOF
    fi
}

# jsonl FILE PYEXPR: evaluates the Python expression PYEXPR with L bound to
# the list of objects of the JSON-lines FILE, and prints the result (None
# as empty). Fails (status 1, message on stderr) when a line is not JSON.
jsonl() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
L = []
with open(sys.argv[1], encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
        if line.strip():
            try:
                L.append(json.loads(line))
            except ValueError as e:
                sys.exit("%s:%d: not JSON: %s" % (sys.argv[1], n, e))
try:
    r = eval(sys.argv[2])
except Exception as e:
    r = "<%s: %s>" % (type(e).__name__, e)
print("" if r is None else r)
EOF
}

# json TEXT PYEXPR: the same for one JSON document (or a JSON-lines text),
# bound to J (a list when the text has one object per line).
json() {
    printf '%s' "$1" | "$PYTHON" -c '
import json, sys
text = sys.stdin.read()
try:
    J = json.loads(text)
except ValueError:
    J = [json.loads(l) for l in text.splitlines() if l.strip()]
try:
    r = eval(sys.argv[1])
except Exception as e:
    r = "<%s: %s>" % (type(e).__name__, e)
print("" if r is None else r)
' "$2"
}

# json_list TEXT PYEXPR: the same with J always a list: of the items of a
# JSON array, or of the objects of a JSON-lines text (one or more).
json_list() {
    printf '%s' "$1" | "$PYTHON" -c '
import json, sys
text = sys.stdin.read()
try:
    J = json.loads(text)
    if not isinstance(J, list):
        J = [J]
except ValueError:
    J = [json.loads(l) for l in text.splitlines() if l.strip()]
try:
    r = eval(sys.argv[1])
except Exception as e:
    r = "<%s: %s>" % (type(e).__name__, e)
print("" if r is None else r)
' "$2"
}

# ---------------------------------------------------------------------------
# Running pvwatch

# The rule under test, alone: the rest of the pack (scheduled monitoring
# rules, infections, ...) would add alerts of its own to the test data.
# Set PV_TEST_PLUGINS to a directory to run with other plugins.
PV_TEST_PLUGINS=${PV_TEST_PLUGINS:-$T/.plugins}
if [ ! -d "$PV_TEST_PLUGINS" ]; then
    mkdir -p "$PV_TEST_PLUGINS" &&
        cp "$PV_SOURCE_DIR/plugins/cytopenia.lua" "$PV_TEST_PLUGINS/"
fi

# write_config [FILE] [EXTRA-LUA]: the standard test configuration (paths
# relative to the config file's directory) plus any extra Lua lines.
# CFG_PLUGINS (default $PV_TEST_PLUGINS) is the rule directory.
write_config() {
    local file=${1:-pv.lua} extra=${2:-}
    cat >"$file" <<EOF
database = "pv.db"
alert_log = "alerts.jsonl"
inbox = { path = "inbox", settle = 0.3, rescan_interval = 0.2 }
plugins = { "${CFG_PLUGINS:-$PV_TEST_PLUGINS}" }
scripts = { "$PV_SOURCE_DIR/scripts" }
tail = { { path = "feed.csv" } }
mllp = { listen = "127.0.0.1:0" }
$extra
EOF
}

# pv ARGS...: runs pvwatch (stdin from the caller); stdout in $OUT, stderr
# in $ERR, status in $RC.
OUT=""
ERR=""
RC=0
pv() {
    "$PVWATCH" "$@" >"$T/.out" 2>"$T/.err"
    RC=$?
    OUT=$(cat "$T/.out")
    ERR=$(cat "$T/.err")
    return 0
}

# start_pv LOGBASE ARGS...: starts 'pvwatch ARGS' in the background with
# stdout/stderr in LOGBASE.out / LOGBASE.err; sets PV_PID.
PV_PID=""
start_pv() {
    start_pv_in . "$@"
}

# start_pv_in DIR LOGBASE ARGS...: the same, in working directory DIR
# (LOGBASE is relative to the current directory).
start_pv_in() {
    local dir=$1 base=$2
    shift 2
    (cd "$dir" && exec "$PVWATCH" "$@") >"$base.out" 2>"$base.err" &
    PV_PID=$!
    BG_PIDS+=("$PV_PID")
}

# expect_running LOGBASE: waits until the pvwatch run started with
# start_pv says it is running; when it does not (it exited, or 15 s
# passed), shows its stderr and ends the test there.
expect_running() {
    if wait_for "grep -q 'running' '$1.err' || ! kill -0 $PV_PID" 15 &&
        grep -q 'running' "$1.err"; then
        pass
        return 0
    fi
    fail "pvwatch run did not start; its stderr:"
    sed 's/^/    /' "$1.err"
    finish
}

# stop_pv [PID] [TIMEOUT] [SIGNAL]: SIGNAL (default TERM), then waits (up
# to TIMEOUT s, default 15) for the process to exit; sets STOP_RC to its
# exit status (or 124 when it did not exit, after which it is killed).
STOP_RC=0
stop_pv() {
    local pid=${1:-$PV_PID} timeout=${2:-15} sig=${3:-TERM}
    kill -"$sig" "$pid" 2>/dev/null
    if wait_for "! kill -0 $pid" "$timeout"; then
        wait "$pid"
        STOP_RC=$?
    else
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        STOP_RC=124
    fi
}

# lines FILE: number of newline-terminated lines of FILE (0 if missing).
lines() {
    if [ -f "$1" ]; then
        wc -l <"$1" | tr -d ' '
    else
        echo 0
    fi
}
