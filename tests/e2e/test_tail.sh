#!/usr/bin/env bash
# End to end: the followed ('tail') CSV files of 'pvwatch run' (issue 2):
# appended lines are ingested, a partial last line waits for its newline,
# a restart resumes at the next unread line, truncation and replacement
# are noticed and read from the start.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAB_HDR='patient_id,code,value,unit,observed_at'
write_config pv.lua

row() { printf '%s,751-8,%s,cells/mm3,2026-02-01T10:00:00Z\n' "$1" "${2:-1800}"; }
count() { q "SELECT count(*) FROM observations WHERE patient_id LIKE '$1%'"; }
# No patient stored twice, whatever happened.
no_duplicates() {
    assert_eq "" "$(q "SELECT patient_id || ' x' || count(*) FROM observations GROUP BY patient_id HAVING count(*) > 1")" \
        "$1: no row stored twice"
}

# ---------------------------------------------------------------------------
section "appended lines are ingested while running"
start_pv run1 run -c pv.lua
expect_running run1
{
    echo "$LAB_HDR"
    row A1
    row A2
} >>feed.csv
check_wait "[ \"\$(count A)\" = 2 ]" 10 "the first lines of a new feed are ingested"
row A3 >>feed.csv
check_wait "[ \"\$(count A)\" = 3 ]" 10 "an appended line is ingested"
{
    row A4
    echo "A5,751-8,1800,cells/mm3,2026-99-99T10:00:00Z" # line 6: bad time
    row A6
} >>feed.csv
check_wait "[ \"\$(count A)\" = 5 ]" 10 "appended lines with a bad one: the good ones are ingested"
assert_eq 0 "$(count A5)" "the bad line is not stored"
check_wait "grep -Eq '(^|: )[^ ]*feed\\.csv:6: .*2026-99-99' run1.err" 5 "the bad line is reported as feed.csv:6"

# ---------------------------------------------------------------------------
section "a partial last line waits for its newline"
# One write: a complete line, then the start of the next. Once the complete
# line is stored, the reader has seen the partial one.
printf '%s%s' "$(row B1)" "$(printf '\nB2,751-8,12')" >>feed.csv
check_wait "[ \"\$(count B1)\" = 1 ]" 10 "the complete line before the partial one is ingested"
assert_eq 0 "$(count B2)" "the partial line is not ingested"
printf '00,cells/mm3,2026-02-01T10:00:00Z\n' >>feed.csv
check_wait "[ \"\$(count B2)\" = 1 ]" 10 "the line is ingested once its newline arrives"
assert_eq "1200.0" "$(q "SELECT value_num FROM observations WHERE patient_id='B2'")" \
    "the line written in two parts is one record"
check_wait "[ \"\$(q 'SELECT offset FROM tail_offsets')\" = \"$(stat -c %s feed.csv)\" ]" 5 \
    "the stored offset is the end of the file"
assert_eq "$(stat -c %i feed.csv)" "$(q 'SELECT ino FROM tail_offsets')" "the stored identity is the file's inode"

# ---------------------------------------------------------------------------
section "restart resumes at the next unread line"
# Leave a partial line behind at the stop.
printf 'C1,751-8,1800,cells/mm3,2026-02-01T10:00:00Z\nC2,751-8,1800,cells/' >>feed.csv
check_wait "[ \"\$(count C1)\" = 1 ]" 10 "the line before the partial one is ingested"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "pvwatch run exits 0 on SIGTERM"
before=$(q 'SELECT count(*) FROM observations')
# While stopped: the partial line is completed and more lines arrive,
# one of them bad (line 13 of the file).
{
    printf 'mm3,2026-02-01T10:00:00Z\n'
    row C3
    echo "C4,751-8,1800,cells/mm3"
    row C5
} >>feed.csv
start_pv run2 run -c pv.lua
expect_running run2
check_wait "[ \"\$(count C)\" = 4 ]" 10 "lines written while stopped are ingested after the restart"
assert_eq $((before + 3)) "$(q 'SELECT count(*) FROM observations')" "exactly the new lines are added"
no_duplicates "after the restart"
assert_eq 1 "$(count C2)" "the line left partial at the stop is stored once"
check_wait "grep -Eq '(^|: )[^ ]*feed\\.csv:13: ' run2.err" 5 "line numbers continue across the restart (feed.csv:13)"
row C6 >>feed.csv
check_wait "[ \"\$(count C6)\" = 1 ]" 10 "lines appended after the restart are ingested"

