#!/usr/bin/env bash
# test_sighup_config (issue 21 part 2): SIGHUP reloads the configuration
# of a running 'pvwatch run', not only the rules:
#   - a valid change is applied live and logged key by key: a new
#     recipient gets the next alert's mail (email.dir outbox files), a
#     changed limit (limits.rule_instructions) is what the reloaded rules
#     run under, a new inbox path is watched (the old one no longer), a
#     new tailed file is followed, log_format = "json" switches the log;
#   - keys that cannot change live (database, mllp.listen) are reported
#     "needs a restart: KEY" and keep their value;
#   - a file with errors changes nothing: the error is logged with its file
#     and line, an engine alert says so, and the next alert still goes to
#     the old recipients;
#   - every log line starts with an ISO 8601 UTC timestamp (milliseconds),
#     then "pvwatch: ".
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TS_RE='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
mkdir -p stage

# cfg EXTRA-LUA: pv.lua, the standard test configuration plus EXTRA.
cfg() {
    write_config pv.lua "$1"
}

# alert_for PATIENT [INBOX]: a baricitinib exposure and a grade 3 ANC for
# PATIENT dropped into INBOX (default inbox); waits for the alert line.
alert_for() {
    local p=$1 box=${2:-inbox}
    printf 'patient_id,drug,start,dose,dose_unit\n%s,baricitinib,2026-01-01,2,mg\n' "$p" \
        >"stage/$p-meds.csv"
    printf 'patient_id,code,value,unit,observed_at\n%s,751-8,800,cells/mm3,2026-02-01\n' "$p" \
        >"stage/$p-labs.csv"
    mv "stage/$p-meds.csv" "$box/$p-meds.csv"
    mv "stage/$p-labs.csv" "$box/$p-labs.csv"
    check_wait "grep -q '\"patient_id\":\"$p\"' alerts.jsonl" 15 "$p: the alert is raised"
}

