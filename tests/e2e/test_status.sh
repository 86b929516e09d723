#!/usr/bin/env bash
# test_status: 'pvwatch status' (issue 21 part 3) says whether a pvwatch
# runs on the configured database and what it is doing: pid, uptime, the
# bound MLLP address, inbox and tailed files (from the lock file's run
# lines), and from the database: messages today, alerts, outbox, the last
# message. It never creates a database.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

write_config pv.lua 'email = { dir = "mail" }'
LABS=$PV_SOURCE_DIR/examples/feeds/labs.csv
MEDS=$PV_SOURCE_DIR/examples/feeds/medications.csv

section "no database yet: exit 2, names the path and config; creates nothing"
pv status -c pv.lua
assert_eq 2 "$RC" "exit status"
assert_match "no database at .*pv.db" "$ERR" "names the database"
assert_match "pv.lua" "$ERR" "names the configuration"
assert_no_file pv.db "status created a database"
assert_no_file pv.db.lock "status created a lock file"

section "after a one-off ingest: not running (exit 3), the counts"
pv ingest -c pv.lua "$MEDS" "$LABS"
pv status -c pv.lua
assert_eq 3 "$RC" "exit status when nothing runs"
assert_match "not running" "$OUT" "says not running"
open=$(q "SELECT count(*) FROM alerts WHERE status='open'")
msgs=$(q "SELECT count(*) FROM messages")
pending=$(q "SELECT count(*) FROM outbox WHERE status='pending'")
assert_ne 0 "$open" "the example feeds open alerts"
assert_match "messages today: $msgs\$" "$(grep 'messages today' <<<"$OUT")" \
    "messages today"
assert_match "alerts: +$open open, 0 acknowledged" "$OUT" "open alerts"
assert_match "outbox: +$pending pending, 0 failed" "$OUT" "outbox"
assert_match "last message: +20[0-9-]+T[0-9:]+Z .*labs.csv \\(accepted\\)" \
    "$OUT" "the last message: time, name, status"

section "running: pid, uptime, the bound MLLP port, inbox, tail"
: >feed.csv
start_pv run run -c pv.lua
expect_running run
port=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' run.err |
       head -n 1)
check_wait "grep -q '^mllp ' pv.db.lock" 10 "the run lines are written"
pv status -c pv.lua
assert_eq 0 "$RC" "exit status while running"
assert_match "pvwatch: +running \\(pid $PV_PID, up [0-9]+m [0-9]+s\\)" "$OUT" \
    "running, its pid and uptime"
assert_match "MLLP: +127\\.0\\.0\\.1:$port\$" "$(grep MLLP <<<"$OUT")" \
    "the MLLP address with the port the system chose"
assert_match "inbox: +.*/inbox" "$OUT" "the inbox"
assert_match "tailing: +.*feed.csv" "$OUT" "the tailed file"

section "status sees what the running engine takes in"
cp "$LABS" inbox/.more.csv
printf 'patient_id,code,value,unit,observed_at\nP-ST,26499-4,0.4,10*9/L,2026-03-01T08:00:00Z\n' \
    >inbox/.more.csv
mv inbox/.more.csv inbox/more.csv
check_wait "[ -f inbox/processed/more.csv ]" 15 "the inbox file is processed"
pv status -c pv.lua --json
assert_eq 0 "$RC" "--json exit status"
assert_eq True "$(json "$OUT" 'J["running"]')" "json: running"
assert_eq "$PV_PID" "$(json "$OUT" 'J["pid"]')" "json: pid"
assert_eq "['127.0.0.1:$port']" "$(json "$OUT" 'J["mllp"]')" "json: mllp"
assert_eq "$(q 'SELECT count(*) FROM messages')" \
    "$(json "$OUT" 'J["messages_today"]')" "json: messages today"
assert_eq "$(q "SELECT count(*) FROM alerts WHERE status='open'")" \
    "$(json "$OUT" 'J["alerts_open"]')" "json: open alerts"
assert_eq "more.csv" "$(json "$OUT" 'J["last_message"]["name"].split("/")[-1]')" \
    "json: the last message is the inbox file"

section "a client beside it (alerts list) does not make status wrong"
pv alerts -c pv.lua list
assert_eq 0 "$RC" "alerts list beside the engine"
pv status -c pv.lua
assert_eq 0 "$RC" "still running"

section "stopped: not running again (exit 3)"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "run exit status"
pv status -c pv.lua
assert_eq 3 "$RC" "exit status after the stop"
assert_match "not running" "$OUT" "says not running"
assert_no_match "MLLP:" "$OUT" "no listeners when not running"

section "usage errors"
pv status -c pv.lua extra
assert_eq 2 "$RC" "an argument is a usage error"
pv status --bogus
assert_eq 2 "$RC" "an unknown option is a usage error"
pv status --help
assert_eq 0 "$RC" "--help"
assert_match "usage: pvwatch status" "$OUT" "--help prints the usage"

finish