# ---------------------------------------------------------------------------
section "truncation is noticed and the file read from the start"
old=$(q 'SELECT count(*) FROM observations')
{
    echo "$LAB_HDR"
    row D1
} >feed.csv
check_wait "[ \"\$(count D1)\" = 1 ]" 10 "the rewritten file is read from its start"
assert_eq $((old + 1)) "$(q 'SELECT count(*) FROM observations')" "only the new line is added"
no_duplicates "after truncation"
row D2 >>feed.csv
check_wait "[ \"\$(count D2)\" = 1 ]" 10 "appends after the truncation are ingested"

# ---------------------------------------------------------------------------
section "rewritten in place to a larger size is noticed too"
# Truncated and written again within microseconds: the poll never sees it
# shorter, only the same file with other bytes before the offset.
old=$(q 'SELECT count(*) FROM observations')
"$PYTHON" -c '
import sys
rows = "".join("R%02d,751-8,1800,cells/mm3,2026-02-01T10:00:00Z\n" % i for i in range(1, 31))
with open("feed.csv", "r+") as f:
    f.truncate(0)
    f.write(sys.argv[1] + "\n" + rows)
' "$LAB_HDR"
check_wait "[ \"\$(count R)\" = 30 ]" 10 "every line of the rewritten file is ingested"
assert_eq $((old + 30)) "$(q 'SELECT count(*) FROM observations')" "nothing of the old content again"
no_duplicates "after a rewrite in place"

# ---------------------------------------------------------------------------
section "replacement (mv over) is noticed and the new file read from the start"
old=$(q 'SELECT count(*) FROM observations')
{
    echo "$LAB_HDR"
    for i in $(seq -w 1 20); do row "E$i"; done
} >feed.new
mv feed.new feed.csv
check_wait "[ \"\$(count E)\" = 20 ]" 10 "every line of the new file is ingested"
assert_eq $((old + 20)) "$(q 'SELECT count(*) FROM observations')" "nothing of the old file again"
no_duplicates "after replacement"
assert_eq "$(stat -c %i feed.csv)" "$(q 'SELECT ino FROM tail_offsets')" "the stored identity follows the new file"
row E21 >>feed.csv
check_wait "[ \"\$(count E21)\" = 1 ]" 10 "appends to the new file are ingested"

# ---------------------------------------------------------------------------
section "alerts from a tailed feed"
printf 'patient_id,drug,start,dose,dose_unit\nF1,baricitinib,2026-01-01,2,mg\n' >stage-meds.csv
# 'ingest' is refused beside a running engine (its lock, issue 22 item
# 9): the file goes through the engine's inbox instead.
pv ingest --db pv.db -c pv.lua stage-meds.csv
assert_eq 2 "$RC" "'ingest' beside the running engine is refused"
mkdir -p inbox
mv stage-meds.csv inbox/stage-meds.csv
check_wait "[ -e inbox/processed/stage-meds.csv ]" 15 \
    "medications ingested by the running engine from its inbox"
row F1 700 >>feed.csv
check_wait "grep -q '\"patient_id\":\"F1\"' alerts.jsonl" 10 "an alert from a tailed line reaches alerts.jsonl"
assert_eq "1|3" "$(q "SELECT count(*), grade FROM alerts WHERE patient_id='F1' AND rule='baricitinib.neutropenia'")" \
    "the alert is in the table"

stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "second run exits 0 on SIGTERM"

# ---------------------------------------------------------------------------
section "restart from another working directory resumes too"
# Paths in the config are relative to the config file, not to the working
# directory; the stored offset must be found again either way.
row G1 >>feed.csv
mkdir elsewhere
start_pv_in elsewhere run3 run -c ../pv.lua
expect_running run3
check_wait "[ \"\$(count G1)\" = 1 ]" 10 "the new line is ingested"
no_duplicates "after a restart from another directory"
assert_eq 1 "$(q 'SELECT count(*) FROM tail_offsets')" "one offset row for the one followed file"
assert_no_file elsewhere/pv.db "no database beside the working directory"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "third run exits 0 on SIGTERM"
no_duplicates "at the end"
assert_eq 0 "$(q 'SELECT count(*) FROM observations WHERE message_id IS NULL OR message_id NOT IN (SELECT id FROM messages)')" \
    "every stored row belongs to a recorded message (also after truncation)"

finish
