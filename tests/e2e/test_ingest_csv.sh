#!/usr/bin/env bash
# End to end: the CSV side of 'pvwatch ingest' (issue 2, DESIGN "Feeds"):
# rejected rows (one 'FILE:LINE: reason' line each, good rows kept, exit
# 3), RFC 4180 (quotes, embedded commas and newlines, CRLF, BOM, ';' and
# TAB), times stored as UTC, and the Synthea corpus.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CORPUS=$PV_SHARED_DIR/corpus/csv
LAB_HDR='patient_id,code,value,unit,observed_at'

# ---------------------------------------------------------------------------
section "ingest: rejected rows, good rows of the same file kept"
mkdir reject && cd reject || exit 1
write_config pv.lua
{
    printf '%s,name\n' "$LAB_HDR"                                   # 1
    printf 'B1,751-8,1800,cells/mm3,2026-02-01,ANC\n'               # 2 good
    printf ',751-8,1800,cells/mm3,2026-02-01,ANC\n'                 # 3 no patient_id
    printf 'B9,751-8,1800,cells/mm3,2026-13-45,ANC\n'               # 4 impossible time
    printf 'B2,751-8,pending,cells/mm3,2026-02-02,ANC\n'            # 5 good, text value
    printf 'B9,751-8,1800,cells/mm3,2026-02-01,ANC,extra\n'         # 6 7 fields
    printf 'B9,751-8,1800,cells/mm3,2026-02-01,bad \xc3\x28 utf8\n' # 7 invalid UTF-8
    printf 'B3,751-8,1700,cells/mm3,2026-02-03,"Neutrophils, abs"\n' # 8 good
    printf 'B9,751-8,1800,cells/mm3,2026-02-01,\n'                  # 9 good (empty name)
    printf 'B9,751-8,1800,cells/mm3,2026-02-01,"unterminated\n'     # 10 quote opens
    printf 'B8,751-8,1800,cells/mm3,2026-02-01,x\n'                 # 11 (inside it)
} >bad.csv
pv ingest -c pv.lua bad.csv
assert_eq 3 "$RC" "rejected rows: exit status 3"
assert_match 'bad\.csv: .*4 stored, 5 rejected' "$OUT" "summary counts stored and rejected rows"
assert_eq 5 "$(printf '%s\n' "$ERR" | grep -Ec '(^|: )bad\.csv:[0-9]+: ')" "one stderr line per rejected row"
assert_eq "3 4 6 7 10" "$(printf '%s\n' "$ERR" | sed -nE 's/^(pvwatch: )?bad\.csv:([0-9]+): .*/\2/p' | tr '\n' ' ' | sed 's/ $//')" \
    "rejected line numbers (the unterminated quote at the line where it opened)"
reason() { printf '%s\n' "$ERR" | sed -nE "s/^(pvwatch: )?bad\\.csv:$1: //p"; }
assert_match 'patient_id' "$(reason 3)" "line 3: the missing field is named"
assert_match '2026-13-45' "$(reason 4)" "line 4: the impossible time is quoted"
assert_match '7 fields|field.*header|column' "$(reason 6)" "line 6: wrong column count"
assert_match 'UTF-8' "$(reason 7)" "line 7: invalid UTF-8"
assert_match 'quote' "$(reason 10)" "line 10: unterminated quote"
assert_eq "B1,B2,B3,B9" "$(q "SELECT group_concat(patient_id) FROM (SELECT patient_id FROM observations ORDER BY patient_id)")" \
    "good rows of the file are stored"
assert_eq "|pending" "$(q "SELECT value_num, value_text FROM observations WHERE patient_id='B2'")" \
    "non-numeric value kept as value_text"
assert_eq "Neutrophils, abs" "$(q "SELECT name FROM observations WHERE patient_id='B3'")" "quoted field with a comma"
assert_eq 0 "$(q "SELECT count(*) FROM observations WHERE patient_id='B8'")" "rows inside an unterminated quote are not stored"
assert_match 'partial|rejected' "$(q "SELECT status FROM messages WHERE name='bad.csv'")" "message row records the partial file"

printf '%s\nN1,751-8,1800,cells/mm3,2026-02-01\nN2,751-8,18\0000,cells/mm3,2026-02-01\nN3,751-8,1800,cells/mm3,2026-02-01\n' "$LAB_HDR" >nul.csv
pv ingest -c pv.lua nul.csv
assert_eq 3 "$RC" "a NUL byte in a field: exit status 3"
assert_match '(^|: )nul\.csv:3: .*NUL' "$ERR" "a NUL byte in a field is rejected, named by its line"
assert_eq "N1,N3" "$(q "SELECT group_concat(patient_id) FROM (SELECT patient_id FROM observations WHERE patient_id LIKE 'N_' ORDER BY patient_id)")" \
    "the rows around it are stored"

