#!/usr/bin/env bash
# End to end: baricitinib.neutropenia (plugins/cytopenia.lua) through
# 'pvwatch ingest' — CTCAE v5 boundaries in three units, the exposure
# window (core/rules_api.lua covers()), escalation and dedup.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RULE=baricitinib.neutropenia
LAB_HDR='patient_id,code,value,unit,observed_at'
MED_HDR='patient_id,drug,start,dose,dose_unit,end'

# expect_alert PATIENT GRADE SEVERITY INTERRUPT(yes|no) MESSAGE
expect_alert() {
    local got
    got=$(q "SELECT count(*), grade, severity, action LIKE 'Interrupt%' FROM alerts WHERE patient_id='$1' AND rule='$RULE'")
    local want_interrupt=0
    [ "$4" = yes ] && want_interrupt=1
    assert_eq "1|$2|$3|$want_interrupt" "$got" "$5 (count|grade|severity|interrupts)"
}

# expect_none PATIENT MESSAGE
expect_none() {
    assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE patient_id='$1' AND rule='$RULE'")" "$2"
}

# ---------------------------------------------------------------------------
section "CTCAE v5 boundaries in cells/mm3, 10*9/L, /uL and 10*3/uL"
mkdir bounds && cd bounds || exit 1
write_config pv.lua
# One patient per value, so that dedup does not merge them. Columns:
# patient value unit grade severity interrupts
cases=(
    "C1500 1500 cells/mm3 - - -"
    "C1499 1499 cells/mm3 2 medium no"
    "C1000 1000 cells/mm3 2 medium no"
    "C0999 999 cells/mm3 3 high yes"
    "C0500 500 cells/mm3 3 high yes"
    "C0499 499 cells/mm3 4 critical yes"
    "G1500 1.5 10*9/L - - -"
    "G1499 1.499 10*9/L 2 medium no"
    "G1000 1.0 10*9/L 2 medium no"
    "G0999 0.999 10*9/L 3 high yes"
    "G0500 0.5 10*9/L 3 high yes"
    "G0499 0.499 10*9/L 4 critical yes"
    "U1500 1500 /uL - - -"
    "U1499 1499 /uL 2 medium no"
    "U1000 1000 /uL 2 medium no"
    "U0999 999 /uL 3 high yes"
    "U0500 500 /uL 3 high yes"
    "U0499 499 /uL 4 critical yes"
    "K1500 1.500 10*3/uL - - -"
    "K1499 1.499 10*3/uL 2 medium no"
    "K0999 0.999 10*3/uL 3 high yes"
    "K0499 0.499 10*3/uL 4 critical yes"
)
{
    echo "$MED_HDR"
    for c in "${cases[@]}"; do
        read -r pid _ <<<"$c"
        echo "$pid,baricitinib,2026-01-01,2,mg,"
    done
} >meds.csv
{
    echo "$LAB_HDR"
    for c in "${cases[@]}"; do
        read -r pid value unit _ <<<"$c"
        echo "$pid,751-8,$value,$unit,2026-02-01T09:00:00Z"
    done
} >labs.csv
pv ingest -c pv.lua meds.csv labs.csv
assert_eq 0 "$RC" "boundaries: exit status"
for c in "${cases[@]}"; do
    read -r pid value unit grade severity interrupt <<<"$c"
    if [ "$grade" = - ]; then
        expect_none "$pid" "ANC $value $unit: no alert (grade 1 at most)"
    else
        expect_alert "$pid" "$grade" "$severity" "$interrupt" "ANC $value $unit"
    fi
done
assert_match 'ANC >= 1000' "$(q "SELECT action FROM alerts WHERE patient_id='C0999'")" \
    "999: action names the interruption threshold ANC 1000"
assert_match 'not reached' "$(q "SELECT action FROM alerts WHERE patient_id='C1000'")" \
    "1000: action says the interruption threshold is not reached"
assert_eq "Neutropenia grade 4 on baricitinib" "$(q "SELECT title FROM alerts WHERE patient_id='G0499'")" "title"
n_alerts=$(q "SELECT count(*) FROM alerts WHERE rule='$RULE'")
want_alerts=0
for c in "${cases[@]}"; do
    read -r _ _ _ grade _ <<<"$c"
    [ "$grade" = - ] || want_alerts=$((want_alerts + 1))
