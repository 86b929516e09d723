#!/usr/bin/env bash
# End to end: the alert workflow, 'pvwatch alerts list|show|ack|close'
# (issue 2, item 4): --status, --json, --note, --by; every action is a row
# in alert_actions and a line in the alert log; closed alerts cannot be
# acknowledged; unknown ids are usage errors (exit 2). The signed trail
# (issue 21 part 2): --by another name only with audit.allow_by, recorded
# as entered by the login on behalf of that name; close needs --note.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RULE=baricitinib.neutropenia
ME=$(id -un)
write_config pv.lua 'audit = { allow_by = true }'
cat >meds.csv <<'EOF'
patient_id,drug,start,dose,dose_unit
P1,baricitinib,2026-01-01,2,mg
P2,baricitinib,2026-01-01,4,mg
P3,baricitinib,2026-01-01,2,mg
EOF
cat >labs.csv <<'EOF'
patient_id,code,value,unit,observed_at
P1,751-8,900,cells/mm3,2026-02-01
P2,751-8,400,cells/mm3,2026-02-01
P3,751-8,1200,cells/mm3,2026-02-01
EOF
pv ingest -c pv.lua meds.csv labs.csv
assert_eq 0 "$RC" "set-up: ingest"
A1=$(q "SELECT id FROM alerts WHERE patient_id='P1' AND rule='$RULE'")
A2=$(q "SELECT id FROM alerts WHERE patient_id='P2' AND rule='$RULE'")
A3=$(q "SELECT id FROM alerts WHERE patient_id='P3' AND rule='$RULE'")
assert_match '^[0-9]+ [0-9]+ [0-9]+$' "$A1 $A2 $A3" "set-up: three alerts"
NOPE=$(($(q 'SELECT max(id) FROM alerts') + 1000))

# ---------------------------------------------------------------------------
section "list"
pv alerts -c pv.lua
assert_eq 0 "$RC" "'alerts' alone lists"
for p in P1 P2 P3; do
    assert_match "$p" "$OUT" "the list shows $p's alert"
done
pv alerts -c pv.lua list
assert_eq 0 "$RC" "alerts list"
assert_match 'Neutropenia grade 3' "$OUT" "the list shows titles"
pv alerts -c pv.lua list --json
assert_eq 0 "$RC" "alerts list --json"
assert_eq "$A1:P1:open:high:3,$A2:P2:open:critical:4,$A3:P3:open:medium:2" \
    "$(json_list "$OUT" '",".join("%s:%s:%s:%s:%s" % (a["id"], a["patient_id"], a["status"], a["severity"], a["grade"]) for a in sorted([a for a in J if a["rule"] == "'"$RULE"'"], key=lambda a: a["id"]))')" \
    "list --json parses and carries id, patient, status, severity, grade"
assert_eq True "$(json_list "$OUT" 'all(k in a for a in J for k in ("id", "status", "severity", "patient_id", "rule", "title"))')" \
    "list --json items carry the key fields"
pv alerts -c pv.lua list --status closed
assert_eq 0 "$RC" "list --status closed with none"
assert_no_match 'P1|P2|P3' "$OUT" "no closed alerts listed"
pv alerts -c pv.lua list --status nonsense
assert_eq 2 "$RC" "list --status with a bad value"
pv alerts -c pv.lua list extra
assert_eq 2 "$RC" "list with an extra argument"

# ---------------------------------------------------------------------------
section "show"
pv alerts -c pv.lua show "$A1"
assert_eq 0 "$RC" "show"
assert_match 'Neutropenia grade 3 on baricitinib' "$OUT" "show: title"
assert_match 'P1' "$OUT" "show: patient"
assert_match 'Interrupt' "$OUT" "show: action"
assert_match 'opened' "$OUT" "show: the audit trail"
pv alerts -c pv.lua show "$A1" --json
assert_eq 0 "$RC" "show --json"
assert_eq "$A1|P1|$RULE|cytopenia|high|3|open" \
    "$(json "$OUT" '"|".join(str(J[k]) for k in ("alert_id" if "alert_id" in J else "id", "patient_id", "rule", "signal", "severity", "grade", "status"))')" \
    "show --json fields"
assert_eq "lab:751-8:900" "$(json "$OUT" '":".join(str(e[k]) for e in J["evidence"] if e["kind"] == "lab" for k in ("kind", "code", "value"))')" \
    "show --json evidence"

