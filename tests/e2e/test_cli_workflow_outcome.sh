#!/usr/bin/env bash
# End to end: the workflow verbs of issue 16 from the command line —
# 'pvwatch alerts assign ID --to NAME', 'alerts comment ID --note TEXT',
# 'alerts close ID --note TEXT --outcome O' (an unknown outcome is a usage
# error that lists the valid ones), 'alerts show' with the assignee and
# the outcome (text and --json), 'alerts list --assignee NAME', and
# 'pvwatch rules stats [--since DATE] [--json]' (never creates the
# database; counts, intervention share and median time to acknowledge per
# rule). Also: a close with an outcome beside a running engine reaches the
# alert log (written by the engine) with its "outcome".
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
P4,baricitinib,2026-01-01,2,mg
EOF
cat >labs.csv <<'EOF'
patient_id,code,value,unit,observed_at
P1,751-8,900,cells/mm3,2026-02-01
P2,751-8,400,cells/mm3,2026-02-01
P3,751-8,1200,cells/mm3,2026-02-01
P4,751-8,800,cells/mm3,2026-02-01
EOF

section "rules stats never creates the database"
pv rules stats -c pv.lua
assert_eq 2 "$RC" "rules stats without a database: exit 2"
assert_match "no database at pv.db" "$ERR" "names the path"
assert_no_file pv.db "rules stats created no database"

pv ingest -c pv.lua meds.csv labs.csv
assert_eq 0 "$RC" "set-up: ingest"
id_of() { q "SELECT id FROM alerts WHERE patient_id='$1' AND rule='$RULE'"; }
A1=$(id_of P1)
A2=$(id_of P2)
A3=$(id_of P3)
A4=$(id_of P4)
assert_match '^[0-9]+ [0-9]+ [0-9]+ [0-9]+$' "$A1 $A2 $A3 $A4" "set-up: four alerts"

# ---------------------------------------------------------------------------
section "help"
pv alerts --help
assert_eq 0 "$RC" "alerts --help"
for w in "assign ID --to NAME" "comment ID --note TEXT" "--outcome O" \
    "intervention:dose_interrupted" "false_positive_data_error"; do
    assert_match "$w" "$OUT" "alerts --help mentions '$w'"
done
pv rules --help
assert_match "rules stats \[-c CONFIG\] \[--since DATE\] \[--json\]" "$OUT" \
    "rules --help: the stats synopsis"

# ---------------------------------------------------------------------------
section "assign"
log_before=$(lines alerts.jsonl)
pv alerts -c pv.lua assign "$A1" --to "  Dr Who " --by drsmith
assert_eq 0 "$RC" "assign"
assert_match "alert $A1 assigned to Dr Who" "$OUT" "assign: says so"
assert_eq "Dr Who" "$(q "SELECT assignee FROM alerts WHERE id=$A1")" "assign: the assignee, trimmed"
assert_eq "drsmith|$ME|assigned|Dr Who" \
    "$(q "SELECT actor, entered_by, action, note FROM alert_actions WHERE alert_id=$A1 ORDER BY id DESC LIMIT 1")" \
    "assign: a row with actor, entered_by and the assignee"
assert_eq "$log_before" "$(lines alerts.jsonl)" "assign: no alert log line (the log's events are a contract)"
pv alerts -c pv.lua assign "$A1" --to "Dr Who"
assert_eq 2 "$RC" "assign to the same person again: exit 2"
assert_match "already assigned to Dr Who" "$ERR" "assign again: says so"
pv alerts -c pv.lua assign "$A1"
assert_eq 2 "$RC" "assign without --to: exit 2"
assert_match "needs --to NAME" "$ERR" "assign without --to: says so"
pv alerts -c pv.lua assign "$A1" --to "$(printf 'x%.0s' $(seq 65))"
assert_eq 2 "$RC" "assign to a 65-character name: exit 2"
assert_match "64 characters" "$ERR" "the limit is named"
pv alerts -c pv.lua assign "$A2" --to "Nurse Joy"
assert_eq 0 "$RC" "assign another"
pv alerts -c pv.lua ack "$A1" --to "Dr Who"
assert_eq 2 "$RC" "--to with ack: exit 2"
assert_match "--to is not an option of ack" "$ERR" "--to with ack: says so"

section "list --assignee"
pv alerts -c pv.lua list --assignee "Dr Who" --json
assert_eq 0 "$RC" "list --assignee"
assert_eq "$A1:Dr Who" "$(json_list "$OUT" '",".join("%s:%s" % (a["id"], a["assignee"]) for a in J)')" \
    "list --assignee: only that person's alerts, with the assignee"
