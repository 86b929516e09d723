#!/usr/bin/env bash
# End to end: the alert log on a full disk (issue 22, item 10).
#
# The alert log lives on a 1 MiB tmpfs (we run as root in the test
# container; where mounting is impossible the test is skipped with a
# message), the database outside it. A filler file leaves a different
# amount of free space in each of 12 rounds, so the log hits ENOSPC at a
# different point of the 200 lines one ingest writes (~150 kB): before the
# first line, inside the first 64 KiB chunk, on a chunk boundary, near the
# end, not at all. Each round:
#   1. 'pvwatch ingest' of 200 exposed patients with a grade-3 ANC each:
#      it must say what was stored (all 400 rows, 200 alerts: never "not
#      stored"), how many alert-log lines are still queued, and exit 1 when
#      some are (0 when none); the file holds only whole JSON lines;
#   2. a second command while the disk is still full (the start-up
#      recovery runs on a full disk): nothing queued is deleted that is not
#      in the file, still no torn line;
#   3. the filler is deleted and the recovery runs (a restart: 'pvwatch
#      alerts list'; or the next ingest, on alternate rounds);
#   4. every alert row has exactly one complete 'opened' line, no seq
#      twice, no line that is not JSON, the file ends with a newline, the
#      queue (alert_log_queue) is empty.
# Then 'pvwatch run' with an inbox: lines that the full disk refused are
# written by the next commit once space returns, without a restart.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MNT=$T/logfs
N=200 # patients, alerts per round

# The tmpfs must be unmounted before lib.sh removes $T.
# shellcheck disable=SC2317 # called by the EXIT trap
_full_cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    if mountpoint -q "$MNT" 2>/dev/null; then
        umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
    fi
    _cleanup
}
trap _full_cleanup EXIT

mkdir -p "$MNT"
if ! mount -t tmpfs -o size=1m,mode=0700 tmpfs "$MNT" 2>mount.err; then
    echo "   SKIP: cannot mount a tmpfs here: $(cat mount.err)"
    pass
    finish
fi

# meds FILE FIRST LAST / labs FILE FIRST LAST: patients PFIRST..PLAST
# exposed, each with an ANC of grade 3 (one alert each).
meds() {
    {
        echo 'patient_id,drug,start,dose,dose_unit'
        for i in $(seq "$2" "$3"); do echo "P$i,baricitinib,2026-01-01,2,mg"; done
    } >"$1"
}
labs() {
    {
        echo 'patient_id,code,value,unit,observed_at'
        for i in $(seq "$2" "$3"); do echo "P$i,751-8,900,cells/mm3,2026-02-01"; done
    } >"$1"
}

# fill KB: deletes what is on the tmpfs but the log, leaves KB kB free.
fill() {
    rm -f "$MNT/filler"
    head -c $((1048576 - $1 * 1024 - $(stat -c %s "$MNT/alerts.jsonl" 2>/dev/null || echo 0))) \
        /dev/zero >"$MNT/filler" 2>/dev/null
}

# check_log DIR WHAT: the log holds only whole JSON lines and ends with a
# newline; prints nothing, records assertions.
check_log() {
    local log=$MNT/alerts.jsonl
    [ -s "$log" ] || {
        pass
        return
    }
    assert_eq ok "$(jsonl "$log" '"ok"' 2>&1)" "$2: every line of the log is JSON (no torn line)"
    assert_eq 0a "$(tail -c 1 "$log" | od -An -tx1 | tr -d ' ')" "$2: the log ends with a newline"
}

