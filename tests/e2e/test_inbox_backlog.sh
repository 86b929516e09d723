#!/usr/bin/env bash
# End to end: a backlog of 10,000 inbox files (issue 22 item 12). The
# engine took every settled file in one loop turn (and looked each name up
# in a list: quadratic), so an MLLP ACK waited for the whole backlog (18 s
# seen). Now files are taken in bounded slices between loop turns: every
# file is still ingested once, and messages sent meanwhile are answered
# within ACK_DEADLINE_MS.
#
# PV_BACKLOG_FILES (default 10000) and PV_BACKLOG_ACK_MS (default 2000)
# change the size and the deadline, e.g. to measure by hand.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${PV_BACKLOG_FILES:-10000}
ACK_DEADLINE_MS=${PV_BACKLOG_ACK_MS:-2000}
SENDS=5

now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    printf '%s' $((t / 1000))
}

# processed: how many files are in inbox/processed (the .error files of
# rejected ones are elsewhere).
processed() {
    "$PYTHON" -c 'import os, sys; print(len(os.listdir(sys.argv[1])))' inbox/processed
}

write_config pv.lua
mkdir stage
# One lab row per file, each file different (a duplicate would not be
# stored again), all in the normal range (no alerts to wait for).
"$PYTHON" - "$N" stage <<'PYEOF'
import os, sys
n, d = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    with open(os.path.join(d, "bk%05d.csv" % i), "w") as f:
        f.write("patient_id,code,value,unit,observed_at\n"
                "BK%05d,718-7,13.5,g/dL,2026-02-01\n" % i)
PYEOF

start_pv run run -c pv.lua
expect_running run
PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' run.err | head -n 1)
if [ -z "$PORT" ]; then
    fail "pvwatch did not name its MLLP port"
    finish
fi

# ---------------------------------------------------------------------------
section "issue22_item12_backlog: $N files dropped at once, MLLP answered meanwhile"
t0=$(now_ms)
# Moved in as a writer should (complete files, renamed into the inbox).
"$PYTHON" - "$N" stage inbox <<'PYEOF'
import os, sys
n, src, dst = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for i in range(n):
    name = "bk%05d.csv" % i
    os.rename(os.path.join(src, name), os.path.join(dst, name))
PYEOF
t_dropped=$(now_ms)
echo "   $N files moved into the inbox in $((t_dropped - t0)) ms"
check_wait "[ \"\$(processed)\" -gt 0 ]" 60 "the engine starts taking the backlog"

max_ms=0
during=0
for i in $(seq 1 "$SENDS"); do
    printf 'MSH|^~\\&|BACKLOG|LAB|PVWATCH|PV|20260301120000||ORU^R01|BKL-%s|P|2.5.1\rPID|1||BKL%s^^^E2E^MR\rOBX|1|NM|718-7^Hb^LN||13.5|g/dL|||||F|||20260301100000\r' \
        "$i" "$i" >"m$i.hl7"
    before=$(processed)
    s0=$(now_ms)
    out=$(timeout 60 "$PVWATCH" send "127.0.0.1:$PORT" "m$i.hl7" 2>&1)
    ms=$(($(now_ms) - s0))
    echo "   BKL-$i: ACK in ${ms} ms; sent when $before of $N files were processed, $(processed) at its ACK"
    assert_match "AA BKL-$i" "$out" "BKL-$i is acknowledged AA"
    [ "$ms" -gt "$max_ms" ] && max_ms=$ms
    [ "$before" -lt "$N" ] && during=$((during + 1))
done
echo "   ACK latency during the backlog: max ${max_ms} ms ($during of $SENDS sent before the backlog was done)"
assert_eq True "$([ "$max_ms" -le "$ACK_DEADLINE_MS" ] && echo True || echo False)" \
    "every ACK during the backlog within ${ACK_DEADLINE_MS} ms (max ${max_ms} ms)"
assert_ne 0 "$during" "at least one message was sent while the backlog was being taken"

check_wait "[ \"\$(processed)\" -eq $N ]" 600 "every file is moved to processed/"
t_done=$(now_ms)
echo "   backlog done in $((t_done - t_dropped)) ms ($(awk -v n="$N" -v ms="$((t_done - t_dropped))" 'BEGIN { printf "%.0f", n * 1000 / (ms ? ms : 1) }') files/s)"
assert_eq "$N" "$(q "SELECT count(*) FROM observations WHERE patient_id GLOB 'BK[0-9]*'")" "one observation per file"
assert_eq "$N" "$(q "SELECT count(DISTINCT patient_id) FROM observations WHERE patient_id GLOB 'BK[0-9]*'")" "every file's row, none twice"
assert_eq "$SENDS" "$(q "SELECT count(*) FROM observations WHERE patient_id GLOB 'BKL[0-9]*'")" "every MLLP message stored"
assert_eq 0 "$("$PYTHON" -c 'import os; print(len(os.listdir("inbox/rejected")))')" "nothing rejected"
assert_eq 0 "$(find inbox -maxdepth 1 -type f | wc -l | tr -d ' ')" "nothing left in the inbox"
if kill -0 "$PV_PID" 2>/dev/null; then pass; else fail "pvwatch is still running"; fi
stop_pv "$PV_PID" 30
assert_eq 0 "$STOP_RC" "pvwatch stops with status 0"

finish