printf '' >empty.csv
pv ingest -c pv.lua empty.csv
assert_eq 3 "$RC" "empty file: exit status 3"
assert_match '(^|: )empty\.csv:1: ' "$ERR" "empty file: FILE:1 reason"
printf 'foo,bar\n1,2\n' >unknown.csv
pv ingest -c pv.lua unknown.csv
assert_eq 3 "$RC" "unrecognised header: exit status 3"
assert_match '(^|: )unknown\.csv:1: .*header' "$ERR" "unrecognised header: FILE:1 reason"
printf '%s\n' "$LAB_HDR" >header-only.csv
pv ingest -c pv.lua header-only.csv
assert_eq 0 "$RC" "a header without rows is not an error"
pv ingest -c pv.lua no-such-file.csv
assert_ne 0 "$RC" "missing file: non-zero exit"
assert_match 'no-such-file\.csv' "$ERR" "missing file is named"
cd "$T" || exit 1

# ---------------------------------------------------------------------------
section "ingest: RFC 4180, CRLF, BOM, ';' and TAB"
mkdir rfc && cd rfc || exit 1
write_config pv.lua
# Quoted fields with commas, a newline, doubled quotes; CRLF line ends; a
# bad row after the multi-line field must still be named by its own line.
{
    printf '%s,name,flag\r\n' "$LAB_HDR"                                       # 1
    printf 'R1,751-8,"1,500",cells/mm3,2026-02-01,"ANC, absolute",N\r\n'       # 2
    printf 'R2,751-8,1600,cells/mm3,2026-02-01,"two\r\nlines",N\r\n'           # 3-4
    printf 'R3,751-8,1700,cells/mm3,2026-02-01,"say ""hi""",""\r\n'            # 5
    printf 'R4,751-8,1800,cells/mm3,2026-02-30,x,N\r\n'                        # 6 bad date
    printf '"R5","751-8","1900","cells/mm3","2026-02-01","",""\r\n'            # 7
} >rfc.csv
pv ingest -c pv.lua rfc.csv
assert_eq 3 "$RC" "rfc.csv: one bad row -> exit 3"
assert_match '(^|: )rfc\.csv:6: ' "$ERR" "line numbers count the newline inside quotes"
assert_eq 1 "$(printf '%s\n' "$ERR" | grep -Ec 'rfc\.csv:[0-9]+:')" "rfc.csv: only the bad row is rejected"
assert_eq "|1,500|ANC, absolute" "$(q "SELECT value_num, value_text, name FROM observations WHERE patient_id='R1'")" \
    "quoted comma inside a value (kept as text)"
assert_eq "two
lines" "$(q "SELECT replace(name, char(13), '') FROM observations WHERE patient_id='R2'")" "quoted newline kept"
assert_eq 'say "hi"' "$(q "SELECT name FROM observations WHERE patient_id='R3'")" "doubled quotes"
assert_eq "1900.0|cells/mm3" "$(q "SELECT value_num, unit FROM observations WHERE patient_id='R5'")" \
    "every field quoted; no CR left in the last field"
assert_eq 0 "$(q "SELECT count(*) FROM observations WHERE flag LIKE '%'||char(13)||'%' OR unit LIKE '%'||char(13)||'%'")" \
    "CR of CRLF is not part of a field"

printf '\xef\xbb\xbf%s\r\nU1,751-8,1200,cells/mm3,2026-02-01\r\n' "$LAB_HDR" >bom.csv
pv ingest -c pv.lua bom.csv
assert_eq 0 "$RC" "UTF-8 BOM: exit status"
assert_eq 1 "$(q "SELECT count(*) FROM observations WHERE patient_id='U1'")" "UTF-8 BOM: header recognised, row stored"

printf 'patient_id;code;value;unit;observed_at\nC1;751-8;1,2;10*9/L;2026-02-01\nC2;751-8;"a;b";cells/mm3;2026-02-01\n' >semi.csv
pv ingest -c pv.lua semi.csv
assert_eq 0 "$RC" "';' delimiter: exit status"
assert_eq "C1|1,2|10*9/L" "$(q "SELECT patient_id, value_text, unit FROM observations WHERE patient_id='C1'")" \
    "';' delimiter detected (a ',' is data)"
assert_eq "a;b" "$(q "SELECT value_text FROM observations WHERE patient_id='C2'")" "quoted ';'"

printf 'PATIENT_ID\tCode\tValue\tUnit\tObserved_At\nD1\t751-8\t1300\tcells/mm3\t2026-02-01\n' >tab.csv
pv ingest -c pv.lua tab.csv
assert_eq 0 "$RC" "TAB delimiter and mixed-case header: exit status"
assert_eq "1300.0" "$(q "SELECT value_num FROM observations WHERE patient_id='D1'")" "TAB delimiter detected"
cd "$T" || exit 1