pv alerts -c pv.lua list --assignee nobody
assert_eq 0 "$RC" "list --assignee with none"
assert_match "no alerts assigned to nobody" "$OUT" "list --assignee with none: says so"

# ---------------------------------------------------------------------------
section "comment"
pv alerts -c pv.lua comment "$A1" --note "called the ward" --by drsmith
assert_eq 0 "$RC" "comment"
assert_eq "commented|called the ward" \
    "$(q "SELECT action, note FROM alert_actions WHERE alert_id=$A1 ORDER BY id DESC LIMIT 1")" \
    "comment: a row"
pv alerts -c pv.lua comment "$A1"
assert_eq 2 "$RC" "comment without --note: exit 2"
assert_match "needs --note" "$ERR" "comment without --note: says so"
assert_eq "$log_before" "$(lines alerts.jsonl)" "comment: no alert log line"

# ---------------------------------------------------------------------------
section "close --outcome"
n_actions=$(q 'SELECT count(*) FROM alert_actions')
pv alerts -c pv.lua close "$A1" --note "held the dose" --outcome intervention:prayed
assert_eq 2 "$RC" "an unknown outcome: exit 2"
assert_match "unknown outcome 'intervention:prayed'" "$ERR" "names the bad outcome"
for o in intervention:dose_interrupted intervention:dose_reduced \
    intervention:drug_stopped intervention:labs_repeated intervention:referred \
    not_clinically_relevant duplicate false_positive_data_error; do
    assert_match "$o" "$ERR" "lists the valid outcome $o"
done
assert_eq "$n_actions" "$(q 'SELECT count(*) FROM alert_actions')" "a refused close records nothing"
pv alerts -c pv.lua close "$A1" --outcome duplicate
assert_eq 2 "$RC" "close --outcome without --note: exit 2"
pv alerts -c pv.lua ack "$A2" --outcome duplicate
assert_eq 2 "$RC" "--outcome with ack: exit 2"

pv alerts -c pv.lua ack "$A1" --by drsmith
assert_eq 0 "$RC" "ack before the close"
pv alerts -c pv.lua close "$A1" --note "held the dose" --outcome intervention:dose_interrupted --by drsmith
assert_eq 0 "$RC" "close with an outcome"
assert_match "closed, outcome intervention:dose_interrupted" "$OUT" "close: says the outcome"
assert_eq "closed|drsmith|$ME|intervention:dose_interrupted|held the dose" \
    "$(q "SELECT action, actor, entered_by, outcome, note FROM alert_actions WHERE alert_id=$A1 ORDER BY id DESC LIMIT 1")" \
    "close: the audit row carries actor, entered_by, outcome and note"
assert_eq "closed|intervention:dose_interrupted" \
    "$(jsonl alerts.jsonl '"|".join(str(L[-1].get(k)) for k in ("event", "outcome"))')" \
    "close: the log line carries the outcome"
pv alerts -c pv.lua close "$A3" --note "ok"
assert_eq 0 "$RC" "close without an outcome still works"
assert_eq "" "$(q "SELECT coalesce(outcome, '') FROM alert_actions WHERE alert_id=$A3 AND action='closed'")" \
    "close without an outcome: none recorded"
assert_eq False "$(jsonl alerts.jsonl '"outcome" in L[-1]')" "no outcome, no key in the log line"

section "comment on a closed alert (hand-over); nothing else"
pv alerts -c pv.lua comment "$A1" --note "handed over to Dr B"
assert_eq 0 "$RC" "comment on a closed alert"
pv alerts -c pv.lua assign "$A1" --to "Dr B"
assert_eq 2 "$RC" "assign a closed alert: exit 2"
assert_match "closed" "$ERR" "assign a closed alert: says it is closed"

# ---------------------------------------------------------------------------
section "show: assignee and outcome"
pv alerts -c pv.lua show "$A1"
assert_eq 0 "$RC" "show"
assert_match "assignee: +Dr Who" "$OUT" "show: the assignee"
assert_match "outcome: +intervention:dose_interrupted \(Intervention: dose interrupted\)" "$OUT" \
    "show: the outcome and its label"
assert_match "closed +by drsmith .*\[outcome intervention:dose_interrupted\]: held the dose" "$OUT" \
    "show: the outcome in the audit trail"
assert_match "commented +by $ME: handed over to Dr B" "$OUT" "show: the comment in the trail"
pv alerts -c pv.lua show "$A1" --json
assert_eq "Dr Who|intervention:dose_interrupted" "$(json "$OUT" '"|".join(str(J[k]) for k in ("assignee", "outcome"))')" \
    "show --json: assignee and outcome"