# ---------------------------------------------------------------------------
section "ack"
log_before=$(lines alerts.jsonl)
pv alerts -c pv.lua ack "$A1" --note "called the clinic" --by drsmith
assert_eq 0 "$RC" "ack"
assert_eq acknowledged "$(q "SELECT status FROM alerts WHERE id=$A1")" "ack: status"
assert_eq "drsmith|$ME|acknowledged|called the clinic" \
    "$(q "SELECT actor, entered_by, action, note FROM alert_actions WHERE alert_id=$A1 ORDER BY id DESC LIMIT 1")" \
    "ack: a row in alert_actions with --by, the login who entered it, and --note"
assert_eq $((log_before + 1)) "$(lines alerts.jsonl)" "ack: one line in the alert log"
assert_eq "acknowledged|$A1|P1|acknowledged" \
    "$(jsonl alerts.jsonl '"|".join(str(L[-1].get(k)) for k in ("event", "alert_id", "patient_id", "status"))')" \
    "ack: the log line"
assert_eq "drsmith|$ME" "$(jsonl alerts.jsonl '"|".join(str(L[-1].get(k)) for k in ("by", "entered_by"))')" \
    "ack: the log line names both"
pv alerts -c pv.lua show "$A1"
assert_match "acknowledged +by drsmith \(entered by $ME on behalf of drsmith\): called the clinic" \
    "$OUT" "show: entered by X on behalf of Y"
pv alerts -c pv.lua list --status acknowledged --json
assert_eq "$A1" "$(json_list "$OUT" '",".join(str(a["id"]) for a in J)')" "list --status acknowledged"
pv alerts -c pv.lua list --status open --json
assert_eq "$A2,$A3" "$(json_list "$OUT" '",".join(str(a["id"]) for a in sorted(J, key=lambda a: a["id"]) if a["rule"] == "'"$RULE"'")')" \
    "list --status open no longer shows the acknowledged one"
pv alerts -c pv.lua ack "$A1"
assert_eq 2 "$RC" "ack of an acknowledged alert: exit 2"
assert_match 'already' "$ERR" "ack twice: clear message"
USER=nurse-on-duty LOGNAME=nurse-on-duty pv alerts -c pv.lua ack "$A2"
assert_eq 0 "$RC" "ack without --by"
assert_eq "$ME|$ME|acknowledged|" \
    "$(q "SELECT actor, entered_by, action, coalesce(note, '') FROM alert_actions WHERE alert_id=$A2 ORDER BY id DESC LIMIT 1")" \
    "--by defaults to the login name (the passwd entry, not \$USER); no note"
pv alerts -c pv.lua show "$A2"
assert_no_match "on behalf of" "$OUT" "show: no 'on behalf of' when the login acted itself"

# ---------------------------------------------------------------------------
section "close"
pv alerts -c pv.lua close "$A1" --note "ANC recovered" --by drsmith
assert_eq 0 "$RC" "close an acknowledged alert"
pv alerts -c pv.lua close "$A3" --by drjones
assert_eq 2 "$RC" "close without --note: exit 2"
assert_match "needs --note" "$ERR" "close without --note: says so"
pv alerts -c pv.lua close "$A3" --by drjones --note "  "
assert_eq 2 "$RC" "close with a blank --note: exit 2"
assert_eq open "$(q "SELECT status FROM alerts WHERE id=$A3")" "close without a note changes nothing"
pv alerts -c pv.lua close "$A3" --by drjones --note "false positive"
assert_eq 0 "$RC" "close an open alert"
assert_eq "closed|closed" "$(q "SELECT group_concat(status, '|') FROM (SELECT status FROM alerts WHERE id IN ($A1, $A3) ORDER BY id)")" \
    "close: status"