done
assert_eq "$want_alerts" "$n_alerts" "one neutropenia alert per alerting case"
assert_eq "$n_alerts" "$(jsonl alerts.jsonl 'sum(1 for e in L if e["event"] == "opened" and e["rule"] == "'"$RULE"'")')" \
    "one 'opened' log line per neutropenia alert"
assert_eq "G0999|high|3|0.999|10*9/L" \
    "$(jsonl alerts.jsonl '[ "|".join(str(x) for x in (e["patient_id"], e["severity"], e["grade"], e["evidence"][0]["value"], e["evidence"][0]["unit"])) for e in L if e["patient_id"] == "G0999"][0]')" \
    "log line of 0.999 10*9/L: evidence keeps the value as sent"
cd "$T" || exit 1

# ---------------------------------------------------------------------------
section "exposure: unexposed patients, start day, washout end"
mkdir window && cd window || exit 1
write_config pv.lua
# covers() (core/rules_api.lua): exposed from the start instant; with an
# end, until the end of the end's day plus washout_days (28): end on
# 2026-01-31 covers up to 2026-02-28T23:59:59Z, not 2026-03-01T00:00:00Z.
cat >meds.csv <<EOF
$MED_HDR
MTX,methotrexate,2026-01-01,15,mg,
B0,baricitinib,2026-03-10,2,mg,
B1,baricitinib,2026-03-10,2,mg,
B2,baricitinib,2026-03-10,2,mg,
W1,Olumiant,2026-01-01,4,mg,2026-01-31T15:00:00Z
W2,Olumiant,2026-01-01,4,mg,2026-01-31
W3,Olumiant,2026-01-01,4,mg,2026-01-31
W4,Olumiant,2026-01-01,4,mg,2026-01-31
EOF
cat >labs.csv <<EOF
$LAB_HDR
NOBODY,751-8,400,cells/mm3,2026-02-01
MTX,751-8,400,cells/mm3,2026-02-01
B0,751-8,400,cells/mm3,2026-03-09
B1,751-8,400,cells/mm3,2026-03-09T23:59:59Z
B2,751-8,400,cells/mm3,2026-03-10T00:00:00Z
W1,751-8,400,cells/mm3,2026-02-28
W2,751-8,400,cells/mm3,2026-02-28T23:59:59Z
W3,751-8,400,cells/mm3,2026-03-01T00:00:00Z
W4,751-8,400,cells/mm3,2026-03-02
EOF
pv ingest -c pv.lua meds.csv labs.csv
assert_eq 0 "$RC" "window: exit status"
expect_none NOBODY "patient without any exposure: no alert"
expect_none MTX "patient on another drug: no alert"
expect_none B0 "lab the day before the exposure starts: no alert"
expect_none B1 "lab one second before the exposure starts: no alert"
expect_alert B2 4 critical yes "lab at the start instant: alert"
expect_alert W1 4 critical yes "lab on the last day of the 28-day washout: alert"
expect_alert W2 4 critical yes "lab at the last second of the washout: alert"
expect_none W3 "lab on the day after the washout: no alert"
expect_none W4 "lab two days after the washout: no alert"
cd "$T" || exit 1

section "exposure: facts in any order give the same alerts"
mkdir order && cd order || exit 1
write_config pv.lua
cp ../window/meds.csv ../window/labs.csv .
pv ingest -c pv.lua labs.csv meds.csv
assert_eq 0 "$RC" "labs before medications: exit status"
assert_eq "B2,W1,W2" "$(q "SELECT group_concat(patient_id) FROM (SELECT patient_id FROM alerts WHERE rule='$RULE' ORDER BY patient_id)")" \
    "labs before medications: the same patients alert"
cd "$T" || exit 1

section "exposure: exposure.washout_days from the configuration"
mkdir washout && cd washout || exit 1
write_config pv.lua 'exposure = { washout_days = 7 }'
cat >meds.csv <<EOF
$MED_HDR
X1,baricitinib,2026-01-01,2,mg,2026-01-31
X2,baricitinib,2026-01-01,2,mg,2026-01-31
EOF
cat >labs.csv <<EOF
$LAB_HDR
X1,751-8,800,cells/mm3,2026-02-07T23:00:00Z
X2,751-8,800,cells/mm3,2026-02-08T00:00:00Z
EOF
pv ingest -c pv.lua meds.csv labs.csv
assert_eq 0 "$RC" "washout 7: exit status"
expect_alert X1 3 high yes "washout 7: lab on day 7 after the end alerts"
expect_none X2 "washout 7: lab on day 8 after the end does not"
cd "$T" || exit 1