assert_eq "opened:None,assigned:None,commented:None,acknowledged:None,closed:intervention:dose_interrupted,commented:None" \
    "$(json "$OUT" '",".join("%s:%s" % (a["action"], a["outcome"]) for a in J["actions"])')" \
    "show --json: each action with its outcome"
pv alerts -c pv.lua show "$A4" --json
assert_eq "None|None" "$(json "$OUT" '"|".join(str(J[k]) for k in ("assignee", "outcome"))')" \
    "show --json: null when none"

# ---------------------------------------------------------------------------
section "rules stats"
# Known ack delays: the times of the CLI's actions are the wall clock, so
# they are set here, on the copy the statistics read and in the trail.
pv alerts -c pv.lua ack "$A2"
assert_eq 0 "$RC" "ack A2"
pv alerts -c pv.lua ack "$A4"
assert_eq 0 "$RC" "ack A4"
pv alerts -c pv.lua close "$A4" --note "labs again" --outcome not_clinically_relevant
assert_eq 0 "$RC" "close A4"
q "UPDATE alerts SET created_at = '2026-03-01T08:00:00Z' WHERE id IN ($A1, $A2, $A3, $A4);
   UPDATE alerts SET acknowledged_at = '2026-03-01T08:00:10Z' WHERE id = $A1;
   UPDATE alerts SET acknowledged_at = '2026-03-01T08:00:40Z' WHERE id = $A2;
   UPDATE alerts SET acknowledged_at = '2026-03-01T08:00:20Z' WHERE id = $A4;"
pv rules stats -c pv.lua --json
assert_eq 0 "$RC" "rules stats --json"
# opened 4; acknowledged A1, A2, A4 (10, 40, 20 s: median 20); closed A1
# (intervention), A3 (no outcome), A4 (not clinically relevant): share
# 1 of the 2 closed with an outcome.
assert_eq "4|3|3|1|1|0.5|20.0|1|1" \
    "$(json_list "$OUT" '"|".join(str(x) for r in J if r["rule"] == "'"$RULE"'" for x in (r["opened"], r["acknowledged"], r["closed"], r["closed_no_outcome"], r["interventions"], r["intervention_share"], r["median_ack_s"], r["by_outcome"]["intervention:dose_interrupted"], r["by_outcome"]["not_clinically_relevant"]))')" \
    "rules stats --json: counts, share, median"
assert_eq 8 "$(json_list "$OUT" 'len(J[0]["by_outcome"])')" "by_outcome has every outcome"
pv rules stats -c pv.lua
assert_eq 0 "$RC" "rules stats (text)"
assert_match "RULE +OPENED +ACKED +CLOSED +INTERVENTIONS +MEDIAN ACK" "$OUT" "the table's head"
assert_match "$RULE +4 +3 +3 +50.0% \(1/2\) +20s" "$OUT" "the rule's row"
pv rules stats -c pv.lua --since 2026-03-02 --json
assert_eq 0 "$RC" "rules stats --since after every alert"
assert_eq "" "$OUT" "--since: nothing opened since"
pv rules stats -c pv.lua --since yesterday
assert_eq 2 "$RC" "a bad --since: exit 2"
assert_match "not a date" "$ERR" "a bad --since: says so"
pv rules stats -c pv.lua --markdown
assert_eq 2 "$RC" "stats --markdown: exit 2"
pv rules list -c pv.lua --since 2026-01-01
assert_eq 2 "$RC" "list --since: exit 2"

# ---------------------------------------------------------------------------
section "beside a running engine: the close's line, with its outcome, is in the log"
cat >more.csv <<'EOF'
patient_id,code,value,unit,observed_at
P1,751-8,300,cells/mm3,2026-02-10
EOF
pv ingest -c pv.lua more.csv
assert_eq 0 "$RC" "a new alert"
A5=$(q "SELECT id FROM alerts WHERE patient_id='P1' AND rule='$RULE' AND status='open'")
assert_match '^[0-9]+$' "$A5" "set-up: the new alert"
start_pv pv run -c pv.lua
expect_running pv
pv alerts -c pv.lua close "$A5" --note "stopped" --outcome intervention:drug_stopped
assert_eq 0 "$RC" "close beside the engine"
check_wait "grep -q '\"alert_id\":$A5,.*\"outcome\":\"intervention:drug_stopped\"' alerts.jsonl" 15 \
    "the engine writes the close's line with its outcome"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "the engine stops cleanly"
assert_eq 1 "$(grep -c "\"event\":\"closed\",\"alert_id\":$A5," alerts.jsonl)" "the line is in the log once"

finish