pv alerts -c pv.lua ack "$A1"
assert_eq 2 "$RC" "ack of a closed alert: exit 2"
assert_match "closed" "$ERR" "ack of a closed alert: the message says it is closed"
assert_eq closed "$(q "SELECT status FROM alerts WHERE id=$A1")" "the closed alert stays closed"
pv alerts -c pv.lua close "$A1" --note again
assert_eq 2 "$RC" "close of a closed alert: exit 2"
pv alerts -c pv.lua list --status closed --json
assert_eq "$A1,$A3" "$(json_list "$OUT" '",".join(str(a["id"]) for a in sorted(J, key=lambda a: a["id"]))')" "list --status closed"
pv alerts -c pv.lua show "$A1" --json
assert_eq "opened:pvwatch:,acknowledged:drsmith:called the clinic,closed:drsmith:ANC recovered" \
    "$(json "$OUT" '",".join("%s:%s:%s" % (a["action"], a["by"], a["note"] or "") for a in J["actions"])')" \
    "show --json: the audit trail in order"

section "every action is a row in alert_actions and a line in the log"
assert_eq "$A1:opened:pvwatch,$A1:acknowledged:drsmith,$A1:closed:drsmith,$A2:opened:pvwatch,$A2:acknowledged:$ME,$A3:opened:pvwatch,$A3:closed:drjones" \
    "$(q "SELECT group_concat(x, ',') FROM (SELECT alert_id || ':' || action || ':' || actor AS x FROM alert_actions WHERE alert_id IN ($A1, $A2, $A3) ORDER BY alert_id, id)")" \
    "alert_actions"
assert_eq "$A1:opened,$A1:acknowledged,$A1:closed,$A2:opened,$A2:acknowledged,$A3:opened,$A3:closed" \
    "$(jsonl alerts.jsonl '",".join("%s:%s" % (e["alert_id"], e["event"]) for e in sorted([e for e in L if e["alert_id"] in ('"$A1, $A2, $A3"')], key=lambda e: e["alert_id"]))')" \
    "the alert log"
assert_eq "" "$(q "SELECT group_concat(at) FROM alert_actions WHERE at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'")" \
    "alert_actions times are ISO 8601 UTC"

# ---------------------------------------------------------------------------
section "unknown ids and usage errors"
n_actions=$(q 'SELECT count(*) FROM alert_actions')
for verb in show ack close; do
    pv alerts -c pv.lua "$verb" "$NOPE" --note "n"
    assert_eq 2 "$RC" "$verb of an unknown id: exit 2"
    assert_match "$NOPE" "$ERR" "$verb of an unknown id: the id is named"
done
for bad in abc 0 -5 1.5; do
    pv alerts -c pv.lua ack "$bad"
    assert_eq 2 "$RC" "ack '$bad': exit 2"
done
pv alerts -c pv.lua ack
assert_eq 2 "$RC" "ack without an id: exit 2"
pv alerts -c pv.lua show "$A1" "$A2"
assert_eq 2 "$RC" "show with two ids: exit 2"
pv alerts -c pv.lua close "$A2" --nonsense
assert_eq 2 "$RC" "an unknown option: exit 2"

section "signed audit trail: --by another name without audit.allow_by"
write_config strict.lua
pv alerts -c strict.lua ack "$A3" --by drjones
assert_eq 2 "$RC" "--by another user without allow_by: exit 2"
assert_match "not you \($ME\).*allow_by = true" "$ERR" "the refusal names the login and the setting"
pv alerts -c strict.lua close "$A2" --by drjones --note "ok"
assert_eq 2 "$RC" "close --by another user without allow_by: exit 2"
pv alerts -c strict.lua close "$A2" --by "dr$(printf '\033')x" --note "ok"
assert_eq 2 "$RC" "--by with a control character: exit 2"
write_config bad-audit.lua 'audit = { allow_by = "yes" }'
pv check -c bad-audit.lua
assert_eq 2 "$RC" "audit.allow_by must be a boolean"
assert_match "bad-audit.lua:[0-9]+: audit.allow_by must be true or false" "$ERR" "names file, line and key"
assert_eq "$n_actions" "$(q 'SELECT count(*) FROM alert_actions')" "failed commands record nothing"
assert_eq acknowledged "$(q "SELECT status FROM alerts WHERE id=$A2")" "failed commands change nothing"
pv alerts -c strict.lua close "$A2" --by "$ME" --note "ANC 1600"
assert_eq 0 "$RC" "--by naming the login itself needs no allow_by"
assert_eq "$ME|$ME|ANC 1600" "$(q "SELECT actor, entered_by, note FROM alert_actions WHERE alert_id=$A2 ORDER BY id DESC LIMIT 1")" \
    "recorded as the login"

finish
