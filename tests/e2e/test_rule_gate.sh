#!/usr/bin/env bash
# End to end (issue 17): the rule gate (core/rules.c gate_pass) never
# changes an alert. A rule that names drugs in on.exposure gets a lab or an
# event only when the patient has a stored exposure that on.exposure would
# trigger on, unless it says needs_exposure = false. Here:
#   1. a 100k-fact history (tests/e2e/gate_history.py: every rule of the
#      pack, exposures before and after what they cover, drugs spelled by
#      name, brand, NDC or ATC, probenecid alone, other drugs, no drugs)
#      ingested with the gate on and with PVWATCH_NO_GATE=1 gives the same
#      alerts and the same alert actions, row for row, and the gate did
#      spare calls (PVWATCH_PROFILE);
#   2. the sample feeds (examples/feeds) the same;
#   3. the whole rule-spec suite passes with the gate off (ctest runs it
#      with the gate on: rules.specs);
#   4. the contract: a gated rule does not see an unexposed patient's lab, a
#      rule with needs_exposure = false does, and needs_exposure without
#      on.exposure is refused at load.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cols="patient_id, rule, signal, severity, grade, title, detail, action, \
dedup_key, status, occurrences, evidence, rule_sha256"

# ingest_both NAME FILES...: ingests FILES with the gate on (NAME-on.db)
# and off (NAME-off.db), and dumps alerts and actions of each.
ingest_both() {
    local name=$1 mode
    shift
    for mode in on off; do
        rm -f pv.db pv.db-wal pv.db-shm
        if [ "$mode" = off ]; then
            PVWATCH_NO_GATE=1 PVWATCH_PROFILE=1 "$PVWATCH" ingest -c pv.lua "$@" \
                >"$name-$mode.out" 2>"$name-$mode.err"
        else
            PVWATCH_PROFILE=1 "$PVWATCH" ingest -c pv.lua "$@" \
                >"$name-$mode.out" 2>"$name-$mode.err"
        fi
        echo "$?" >"$name-$mode.rc"
        q "SELECT $cols FROM alerts ORDER BY id" >"$name-$mode.alerts"
        q "SELECT a.patient_id, a.rule, a.dedup_key, x.action, x.note
           FROM alert_actions x JOIN alerts a ON a.id = x.alert_id
           ORDER BY x.id" >"$name-$mode.actions"
    done
}

# spared FILE: calls the gate spared, summed over PVWATCH_PROFILE's lines.
spared() {
    sed -n 's/.*, \([0-9][0-9]*\) spared by the gate, [0-9]* failed$/\1/p' "$1" |
        awk '{ s += $1 } END { print s + 0 }'
}

printf 'database = "pv.db"\nplugins = { "%s/plugins" }\nscripts = { "%s/scripts" }\n' \
    "$PV_SOURCE_DIR" "$PV_SOURCE_DIR" >pv.lua

# ---------------------------------------------------------------------------
section "a 100k-fact history: the same alerts with the gate on and off"
"$PYTHON" "$PV_SOURCE_DIR/tests/e2e/gate_history.py" hist 100000 17 ||
    fail "gate_history.py failed"
mapfile -t files < <(sed 's|^|hist/|' hist/order)
ingest_both hist "${files[@]}"
assert_eq "$(cat hist-on.rc)" "$(cat hist-off.rc)" "the same exit status"
assert_eq "$(tail -1 hist-on.out)" "$(tail -1 hist-off.out)" \
    "the same closing summary"
assert_match '100000 stored' "$(tail -1 hist-on.out)" "every fact stored"
n=$(wc -l <hist-on.alerts)
if [ "$n" -ge 1000 ]; then pass; else fail "only $n alerts: the history does not reach the rules"; fi
rules=$(cut -d'|' -f2 hist-on.alerts | sort -u | wc -l)
if [ "$rules" -ge 20 ]; then pass; else fail "only $rules rules fired"; fi
if cmp -s hist-on.alerts hist-off.alerts; then pass; else
    fail "alerts differ: $(diff hist-on.alerts hist-off.alerts | head -5)"
fi
if cmp -s hist-on.actions hist-off.actions; then pass; else
    fail "alert actions differ: $(diff hist-on.actions hist-off.actions | head -5)"
fi
on=$(spared hist-on.err)
off=$(spared hist-off.err)
if [ "$on" -gt 10000 ]; then pass; else fail "the gate spared only $on calls"; fi
assert_eq 0 "$off" "PVWATCH_NO_GATE=1 spares nothing"

# ---------------------------------------------------------------------------
section "the sample feeds: the same alerts with the gate on and off"
ex=$PV_SOURCE_DIR/examples/feeds
ingest_both feeds "$ex/medications.csv" "$ex/pemphigus_medications.csv" \
    "$ex/labs.csv" "$ex/events.csv" "$ex/labs_with_errors.csv"
