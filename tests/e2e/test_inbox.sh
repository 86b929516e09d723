#!/usr/bin/env bash
# End to end: the inbox watcher of 'pvwatch run' (issue 2, "pvwatch run"):
# files moved into inbox/ while the engine runs are ingested once complete
# and moved to processed/ or rejected/ (+ NAME.error).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAB_HDR='patient_id,code,value,unit,observed_at'
# A settle time long enough that a slow writer's pauses never reach it.
write_config pv.lua
sed -i 's/settle = 0.3/settle = 1.0/' pv.lua
mkdir stage

rows_of() { q "SELECT count(*) FROM observations WHERE patient_id LIKE '$1%'"; }

# ---------------------------------------------------------------------------
section "start: a missing inbox directory is created"
assert_no_file inbox "no inbox before the start"
start_pv run run -c pv.lua
expect_running run
check_wait "[ -d inbox/processed ] && [ -d inbox/rejected ]" 10 "inbox, processed/ and rejected/ created"

# A hidden file, present from the start: never taken.
printf '%s\nHID1,751-8,400,cells/mm3,2026-02-01\n' "$LAB_HDR" >inbox/.hidden.csv

# ---------------------------------------------------------------------------
section "a good file moved in is ingested and moved to processed/"
cat >stage/meds.csv <<'EOF'
patient_id,drug,start,dose,dose_unit
GOOD1,baricitinib,2026-01-01,2,mg
EOF
cat >stage/good.csv <<EOF
$LAB_HDR
GOOD1,751-8,800,cells/mm3,2026-02-01
GOOD2,751-8,3000,cells/mm3,2026-02-01
GOOD3,718-7,13.5,g/dL,2026-02-01
EOF
mv stage/meds.csv inbox/meds.csv
check_wait "[ -f inbox/processed/meds.csv ]" 15 "meds.csv moved to processed/"
mv stage/good.csv inbox/good.csv
check_wait "[ -f inbox/processed/good.csv ]" 15 "good.csv moved to processed/"
assert_no_file inbox/good.csv "good.csv is no longer in the inbox"
assert_no_file inbox/processed/good.csv.error "no .error for a good file"
assert_eq 3 "$(rows_of GOOD)" "good.csv rows stored"
assert_eq 1 "$(q "SELECT count(*) FROM exposures WHERE patient_id='GOOD1'")" "meds.csv rows stored"
check_wait "grep -q '\"patient_id\":\"GOOD1\"' alerts.jsonl" 10 "the alert appears in alerts.jsonl"
assert_eq "opened|GOOD1|baricitinib.neutropenia|3" \
    "$(jsonl alerts.jsonl '"|".join(str(x) for x in (L[0]["event"], L[0]["patient_id"], L[0]["rule"], L[0]["grade"]))')" \
    "alert log line"
assert_eq "GOOD1|open" "$(q "SELECT patient_id, status FROM alerts")" "alert in the alerts table"

# ---------------------------------------------------------------------------
section "a partly bad file goes to rejected/ with NAME.error; good rows kept"
{
    echo "$LAB_HDR"                                    # 1
    echo "BAD1,751-8,1800,cells/mm3,2026-02-01"        # 2 good
    echo ",751-8,1800,cells/mm3,2026-02-01"            # 3 no patient
    echo "BAD2,751-8,1800,cells/mm3,2026-13-45"        # 4 bad time
    echo "BAD3,751-8,1800,cells/mm3,2026-02-02"        # 5 good
    echo "BAD4,751-8,1800,cells/mm3"                   # 6 4 fields
    printf 'BAD5,751-8,\xff,cells/mm3,2026-02-01\n'    # 7 invalid UTF-8
    echo "BAD6,751-8,1800,cells/mm3,2026-02-03"        # 8 good
} >stage/bad.csv
mv stage/bad.csv inbox/bad.csv
check_wait "[ -f inbox/rejected/bad.csv ] && [ -f inbox/rejected/bad.csv.error ]" 15 \
    "bad.csv moved to rejected/ with bad.csv.error"
assert_no_file inbox/bad.csv "bad.csv is no longer in the inbox"
assert_no_file inbox/processed/bad.csv "bad.csv is not in processed/"
errors=$(grep -E '(^|: )bad\.csv:[0-9]+: ' inbox/rejected/bad.csv.error)
assert_eq "3 4 6 7" "$(printf '%s\n' "$errors" | sed -nE 's/^(.*: )?bad\.csv:([0-9]+): .*/\2/p' | tr '\n' ' ' | sed 's/ $//')" \
    ".error lists every bad line and only those"