# ---------------------------------------------------------------------------
section "dedup and escalation"
mkdir escalate && cd escalate || exit 1
write_config pv.lua
printf '%s\nE1,baricitinib,2026-01-01,4,mg,\nE2,baricitinib,2026-01-01,4,mg,\n' "$MED_HDR" >meds.csv
pv ingest -c pv.lua meds.csv
lab() { printf '%s\n%s,751-8,%s,cells/mm3,%s\n' "$LAB_HDR" "$1" "$2" "$3" >"$4"; }
lab E1 1200 2026-02-01 l1.csv
lab E1 900 2026-02-08 l2.csv
lab E1 900 2026-02-15 l3.csv
lab E1 1200 2026-02-22 l4.csv
pv ingest -c pv.lua l1.csv
assert_match '1 opened' "$OUT" "1200: summary says opened"
expect_alert E1 2 medium no "1200: grade 2 alert"
pv ingest -c pv.lua l2.csv
assert_match '0 opened, 1 escalated' "$OUT" "900 after 1200: summary says escalated"
expect_alert E1 3 high yes "900 after 1200: the same alert, now grade 3 high"
assert_eq "1|2" "$(q "SELECT count(*), max(occurrences) FROM alerts WHERE patient_id='E1' AND rule='$RULE'")" "escalation: one alert, two occurrences"
E1_LOG='[e for e in L if e["patient_id"] == "E1" and e["rule"] == "'"$RULE"'"]'
assert_eq "opened,escalated" "$(jsonl alerts.jsonl "\",\".join(e['event'] for e in $E1_LOG)")" "log: opened then escalated"
assert_eq "True|3|high" "$(jsonl alerts.jsonl "(lambda E: '|'.join(str(x) for x in (E[0]['alert_id'] == E[1]['alert_id'], E[1]['grade'], E[1]['severity'])))($E1_LOG)")" \
    "log: the escalation is of the same alert, at grade 3"
assert_eq "opened,escalated" "$(q "SELECT group_concat(action) FROM (SELECT x.action FROM alert_actions x JOIN alerts a ON a.id = x.alert_id WHERE a.patient_id='E1' AND a.rule='$RULE' ORDER BY x.id)")" \
    "audit trail: opened, escalated"
pv ingest -c pv.lua l3.csv
assert_match '0 opened, 0 escalated, 1 repeated' "$OUT" "900 again: summary says repeated"
assert_eq "1|3|3" "$(q "SELECT count(*), grade, occurrences FROM alerts WHERE patient_id='E1' AND rule='$RULE'")" "900 again: no new alert, occurrences grow"
pv ingest -c pv.lua l4.csv
assert_eq "1|3|high|4" "$(q "SELECT count(*), grade, severity, occurrences FROM alerts WHERE patient_id='E1' AND rule='$RULE'")" \
    "1200 after 900: no new alert and no downgrade"
assert_eq "opened,escalated,repeated,repeated" "$(jsonl alerts.jsonl "\",\".join(e['event'] for e in $E1_LOG)")" "log events"

lab E2 900 2026-02-01 m1.csv
lab E2 900 2026-02-02 m2.csv
pv ingest -c pv.lua m1.csv m2.csv
expect_alert E2 3 high yes "900 twice: one alert"
assert_eq 2 "$(q "SELECT occurrences FROM alerts WHERE patient_id='E2' AND rule='$RULE'")" "900 twice: occurrences 2"
id=$(q "SELECT id FROM alerts WHERE patient_id='E2' AND rule='$RULE'")
pv alerts -c pv.lua close "$id" --note "resolved"
assert_eq 0 "$RC" "close the alert"
lab E2 800 2026-03-01 m3.csv
pv ingest -c pv.lua m3.csv
assert_match '1 opened' "$OUT" "after close, a new result opens a new alert"
assert_eq "closed,open" "$(q "SELECT group_concat(status) FROM (SELECT status FROM alerts WHERE patient_id='E2' AND rule='$RULE' ORDER BY id)")" \
    "the closed alert stays closed; a new one is open"
cd "$T" || exit 1

finish