if [ -s feeds-on.alerts ]; then pass; else fail "the sample feeds raised no alert"; fi
if cmp -s feeds-on.alerts feeds-off.alerts; then pass; else
    fail "alerts differ: $(diff feeds-on.alerts feeds-off.alerts | head -5)"
fi
if cmp -s feeds-on.actions feeds-off.actions; then pass; else
    fail "alert actions differ"
fi

# ---------------------------------------------------------------------------
section "the rule-spec suite with the gate off"
rc=0
(cd "$PV_SOURCE_DIR" && PVWATCH_NO_GATE=1 "$PVWATCH" test tests/rules) \
    >specs.log 2>&1 || rc=$?
assert_eq 0 "$rc" "pvwatch test tests/rules passes with PVWATCH_NO_GATE=1"
assert_match '^[0-9]+ passed, 0 failed$' "$(tail -1 specs.log)" "its closing line"

# ---------------------------------------------------------------------------
section "the contract: gated, needs_exposure = false, and the load check"
mkdir own && cat >own/gate.lua <<'EOF'
local function always(name)
  return function()
    return pv.alert { severity = "low", title = name .. " saw the lab" }
  end
end
return {
  pv.rule { name = "t.gated", signal = "test",
    on = { lab = "751-8", exposure = "baricitinib" }, when = always("gated") },
  pv.rule { name = "t.ungated", signal = "test", needs_exposure = false,
    on = { lab = "751-8", exposure = "baricitinib" }, when = always("ungated") },
  pv.rule { name = "t.plain", signal = "test",
    on = { lab = "751-8" }, when = always("plain") },
}
EOF
printf 'database = "own.db"\nplugins = { "%s/own" }\nscripts = { "%s/scripts" }\n' \
    "$T" "$PV_SOURCE_DIR" >own.lua
printf 'patient_id,drug,start\nEXP,Olumiant 2 MG,2026-01-01\nMTX,methotrexate,2026-01-01\n' >meds.csv
printf 'patient_id,code,value,unit,observed_at\nEXP,751-8,3,10*9/L,2026-02-01T00:00:00Z\nMTX,751-8,3,10*9/L,2026-02-01T00:00:00Z\nNONE,751-8,3,10*9/L,2026-02-01T00:00:00Z\n' >labs.csv
pv ingest -c own.lua meds.csv labs.csv
assert_eq 0 "$RC" "ingest: $ERR"
assert_eq "EXP|t.gated
EXP|t.plain
EXP|t.ungated
MTX|t.plain
MTX|t.ungated
NONE|t.plain
NONE|t.ungated" "$(q -d own.db "SELECT patient_id, rule FROM alerts ORDER BY 1, 2")" \
    "t.gated sees only the patient on baricitinib"
rm -f own.db*
PVWATCH_NO_GATE=1 pv ingest -c own.lua meds.csv labs.csv
assert_eq 9 "$(q -d own.db "SELECT count(*) FROM alerts")" \
    "PVWATCH_NO_GATE=1: every rule sees every lab"
cat >own/gate.lua <<'EOF'
return pv.rule { name = "t.bad", signal = "test", needs_exposure = false,
  on = { lab = "751-8" }, when = function() end }
EOF
pv check -c own.lua
assert_ne 0 "$RC" "needs_exposure without on.exposure is refused"
assert_match "needs_exposure' goes with on.exposure" "$OUT$ERR" "and says why"

# ---------------------------------------------------------------------------
section "a flood of identical rule failures: counted, not logged one by one"
printf 'patient_id,drug,start\nFL,baricitinib,2026-01-01\n' >flood-meds.csv
{
    echo 'patient_id,code,value,unit,observed_at'
    for i in $(seq 0 2499); do
        printf 'FL,751-8,%d,furlongs,2026-02-01T00:%02d:%02dZ\n' \
            "$((i % 7 + 1))" "$((i / 60 % 60))" "$((i % 60))"
    done
} >flood-labs.csv
rm -f pv.db pv.db-wal pv.db-shm
pv ingest -c pv.lua flood-meds.csv flood-labs.csv
assert_eq 0 "$RC" "ingest: $ERR"
whole=$(grep -c 'rule baricitinib.neutropenia failed on lab 751-8' .err || true)
assert_eq 1 "$whole" "the first failure is logged whole, once"
assert_match 'stack traceback' "$(grep 'neutropenia failed on lab' .err)" \
    "with its traceback"
assert_eq "999 more times the same way (1000 in all)
1000 more times the same way (2000 in all)
500 more times the same way (2500 in all)" \
    "$(sed -n 's/.*rule baricitinib.neutropenia failed \([0-9]* more times the same way ([0-9]* in all)\).*/\1/p' .err)" \
    "then one line per 1000 with the count, and the rest when pvwatch stops"
assert_eq "1|2500" "$(q "SELECT count(*), max(occurrences) FROM alerts
    WHERE rule = 'baricitinib.neutropenia' AND signal = 'engine'")" \
    "one engine alert, every failure an occurrence"

finish
