#!/usr/bin/env bash
# End to end: 'pvwatch ingest' (issue 2): the command line (help, usage and
# configuration errors), labs, medications and events into SQLite and the
# alert log, the same file twice, stdin, the whole rule pack. The CSV
# dialect and rejections are in test_ingest_csv.sh.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAB_HDR='patient_id,code,value,unit,observed_at'

# ---------------------------------------------------------------------------
section "help, version and usage errors"
pv --help
assert_eq 0 "$RC" "pvwatch --help"
# Every command 'pvwatch --help' lists, and at least those of issue 2.
cmds=$(printf '%s\n' "$OUT" | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p' | sort -u | tr '\n' ' ')
for cmd in run ingest replay alerts test check version; do
    assert_match "(^| )$cmd " "$cmds" "pvwatch --help lists '$cmd'"
done
for cmd in $cmds; do
    pv "$cmd" --help
    assert_eq 0 "$RC" "pvwatch $cmd --help exit status"
    if [ "$cmd" != version ]; then
        assert_match "usage: pvwatch $cmd" "$OUT" "pvwatch $cmd --help prints its usage on stdout"
    fi
done
pv version
assert_eq 0 "$RC" "pvwatch version"
assert_match '^pvwatch [0-9]' "$OUT" "pvwatch version prints the version"
pv
assert_eq 2 "$RC" "pvwatch without a command"
pv frobnicate
assert_eq 2 "$RC" "unknown command"
assert_match "frobnicate" "$ERR" "unknown command is named"
pv ingest
assert_eq 2 "$RC" "ingest without files"
pv ingest --no-such-option x.csv
assert_eq 2 "$RC" "ingest with an unknown option"
pv alerts frobnicate
assert_eq 2 "$RC" "alerts with an unknown action"
pv run unexpected-argument
assert_eq 2 "$RC" "run with an extra argument"
assert_no_file pv.db "usage errors create no database"

# ---------------------------------------------------------------------------
section "configuration errors"
mkdir cfgerr && cd cfgerr || exit 1
cat >bad.lua <<'EOF'
database = "pv.db"
no_such_key = 1
inbox = { path = "inbox", bogus = 2 }
EOF
pv check -c bad.lua
assert_eq 2 "$RC" "check with unknown keys"
assert_match '(^|: )bad\.lua:2: .*no_such_key' "$ERR" "check names the unknown key with FILE:LINE"
assert_match '(^|: )bad\.lua:3: .*inbox\.bogus' "$ERR" "check names the unknown nested key with FILE:LINE"
pv ingest -c bad.lua /dev/null
assert_eq 2 "$RC" "ingest with an unknown config key"
assert_match 'no_such_key' "$ERR" "ingest names the unknown key"
for cmd in run alerts; do
    pv "$cmd" -c bad.lua
    assert_eq 2 "$RC" "$cmd with an unknown config key"
done
assert_no_file pv.db "a bad configuration creates no database"
printf 'database = "pv.db"\ninbox = {\n' >syntax.lua
pv check -c syntax.lua
assert_eq 2 "$RC" "check with a Lua syntax error"
assert_match 'syntax\.lua:[0-9]+:' "$ERR" "syntax error is reported with FILE:LINE"
pv check -c missing.lua
assert_eq 2 "$RC" "check with a missing config file"
CFG_PLUGINS=$PV_SOURCE_DIR/plugins write_config pv.lua
pv check -c pv.lua
assert_eq 0 "$RC" "check with a good configuration and the whole rule pack"
assert_match 'baricitinib\.neutropenia' "$OUT" "check lists the loaded rules"
assert_no_file pv.db "check changes nothing (no database file)"
cd "$T" || exit 1

# ---------------------------------------------------------------------------
section "ingest: labs, medications and events into SQLite and the alert log"
mkdir basic && cd basic || exit 1
write_config pv.lua
cat >meds.csv <<'EOF'
patient_id,drug,start,dose,dose_unit,end
P1,baricitinib,2026-01-01,2,mg,
P2,Olumiant 4 MG Oral Tablet,2026-01-01,4,mg,2026-03-31
P3,methotrexate,2026-01-01,15,mg,
EOF
cat >labs.csv <<EOF
$LAB_HDR,ref_low,ref_high
P1,751-8,900,cells/mm3,2026-02-01T08:30:00Z,2000,7500
P2,751-8,0.45,10*9/L,2026-02-02,,
P3,751-8,400,cells/mm3,2026-02-03,,
P1,718-7,13.1,g/dL,2026-02-01,12,16
EOF
cat >events.csv <<'EOF'
patient_id,code,onset,term,serious,outcome
P1,B02.9,2026-02-10,Herpes zoster without complication,no,recovering
P2,J18.9,2026-02-11T12:00:00+01:00,Pneumonia,yes,
EOF
pv ingest -c pv.lua meds.csv labs.csv events.csv
assert_eq 0 "$RC" "clean files: exit status"
assert_eq "" "$ERR" "clean files: nothing on stderr"
assert_match 'meds\.csv: .*3 stored, 0 rejected' "$OUT" "summary for meds.csv"
assert_match 'labs\.csv: .*4 stored, 0 rejected.*2 opened' "$OUT" "summary for labs.csv names 2 alerts opened"
assert_match 'events\.csv: .*2 stored, 0 rejected' "$OUT" "summary for events.csv"
assert_eq 3 "$(q 'SELECT count(*) FROM exposures')" "exposures stored"
assert_eq 4 "$(q 'SELECT count(*) FROM observations')" "observations stored"
assert_eq 2 "$(q 'SELECT count(*) FROM events')" "events stored"
assert_eq "P1|751-8|LN|900.0|cells/mm3|2000.0|7500.0|2026-02-01T08:30:00Z" \
    "$(q "SELECT patient_id, code, code_system, value_num, unit, ref_low, ref_high, observed_at FROM observations WHERE patient_id='P1' AND code='751-8'")" \
    "observation columns"
assert_eq "P2|Olumiant 4 MG Oral Tablet|4.0|mg|2026-01-01T00:00:00Z|2026-03-31T00:00:00Z" \
    "$(q "SELECT patient_id, drug, dose, dose_unit, start_at, end_at FROM exposures WHERE patient_id='P2'")" \
    "exposure columns"
assert_eq "P2|J18.9|ICD10CM|Pneumonia|2026-02-11T11:00:00Z|1" \
    "$(q "SELECT patient_id, code, code_system, term, onset_at, serious FROM events WHERE patient_id='P2'")" \
    "event columns (zone converted to UTC, serious yes -> 1)"
assert_eq 0 "$(q "SELECT serious FROM events WHERE patient_id='P1'")" "serious no -> 0"
assert_eq 3 "$(q 'SELECT count(*) FROM patients')" "patients created"
assert_eq "P1|baricitinib.neutropenia|cytopenia|high|3|open|1
P2|baricitinib.neutropenia|cytopenia|critical|4|open|1" \
    "$(q "SELECT patient_id, rule, signal, severity, grade, status, occurrences FROM alerts WHERE rule='baricitinib.neutropenia' ORDER BY patient_id")" \
    "alerts table: P1 grade 3, P2 grade 4, none for P3 (not on baricitinib)"
assert_eq 2 "$(q "SELECT count(*) FROM alert_actions WHERE action='opened'")" "each opened alert is in the audit trail"
assert_eq 2 "$(lines alerts.jsonl)" "two lines in the alert log"
assert_eq "opened,opened" "$(jsonl alerts.jsonl '",".join(e["event"] for e in L)')" "log events"
assert_eq "" "$(jsonl alerts.jsonl '" ".join(k for k in "time event alert_id patient_id rule signal severity grade title detail action evidence".split() if not all(k in e for e in L))')" \
    "log lines carry every contract field (missing ones listed)"
assert_eq "" "$(jsonl alerts.jsonl '" ".join(k for k in "kind code value unit at".split() if not all(k in v for e in L for v in e["evidence"]))')" \
    "evidence items carry kind, code, value, unit, at (missing ones listed)"
assert_eq "P1|baricitinib.neutropenia|cytopenia|high|3" \
    "$(jsonl alerts.jsonl '"|".join(str(x) for x in [L[0][k] for k in ("patient_id","rule","signal","severity","grade")])')" \
    "first log line fields"
assert_eq True "$(jsonl alerts.jsonl 'L[0]["alert_id"] == 1 and isinstance(L[0]["alert_id"], int)')" "alert_id is the numeric id"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' \
    "$(jsonl alerts.jsonl 'L[0]["time"]')" "time is ISO 8601 UTC"
assert_match 'Interrupt' "$(jsonl alerts.jsonl 'L[0]["action"]')" "action names the interruption"
assert_eq "lab|751-8|900|cells/mm3|2026-02-01T08:30:00Z" \
    "$(jsonl alerts.jsonl '"|".join(str(x) for x in [[e for e in L[0]["evidence"] if e["kind"]=="lab"][0][k] for k in ("kind","code","value","unit","at")])')" \
    "evidence names the lab"
assert_eq "$(q "SELECT id FROM alerts WHERE patient_id='P2'")" \
    "$(jsonl alerts.jsonl 'L[1]["alert_id"]')" "log alert_id matches the table"
assert_eq 600 "$(stat -c %a pv.db)" "database file mode is 0600"
for f in pv.db-wal pv.db-shm; do
    if [ -e "$f" ]; then
        assert_eq 600 "$(stat -c %a "$f")" "$f mode is 0600"
    fi
done

section "ingest: the same file twice"
cp labs.csv labs-copy.csv
pv ingest -c pv.lua labs.csv
assert_eq 0 "$RC" "second ingest of the same file: exit status"
assert_match 'labs\.csv: .*already ingested' "$OUT" "second ingest says it was skipped"
pv ingest -c pv.lua labs-copy.csv
assert_eq 0 "$RC" "same bytes under another name: exit status"
pv ingest -c pv.lua - <labs.csv
assert_eq 0 "$RC" "same bytes on stdin: exit status"
assert_eq 4 "$(q 'SELECT count(*) FROM observations')" "rows are not stored twice"
assert_eq 2 "$(q 'SELECT count(*) FROM alerts')" "alerts are not opened twice"
assert_eq "1|1" "$(q 'SELECT group_concat(DISTINCT occurrences), count(DISTINCT occurrences) FROM alerts')" \
    "occurrences unchanged"
assert_eq 2 "$(lines alerts.jsonl)" "nothing new in the alert log"
cd "$T" || exit 1

# ---------------------------------------------------------------------------
section "ingest: '-' reads stdin"
mkdir stdin && cd stdin || exit 1
write_config pv.lua
pv ingest -c pv.lua - < <(printf '%s\nS1,751-8,1800,cells/mm3,2026-02-01\nS2,2345-7,5.5,mmol/L,2026-02-01\n' "$LAB_HDR")
assert_eq 0 "$RC" "stdin: exit status"
assert_match '2 stored, 0 rejected' "$OUT" "stdin: summary"
assert_eq "S1,S2" "$(q "SELECT group_concat(patient_id) FROM (SELECT patient_id FROM observations ORDER BY patient_id)")" "stdin rows stored"
pv ingest -c pv.lua - < <(printf '%s\nS3,751-8,x,cells/mm3,2026-99-01\n' "$LAB_HDR")
assert_eq 3 "$RC" "stdin with a bad row: exit status"
assert_match '(^|: )\(stdin\):2: .*2026-99-01' "$ERR" "stdin rejection names line 2"
cd "$T" || exit 1

# ---------------------------------------------------------------------------
section "ingest with the whole rule pack"
mkdir pack && cd pack || exit 1
CFG_PLUGINS=$PV_SOURCE_DIR/plugins write_config pv.lua
pv ingest -c pv.lua ../basic/meds.csv ../basic/labs.csv ../basic/events.csv
assert_eq 0 "$RC" "whole pack: exit status"
assert_no_match 'rule|error' "$ERR" "whole pack: no rule errors on stderr"
assert_eq "P1|3
P2|4" "$(q "SELECT patient_id, grade FROM alerts WHERE rule='baricitinib.neutropenia' ORDER BY patient_id")" \
    "whole pack: the same neutropenia alerts"
assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE signal='engine'")" "whole pack: no engine alerts"
assert_eq "$(q 'SELECT count(*) FROM alerts')" "$(lines alerts.jsonl)" "whole pack: one log line per alert"
cd "$T" || exit 1

finish