assert_match 'patient_id' "$(grep -E 'bad\.csv:3: ' inbox/rejected/bad.csv.error)" ".error gives the reason for line 3"
assert_match '2026-13-45' "$(grep -E 'bad\.csv:4: ' inbox/rejected/bad.csv.error)" ".error gives the reason for line 4"
assert_match 'UTF-8' "$(grep -E 'bad\.csv:7: ' inbox/rejected/bad.csv.error)" ".error gives the reason for line 7"
assert_eq 3 "$(rows_of BAD)" "the good rows of bad.csv are stored"
assert_eq "BAD1,BAD3,BAD6" "$(q "SELECT group_concat(patient_id) FROM (SELECT patient_id FROM observations WHERE patient_id LIKE 'BAD%' ORDER BY patient_id)")" \
    "exactly the good rows"

printf 'what,is,this\n1,2,3\n' >stage/alien.csv
mv stage/alien.csv inbox/alien.csv
check_wait "[ -f inbox/rejected/alien.csv ] && [ -f inbox/rejected/alien.csv.error ]" 15 \
    "a file with an unknown header goes to rejected/ with .error"
assert_match 'alien\.csv:1: .*header' "$(cat inbox/rejected/alien.csv.error 2>/dev/null)" ".error names the header line"

# ---------------------------------------------------------------------------
section "the same file again is not stored twice"
cp inbox/processed/good.csv stage/good-again.csv
mv stage/good-again.csv inbox/good-again.csv
check_wait "[ -f inbox/processed/good-again.csv ]" 15 "a duplicate file is moved to processed/"
assert_eq 3 "$(rows_of GOOD)" "its rows are not stored twice"
assert_eq 1 "$(q 'SELECT count(*) FROM alerts')" "no second alert"
assert_eq 1 "$(q 'SELECT occurrences FROM alerts')" "occurrences unchanged"

# ---------------------------------------------------------------------------
section "a file still being written is not taken until complete"
n=25
echo "$LAB_HDR" >inbox/slow.csv
taken_early=0
for i in $(seq 1 "$n"); do
    printf 'SLOW%02d,751-8,1800,cells/mm3,2026-02-01\n' "$i" >>inbox/slow.csv
    # Only cheap checks in the loop, so that its pauses stay far below the
    # settle time: a file taken is a file moved.
    if [ -e inbox/processed/slow.csv ] || [ -e inbox/rejected/slow.csv ]; then
        taken_early=$i
        break
    fi
    sleep 0.1
done
assert_eq 0 "$taken_early" "slow.csv not taken while it grows (taken after line N if not 0)"
assert_eq 0 "$(rows_of SLOW)" "nothing of slow.csv stored while it grows"
check_wait "[ -f inbox/processed/slow.csv ]" 15 "slow.csv taken once complete"
assert_eq "$n" "$(rows_of SLOW)" "every line of slow.csv stored"
assert_eq $((n + 1)) "$(lines inbox/processed/slow.csv)" "processed/slow.csv is the whole file"
assert_no_file inbox/rejected/slow.csv "slow.csv not rejected"

# ---------------------------------------------------------------------------
section "hidden files are ignored"
assert_file inbox/.hidden.csv ".hidden.csv stays in the inbox"
assert_eq 0 "$(rows_of HID)" ".hidden.csv rows not stored"
assert_no_file inbox/processed/.hidden.csv ".hidden.csv not in processed/"
assert_no_file inbox/rejected/.hidden.csv ".hidden.csv not in rejected/"

# ---------------------------------------------------------------------------
section "SIGTERM and SIGINT: exit 0; a file left while stopped is taken at the next start"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "pvwatch run exits 0 on SIGTERM"
printf '%s\nLATE1,751-8,2500,cells/mm3,2026-02-01\n' "$LAB_HDR" >inbox/late.csv
start_pv run2 run -c pv.lua
expect_running run2
check_wait "[ -f inbox/processed/late.csv ]" 15 "late.csv taken after the restart"
assert_eq 1 "$(rows_of LATE)" "late.csv row stored"
assert_eq 3 "$(rows_of GOOD)" "nothing re-ingested after the restart"
stop_pv "$PV_PID" 15 INT
assert_eq 0 "$STOP_RC" "second run exits 0 on SIGINT"

finish