# ---------------------------------------------------------------------------
FREE_KB=(0 4 20 40 60 64 68 100 128 132 148 400)
round=0
for free in "${FREE_KB[@]}"; do
    round=$((round + 1))
    section "round $round: $free kB free for the log"
    D=$T/r$round
    mkdir -p "$D"
    rm -f "$MNT"/*
    write_config "$D/pv.lua" "alert_log = \"$MNT/alerts.jsonl\""
    meds "$D/meds.csv" 1 "$N"
    labs "$D/labs.csv" 1 "$N"
    fill "$free"

    # 1. The ingest on the full disk.
    pv ingest -c "$D/pv.lua" "$D/meds.csv" "$D/labs.csv"
    in_file=$(lines "$MNT/alerts.jsonl")
    echo "   ingest: exit $RC, $in_file of $N lines in the log"
    assert_no_match 'not stored' "$ERR" "committed data is never called 'not stored'"
    assert_match "labs.csv: labs: $N stored, 0 rejected; alerts: $N opened" "$OUT" \
        "the summary says what was stored"
    assert_eq "$N" "$(q -d "$D/pv.db" 'SELECT count(*) FROM alerts')" "every alert is committed"
    if [ "$in_file" -eq "$N" ]; then
        assert_eq 0 "$RC" "every line written: exit 0"
        assert_no_match 'not written' "$OUT" "every line written: nothing said to be queued"
    else
        assert_eq 1 "$RC" "lines left out: exit 1"
        assert_match "alert log: $((N - in_file)) lines? of the stored alerts not written yet" "$OUT" \
            "the summary counts the lines still queued exactly"
        assert_match 'alert log .*No space left on device' "$ERR" "stderr says why"
    fi
    check_log "$D" "after the ingest"
    queued=$(q -d "$D/pv.db" "SELECT count(*) FROM alert_log_queue")
    if [ "$queued" -ge $((N - in_file)) ]; then pass; else
        fail "every line not in the file is still queued ($queued queued, $in_file in the file)"
    fi

    # 2. The start-up recovery on a disk still full.
    pv alerts -c "$D/pv.lua" list --status closed
    assert_eq 0 "$RC" "a command while the disk is still full"
    check_log "$D" "recovery on a full disk"
    in_file=$(lines "$MNT/alerts.jsonl")
    queued=$(q -d "$D/pv.db" "SELECT count(*) FROM alert_log_queue")
    if [ "$queued" -ge $((N - in_file)) ]; then pass; else
        fail "recovery on a full disk deleted queued lines ($queued queued, $in_file in the file)"
    fi

    # 3. Space returns; the recovery runs.
    rm -f "$MNT/filler"
    want=$N
    if [ $((round % 2)) -eq 0 ]; then
        meds "$D/meds2.csv" $((N + 1)) $((N + 1))
        labs "$D/labs2.csv" $((N + 1)) $((N + 1))
        pv ingest -c "$D/pv.lua" "$D/meds2.csv" "$D/labs2.csv"
        assert_eq 0 "$RC" "the next ingest, with space: exit 0 ($OUT $ERR)"
        assert_no_match 'not written' "$OUT" "the next ingest: nothing left queued"
        want=$((N + 1))
    else
        pv alerts -c "$D/pv.lua" list --status closed
        assert_eq 0 "$RC" "a restart with space: exit 0"
    fi

    # 4. The log is complete, once, whole; the queue is empty.
    check_log "$D" "after the recovery"
    assert_eq "$want" "$(lines "$MNT/alerts.jsonl")" "one line per alert event"
    ids=$(q -d "$D/pv.db" 'SELECT group_concat(id) FROM (SELECT id FROM alerts ORDER BY id)')
    assert_eq "$ids" "$(jsonl "$MNT/alerts.jsonl" '",".join(str(a) for a in sorted(l["alert_id"] for l in L if l["event"] == "opened"))')" \
        "every alert has exactly one 'opened' line"
    assert_eq "$want" "$(jsonl "$MNT/alerts.jsonl" 'len(set(l["seq"] for l in L))')" "no seq twice"
    assert_eq 0 "$(q -d "$D/pv.db" 'SELECT count(*) FROM alert_log_queue')" "the queue is empty"
done

# ---------------------------------------------------------------------------
section "pvwatch run: lines the full disk refused are written by the next commit"
D=$T/run
mkdir -p "$D/inbox"
rm -f "$MNT"/*
write_config "$D/pv.lua" "alert_log = \"$MNT/alerts.jsonl\""
start_pv_in "$D" "$D/pv" run -c pv.lua
expect_running "$D/pv"
fill 20
meds "$D/.m.csv" 1 "$N"
mv "$D/.m.csv" "$D/inbox/m.csv"
labs "$D/.l.csv" 1 "$N"
mv "$D/.l.csv" "$D/inbox/l.csv"
check_wait "[ -e '$D/inbox/processed/l.csv' ]" 30 "the labs file is processed on a full disk"
check_wait "grep -q 'alert log .*cannot write it' '$D/pv.err'" 10 "the engine says it cannot write the log"
assert_no_match 'will retry' "$(cat "$D/pv.err")" "the committed file is not retried"
assert_eq "$N" "$(q -d "$D/pv.db" 'SELECT count(*) FROM alerts')" "every alert is committed"
check_log "$D" "engine, disk full"
rm -f "$MNT/filler"
meds "$D/.m2.csv" $((N + 1)) $((N + 1))
mv "$D/.m2.csv" "$D/inbox/m2.csv"
check_wait "[ \"\$(lines '$MNT/alerts.jsonl')\" -ge $N ]" 30 "the next commit writes the waiting lines, no restart"
labs "$D/.l2.csv" $((N + 1)) $((N + 1))
mv "$D/.l2.csv" "$D/inbox/l2.csv"
check_wait "[ \"\$(lines '$MNT/alerts.jsonl')\" -ge $((N + 1)) ]" 30 "and its own line after them"
assert_match 'alert log .*written again' "$(cat "$D/pv.err")" "the engine says the log is written again"
stop_pv
assert_eq 0 "$STOP_RC" "pvwatch run stops cleanly"
check_log "$D" "engine, after"
assert_eq $((N + 1)) "$(lines "$MNT/alerts.jsonl")" "one line per alert event"
assert_eq $((N + 1)) "$(jsonl "$MNT/alerts.jsonl" 'len(set(l["alert_id"] for l in L if l["event"] == "opened"))')" \
    "every alert has exactly one 'opened' line"
assert_eq 0 "$(q -d "$D/pv.db" 'SELECT count(*) FROM alert_log_queue')" "the queue is empty after the stop"

finish