# ---------------------------------------------------------------------------
section "ingest: times are stored as UTC text"
mkdir times && cd times || exit 1
write_config pv.lua
cat >times.csv <<EOF
$LAB_HDR
T1,751-8,1,cells/mm3,2026-02-01
T2,751-8,1,cells/mm3,2026-02-01T10:20:30
T3,751-8,1,cells/mm3,2026-02-01T10:20:30Z
T4,751-8,1,cells/mm3,2026-02-01T10:20:30+02:00
T5,751-8,1,cells/mm3,2026-02-01T01:00:00-05:00
T6,751-8,1,cells/mm3,20260201102030
T7,751-8,1,cells/mm3,202602011020+0100
T8,751-8,1,cells/mm3,2026-02-29
T9,751-8,1,cells/mm3,2026-02-01T25:00:00
TA,751-8,1,cells/mm3,2026-02-01T10:20:30.250Z
TB,751-8,1,cells/mm3,2026-02-01 10:20:30
TC,751-8,1,cells/mm3,20260201102030.1234+0100
TD,751-8,1,cells/mm3,2024-02-29T23:59:59+05:30
EOF
pv ingest -c pv.lua times.csv
assert_eq 3 "$RC" "two impossible times: exit 3"
assert_eq "T1|2026-02-01T00:00:00Z
T2|2026-02-01T10:20:30Z
T3|2026-02-01T10:20:30Z
T4|2026-02-01T08:20:30Z
T5|2026-02-01T06:00:00Z
T6|2026-02-01T10:20:30Z
T7|2026-02-01T09:20:00Z
TA|2026-02-01T10:20:30Z
TB|2026-02-01T10:20:30Z
TC|2026-02-01T09:20:30Z
TD|2024-02-29T18:29:59Z" "$(q 'SELECT patient_id, observed_at FROM observations ORDER BY patient_id')" \
    "ISO 8601 and HL7 TS, with and without zone, fractions, a space for T"
assert_match '(^|: )times\.csv:9: ' "$ERR" "2026-02-29 (not a leap year) rejected"
assert_match '(^|: )times\.csv:10: ' "$ERR" "hour 25 rejected"
cd "$T" || exit 1

# ---------------------------------------------------------------------------
section "ingest: Synthea corpus"
mkdir synthea && cd synthea || exit 1
write_config pv.lua
total_obs=0
for f in synthea_observations_head300.csv synthea_observations_laboratory.csv \
    synthea_medications_head300.csv synthea_conditions_head300.csv \
    synthea_patients.csv; do
    rows=$(($(lines "$CORPUS/$f") - 1))
    pv ingest -c pv.lua "$CORPUS/$f"
    assert_eq 0 "$RC" "$f: exit status"
    assert_eq "" "$ERR" "$f: nothing rejected on stderr"
    assert_match "$f: synthea [a-z]+: $rows stored, 0 rejected" "$OUT" "$f: all $rows rows stored"
    case $f in synthea_observations*) total_obs=$((total_obs + rows)) ;; esac
done
assert_eq "$total_obs" "$(q 'SELECT count(*) FROM observations')" "Synthea observations in the table"
assert_eq "$(($(lines "$CORPUS/synthea_medications_head300.csv") - 1))" \
    "$(q 'SELECT count(*) FROM exposures')" "Synthea medications in exposures"
assert_eq "$(($(lines "$CORPUS/synthea_conditions_head300.csv") - 1))" \
    "$(q 'SELECT count(*) FROM events')" "Synthea conditions in events"
assert_eq "$(($(lines "$CORPUS/synthea_patients.csv") - 1))" \
    "$(q 'SELECT count(*) FROM patients WHERE birth_date IS NOT NULL')" "Synthea patients with birth dates"
assert_eq 1 "$(q "SELECT count(*) > 0 FROM observations WHERE code='38483-4' AND value_num IS NOT NULL")" \
    "Synthea creatinine (38483-4) stored with a number"
assert_match '.' "$(q "SELECT value_text FROM observations WHERE value_num IS NULL LIMIT 1")" \
    "Synthea text observations kept as value_text"
# encounters.csv is not one of the recognised kinds: it must not be taken
# for conditions (its START, STOP, PATIENT, CODE, DESCRIPTION columns).
pv ingest -c pv.lua "$CORPUS/synthea_encounters_head200.csv"
assert_eq 3 "$RC" "Synthea encounters: not a recognised kind (exit 3)"
assert_match 'synthea_encounters_head200\.csv:1: .*header' "$ERR" "Synthea encounters: header not recognised"
assert_eq "$(($(lines "$CORPUS/synthea_conditions_head300.csv") - 1))" \
    "$(q 'SELECT count(*) FROM events')" "encounters were not stored as events"
cd "$T" || exit 1

finish