# mail_to PATIENT: the To: header of the outbox file mailing PATIENT's alert.
mail_to() {
    local f
    f=$(grep -l "$1" outbox/*.eml 2>/dev/null | head -n 1)
    [ -n "$f" ] && sed -n 's/^To: //p' "$f" | tr -d '\r' | head -n 1
}

# hup: SIGHUP, then waits for the reload to finish ('rules reloaded' or
# 'reload failed' once more than before).
hup() {
    local before
    before=$(grep -Ec 'rules reloaded|reload failed' run.err)
    kill -HUP "$PV_PID"
    check_wait "[ \"\$(grep -Ec 'rules reloaded|reload failed' run.err)\" -gt $before ]" 15 \
        "the reload finished"
}

BASE='email = { dir = "outbox", to = { "a@example.org" } }'

# ---------------------------------------------------------------------------
section "start: one recipient; every log line has a timestamp"
: >feed.csv
cfg "$BASE"
start_pv run run -c pv.lua
expect_running run
alert_for P1
check_wait "[ -n \"\$(mail_to P1)\" ]" 15 "P1's alert is mailed"
assert_eq "a@example.org" "$(mail_to P1)" "P1: to the configured recipient"
assert_eq 0 "$(grep -Evc "^$TS_RE pvwatch: " run.err)" \
    "every line of the log starts with 'TIMESTAMP pvwatch: '"
assert_match "^$TS_RE pvwatch: running: " "$(grep 'running:' run.err)" \
    "the running line, timestamped"

# ---------------------------------------------------------------------------
section "a valid change: applied live, logged key by key"
cfg 'email = { dir = "outbox", to = { "a@example.org", "b@example.org" } }
database = "other.db"
mllp = { listen = "127.0.0.1:65000" }
inbox = { path = "inbox2", settle = 0.3, rescan_interval = 0.2 }
tail = { { path = "feed.csv" }, { path = "feed2.csv" } }
limits = { rule_instructions = 1000 }'
# write_config's own mllp and inbox lines come first: the later ones win.
hup
LOG=$(cat run.err)
assert_match "reload: email\\.to: a@example\\.org -> a@example\\.org, b@example\\.org" \
    "$LOG" "the new recipients, old -> new"
assert_match "reload: limits\\.rule_instructions: 1000000 -> 1000" "$LOG" \
    "the changed limit"
assert_match "reload: inbox\\.path: (.*/)?inbox -> (.*/)?inbox2\$" "$LOG" "the new inbox"
assert_match "reload: tail: (.*/)?feed\\.csv -> (.*/)?feed\\.csv, (.*/)?feed2\\.csv\$" "$LOG" \
    "the new tailed file"
assert_match "warning: reload: needs a restart: database \\(.*other\\.db in the file; keeps .*pv\\.db\\)" \
    "$LOG" "the database needs a restart"
assert_match "warning: reload: needs a restart: mllp\\.listen \\(127\\.0\\.0\\.1:65000 in the file; keeps 127\\.0\\.0\\.1:0\\)" \
    "$LOG" "mllp.listen needs a restart"
assert_match "reload: configuration .*pv\\.lua: [0-9]+ changes applied, 2 need a restart" \
    "$LOG" "the summary"
assert_no_file other.db "the database was not switched"
check_wait "[ -d inbox2/processed ]" 10 "the new inbox is made"

# The limit: 1000 instructions is too few for the neutropenia rule, so
# the reloaded rules fail on the next ANC with an engine alert.
alert_for P2 inbox2
check_wait "grep -q 'baricitinib.neutropenia failed on .* of patient P2: .*instruction budget of 1000 exceeded' run.err" 15 \
    "the rule ran under the new instruction limit (and exceeded it)"
assert_eq "0|1" \
    "$(q "SELECT sum(signal <> 'engine'), sum(title = 'Rule baricitinib.neutropenia failed; the record was stored') FROM alerts WHERE patient_id='P2'")" \
    "P2: no neutropenia alert, an engine alert for the failing rule"

# The limit back; the next alert goes to both recipients.
cfg 'email = { dir = "outbox", to = { "a@example.org", "b@example.org" } }
inbox = { path = "inbox2", settle = 0.3, rescan_interval = 0.2 }
tail = { { path = "feed.csv" }, { path = "feed2.csv" } }'
hup
assert_match "reload: limits\\.rule_instructions: 1000 -> 1000000" "$(cat run.err)" \
    "the limit restored"
alert_for P3 inbox2
check_wait "[ -n \"\$(mail_to P3)\" ]" 15 "P3's alert is mailed"
assert_eq "a@example.org, b@example.org" "$(mail_to P3)" \
    "P3: to the recipients of the reloaded configuration"

# The old inbox is no longer watched.
printf 'patient_id,code,value,unit,observed_at\nOLD1,751-8,3000,cells/mm3,2026-02-01\n' \
    >stage/old.csv
mv stage/old.csv inbox/old.csv
# The new tailed file is followed; its row is stored once the tail polls.
printf 'patient_id,code,value,unit,observed_at\nT2,751-8,3000,cells/mm3,2026-02-01\n' \
    >>feed2.csv
check_wait "[ \"\$(q \"SELECT count(*) FROM observations WHERE patient_id='T2'\")\" = 1 ]" 15 \
    "a row appended to the new tailed file is stored"
# By now the old inbox's rescans (0.2 s) would long have taken old.csv.
assert_file inbox/old.csv "a file in the old inbox is left alone"
assert_eq 0 "$(q "SELECT count(*) FROM observations WHERE patient_id='OLD1'")" \
    "nothing from the old inbox is stored"

# ---------------------------------------------------------------------------
section "a file with an error: nothing of it is applied"
cp pv.lua good.lua
cfg 'email = { dir = "outbox", to = { "c@example.org" } }
inbox = { path = "inbox3" }
limits = { rule_memory = "lots" }'
badline=$(grep -n 'rule_memory' pv.lua | cut -d: -f1)
hup
LOG=$(cat run.err)
assert_match "reload: .*pv\\.lua has errors; the running configuration stays entirely" \
    "$LOG" "the reload is refused"
assert_match "reload: .*pv\\.lua:$badline: limits\\.rule_memory must be a number" \
    "$LOG" "the error names the file, line and key"
assert_no_match "email\\.to: .*c@example\\.org" "$LOG" "no change is logged"
assert_no_file inbox3 "the inbox of the bad file is not made"
check_wait "[ \"\$(q \"SELECT count(*) FROM alerts WHERE rule='pvwatch.config' AND dedup_key='reload-failed'\")\" = 1 ]" 10 \
    "an engine alert says the reload failed"
alert_for P4 inbox2
check_wait "[ -n \"\$(mail_to P4)\" ]" 15 "P4's alert is mailed"
assert_eq "a@example.org, b@example.org" "$(mail_to P4)" \
    "P4: still to the running configuration's recipients"

section "a syntax error: refused, the line named"
printf '%s\nemail = { dir = "outbox", to = { "c@example.org" }\n' "$(cat good.lua)" >pv.lua
hup
assert_match "reload: .*pv\\.lua:[0-9]+: .*" "$(grep 'reload:' run.err | tail -n 2)" \
    "the Lua error with its line"

# ---------------------------------------------------------------------------
section "log_format = \"json\": one JSON object per line from then on"
cp good.lua pv.lua
printf 'log_format = "json"\n' >>pv.lua
hup
n_text=$(grep -c "log_format: (none) -> json" run.err)
assert_eq 1 "$n_text" "the switch is logged (still as text)"
alert_for P5 inbox2
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "pvwatch stops cleanly after the reloads"
# The lines after the switch: JSON objects with ts, level, msg.
sed -n '/log_format: (none) -> json/,$p' run.err | sed -n '/^{/,$p' >json.log
assert_ne 0 "$(lines json.log)" "lines were logged after the switch"
assert_eq "ok" "$(jsonl json.log '"ok" if all(set(o) == {"ts", "level", "msg"} and o["level"] in ("info", "warning", "error", "debug") for o in L) else "bad"')" \
    "every line is {ts, level, msg}"
assert_eq 0 "$(jsonl json.log 'sum(1 for o in L if not __import__("re").fullmatch(r"'"$TS_RE"'", o["ts"]))')" \
    "every ts is ISO 8601 UTC with milliseconds"
assert_match "rules reloaded" "$(jsonl json.log '"\n".join(o["msg"] for o in L)')" \
    "the rules reload is in the JSON log"
assert_match "stopped: " "$(jsonl json.log '"\n".join(o["msg"] for o in L)')" \
    "so is the stop summary"

finish
