#!/usr/bin/env bash
# End to end: control characters from the feeds never reach a terminal or a
# log raw (issue 22, item 16). A patient id with ESC[31m, CR and LF (a
# quoted CSV field), DEL and a C1 control (U+009B, CSI); a file name with a
# newline and ESC; a unit with BEL; a time with ESC: 'pvwatch ingest', its
# error lines, 'alerts list', 'alerts show', 'pvwatch run' (its log lines
# about an inbox file so named) and 'outbox list' print them escaped (\n,
# \r, \xNN, \u009b) and contain no raw control byte but the line ends; the
# JSON outputs (alert log, --json) carry them escaped the JSON way and give
# back the very same string.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ESC=$'\033'
# raw_ctl FILE: the number of raw control bytes in FILE other than '\n'
# (C0, DEL, and C1 controls as UTF-8 or as single bytes).
raw_ctl() {
    "$PYTHON" - "$1" <<'EOF'
import re, sys
data = open(sys.argv[1], "rb").read()
print(len(re.findall(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]", data)))
EOF
}
# assert_has TEXT HAYSTACK MESSAGE: HAYSTACK contains TEXT (no regex).
assert_has() {
    if [[ $2 == *"$1"* ]]; then pass; else fail "$3: [$2] does not contain [$1]"; fi
}
# check_clean WHAT: no raw control byte in the last pv run's stdout/stderr.
check_clean() {
    assert_eq 0 "$(raw_ctl "$T/.out")" "$1: no raw control byte on stdout"
    assert_eq 0 "$(raw_ctl "$T/.err")" "$1: no raw control byte on stderr"
}

write_config pv.lua
PID_RAW="P${ESC}[31mX"$'\r\n'"Y"
PID_ESC='P\x1b[31mX\r\nY'
MEDS=$'meds\nE'"${ESC}[2J.csv"
MEDS_ESC='meds\nE\x1b[2J.csv'
BAD=$'bad\r.csv'
printf 'patient_id,drug,start,dose,dose_unit\n"%s",baricitinib,2026-01-01,2,mg\nU1,baricitinib,2026-01-01,2,mg\nD1\x7f\xc2\x9bZ,baricitinib,2026-01-01,2,mg\n' \
    "$PID_RAW" >"$MEDS"
printf 'patient_id,code,value,unit,observed_at\n"%s",751-8,900,cells/mm3,2026-02-01\nU1,751-8,900,cells/mm3\a,2026-02-01\nD1\x7f\xc2\x9bZ,751-8,400,cells/mm3,2026-02-01\n' \
    "$PID_RAW" >labs.csv
printf 'patient_id,code,value,unit,observed_at\nQ2,751-8,900,cells/mm3,2026-02-\033[0m01\n' >"$BAD"

# ---------------------------------------------------------------------------
section "ingest: summary and error lines"
pv ingest -c pv.lua "$MEDS" labs.csv "$BAD"
assert_eq 3 "$RC" "ingest: one row rejected (exit 3)"
check_clean "ingest"
assert_has "${MEDS_ESC}: medications: 3 stored" "$OUT" "the file name is shown escaped"
assert_match 'bad\\r\.csv: labs: 0 stored, 1 rejected' "$OUT" "a CR in a file name is shown as \\r"
assert_match 'bad\\r\.csv:2: observed_at .2026-02-\\x1b\[0m01. is not a valid time' "$ERR" \
    "the error line names the file and quotes the field escaped"
assert_match "cells/mm3\\\\x07" "$ERR" "the BEL of a unit, quoted by a rule error, is shown as \\x07"

# ---------------------------------------------------------------------------
section "alerts list, show, --json"
pv alerts -c pv.lua list
assert_eq 0 "$RC" "alerts list"
check_clean "alerts list"
assert_has "3  ${PID_ESC}  baricitinib" "$OUT" "the list shows the patient id escaped"
assert_match 'D1\\x7f\\u009bZ' "$OUT" "DEL as \\x7f, the C1 control CSI as \\u009b"
A=$(q "SELECT id FROM alerts WHERE patient_id = 'P' || char(27) || '[31mX' || char(13, 10) || 'Y'")
assert_match '^[0-9]+$' "$A" "the patient id is stored as it came"
pv alerts -c pv.lua show "$A"
assert_eq 0 "$RC" "alerts show"
check_clean "alerts show"
assert_has "patient:     ${PID_ESC}"$'\n' "$OUT" "show: the patient id escaped, on one line"
E=$(q "SELECT id FROM alerts WHERE patient_id = '-'")
pv alerts -c pv.lua show "$E"
check_clean "alerts show (the engine alert quoting the unit)"
pv alerts -c pv.lua list --json
check_clean "alerts list --json"
assert_eq True "$(json_list "$OUT" 'any(a["patient_id"] == "P\x1b[31mX\r\nY" for a in J)')" \
    "--json gives back the very patient id"
assert_eq True "$(json_list "$OUT" 'any(a["patient_id"] == "D1\x7f\x9bZ" for a in J)')" \
    "--json gives back DEL and U+009B"
assert_eq 0 "$(raw_ctl alerts.jsonl)" "the alert log has no raw control byte"
assert_eq True "$(jsonl alerts.jsonl 'any(l["patient_id"] == "P\x1b[31mX\r\nY" for l in L)')" \
    "the alert log gives back the very patient id"

# ---------------------------------------------------------------------------
section "pvwatch run: log lines about an inbox file"
mkdir -p inbox
start_pv pv run -c pv.lua
expect_running pv
NAME=$'in\nbox'"${ESC}[1m.csv"
printf 'patient_id,code,value,unit,observed_at\nR1,751-8,900,cells/mm3,2026-02-01\n' >"inbox/.tmp"
mv inbox/.tmp "inbox/$NAME"
check_wait "[ -e \"inbox/processed/\$NAME\" ]" 15 "the inbox file is processed"
check_wait "grep -qF 'in\\nbox\\x1b[1m.csv' pv.err" 10 "the log names the file escaped"
stop_pv
assert_eq 0 "$STOP_RC" "pvwatch run stops cleanly"
assert_eq 0 "$(raw_ctl pv.err)" "pvwatch run: no raw control byte on stderr"

# ---------------------------------------------------------------------------
section "outbox list"
mkdir -p ob
cp labs.csv ob/labs.csv
cp "$MEDS" ob/meds.csv
write_config ob/pv.lua 'email = { dir = "mail", to = { "dr\27[31m@example.org" } }'
pv ingest -c ob/pv.lua ob/meds.csv ob/labs.csv
if [ "$RC" = 2 ]; then
    echo "   SKIP: the configuration refuses a control character in an address: $ERR"
    pass
else
    pv outbox -c ob/pv.lua list
    assert_eq 0 "$RC" "outbox list"
    check_clean "outbox list"
    assert_match 'dr\\x1b\[31m@example\.org' "$OUT" "the address is shown escaped"
    assert_eq "$(($(q -d ob/pv.db 'SELECT count(*) FROM outbox') + 1))" "$(wc -l <"$T/.out" | tr -d ' ')" \
        "one line per outbox row (and the header)"
fi

finish
