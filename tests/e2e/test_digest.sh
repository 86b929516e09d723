#!/usr/bin/env bash
# End to end: email.digest, the digest of open alerts (issue 21 part 2),
# against a real SMTP server (aiosmtpd, as tests/e2e/test_email.sh).
#   1. 'pvwatch check' prints the schedule; an unknown signal or a bad
#      'at' is an error naming FILE:LINE (exit 2)
#   2. 'pvwatch run' with every = 2 (seconds): one digest of the open
#      alerts with the right counts per signal and severity; an
#      acknowledged, then a closed alert leaves the next digest
#   3. a restart does not send a period twice: the digest row waits for a
#      server that is down, pvwatch is killed (SIGKILL) and restarted: the
#      digest arrives once
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FEEDS=$PV_SOURCE_DIR/examples/feeds

# shellcheck source=tests/e2e/smtp.sh
. "$(dirname "${BASH_SOURCE[0]}")/smtp.sh"

# digests MAILDIR: one line per digest mail, oldest first:
# "OPEN<TAB>PERIOD<TAB>MESSAGE-ID<TAB>BODY-FILE".
digests() {
    "$PYTHON" - "$1" <<'EOF'
import email, email.policy, glob, os, sys
d = sys.argv[1]
rows = []
for p in glob.glob(os.path.join(d, "new", "*")):
    m = email.message_from_bytes(open(p, "rb").read(), policy=email.policy.default)
    if m["X-Pvwatch-Digest"] is None:
        continue
    body = p + ".txt"
    with open(body, "w", encoding="utf-8") as f:
        f.write(m.get_content().replace("\r\n", "\n"))
    rows.append((os.stat(p).st_mtime_ns, "%s\t%s\t%s\t%s" % (
        m["X-Pvwatch-Open"], m["X-Pvwatch-Digest"], m["Message-ID"], body)))
for _, r in sorted(rows):
    print(r)
EOF
}
ndigests() {
    digests "$1" | wc -l | tr -d ' '
}
# last_open MAILDIR: X-Pvwatch-Open of the newest digest.
# shellcheck disable=SC2317 # called through wait_for's eval
last_open() {
    digests "$1" | tail -1 | cut -f1
}

# ===========================================================================
section "1. pvwatch check: the schedule; unknown signals and bad times"
write_config pv.lua 'email = { dir = "out", to = "safety@example.org",
  digest = { every = "weekly", at = "mon 08:00", signals = { "cytopenia", "engine" },
             severity = "medium", to = { "team@example.org" } } }'
pv check -c pv.lua
assert_eq 0 "$RC" "check accepts the digest (stderr: $ERR)"
assert_match 'e-mail digest of open alerts: weekly at mon 08:00 UTC, next at [0-9-]+T08:00:00Z' "$OUT" \
    "check prints the schedule and the next digest"
assert_match '  to:       team@example.org' "$OUT" "check prints the digest's recipients"
assert_match '  signals:  cytopenia, engine' "$OUT" "check prints the signals"
assert_match 'severity: medium and above; newest 10 listed per signal; an empty period mails nothing' "$OUT" \
    "check prints severity, newest and send_empty"
write_config pv.lua 'email = { dir = "out",
  digest = { every = "daily",
             signals = { "cytopenia",
                         "cytopaenia" } } }'
pv check -c pv.lua
assert_eq 2 "$RC" "an unknown signal: exit 2"
assert_match "pv.lua:11: email.digest.signals: 'cytopaenia' is not a signal of the rule pack \\(known: cytopenia, engine\\)" \
    "$ERR" "the unknown signal is named with FILE:LINE and the pack's signals"
write_config pv.lua 'email = { dir = "out", digest = { every = "daily", at = "8am" } }'
pv check -c pv.lua
assert_eq 2 "$RC" "a bad 'at': exit 2"
assert_match "pv.lua:8: email.digest.at '8am' is not a time \"HH:MM\"" "$ERR" "the bad time is named with FILE:LINE"
write_config pv.lua 'email = { dir = "out", digest_interval = 3600, digest_severity = "medium" }'
pv check -c pv.lua
assert_match 'e-mail batching \(digest_interval\): alerts at or below medium are mailed together every 3600 s' "$OUT" \
    "check prints the digest_interval batching too"

# ===========================================================================
section "2. run: open alerts digested every 2 s; ack and close leave it"
mkdir s2 && cd s2 || exit 1
P2=$(free_port)
smtp_start "$P2" "$T/s2/mail"
write_config pv.lua "email = { url = \"smtp://127.0.0.1:$P2\", from = \"pvwatch@example.org\",
  to = { \"safety@example.org\" }, min_severity = \"critical\", timeout = 5,
  digest = { every = 2, newest = 2, to = { \"digest@example.org\" } } }"
pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
assert_eq 0 "$RC" "ingest exits 0 (stderr: $ERR)"
OPEN=$(q "SELECT count(*) FROM alerts WHERE status = 'open'")
HIGH=$(q "SELECT count(*) FROM alerts WHERE status = 'open' AND signal = 'cytopenia' AND severity = 'high'")
CRIT=$(q "SELECT count(*) FROM alerts WHERE status = 'open' AND signal = 'cytopenia' AND severity = 'critical'")
MED=$(q "SELECT count(*) FROM alerts WHERE status = 'open' AND signal = 'cytopenia' AND severity = 'medium'")
assert_ne 0 "$OPEN" "the sample feeds open alerts ($OPEN)"
start_pv run run -c pv.lua
expect_running run
check_wait "[ \$(ndigests mail) -ge 1 ]" 15 "a digest arrives"
D=$(digests mail | head -1)
assert_eq "$OPEN" "$(cut -f1 <<<"$D")" "the digest counts the $OPEN open alerts (X-Pvwatch-Open)"
B=$(cat "$(cut -f4 <<<"$D")")
assert_match "cytopenia: $OPEN open \\(critical $CRIT, high $HIGH, medium $MED, low 0\\)" "$B" \
    "the counts per signal and severity"
assert_match 'oldest open: ' "$B" "the oldest open alert's age"
assert_match "newest 2 of $OPEN:" "$B" "the newest 2"
assert_match '- alert [0-9]+  patient PV-[0-9]+  (high|critical|medium)  baricitinib\.neutropenia  Neutropenia grade' "$B" \
    "an item: alert, patient, severity, rule, title"
assert_match '\[open, unassigned, opened ' "$B" "an item: status and assignee"
assert_eq 1 "$(q "SELECT count(*) FROM outbox WHERE alert_id = 0 AND channel = 'email:digest@example.org' AND id = (SELECT min(id) FROM outbox WHERE alert_id = 0)")" \
    "the digest is an outbox row (alert 0) to digest.to"
pv outbox list -c pv.lua
assert_match '^[0-9]+ +- +sent .* to digest@example.org' "$(grep 'digest@' <<<"$OUT" | head -1)" \
    "outbox list shows the digest row with alert '-'"
ACK=$(q "SELECT max(id) FROM alerts WHERE status = 'open'")
pv alerts ack "$ACK" -c pv.lua --note "clinic called"
assert_eq 0 "$RC" "ack while running (stderr: $ERR)"
check_wait "[ \"\$(last_open mail)\" = $((OPEN - 1)) ]" 15 "the next digest counts one fewer after the ack"
B=$(cat "$(digests mail | tail -1 | cut -f4)")
assert_no_match "- alert $ACK  " "$B" "the acknowledged alert left the digest"
CLOSE=$(q "SELECT max(id) FROM alerts WHERE status = 'open'")
pv alerts close "$CLOSE" -c pv.lua --note "ANC recovered"
assert_eq 0 "$RC" "close while running (stderr: $ERR)"
check_wait "[ \"\$(last_open mail)\" = $((OPEN - 2)) ]" 15 "the next digest counts two fewer after the close"
stop_pv
ALL=$(digests mail)
N=$(wc -l <<<"$ALL" | tr -d ' ')
assert_eq "$N" "$(cut -f3 <<<"$ALL" | sort -u | wc -l | tr -d ' ')" \
    "each of the $N digests has a Message-ID of its own"
assert_eq "$N" "$(cut -f2 <<<"$ALL" | sort -u | wc -l | tr -d ' ')" \
    "no period was mailed twice"
assert_eq 0 "$STOP_RC" "run stops cleanly"
cd "$T" || exit 1

# ===========================================================================
section "3. restart: a period is mailed once, through a server outage and SIGKILL"
mkdir s3 && cd s3 || exit 1
P3=$(free_port)
# every = 365 days: no boundary passes during the test; the last period
# recorded is set back so that one digest is due.
write_config pv.lua "email = { url = \"smtp://127.0.0.1:$P3\", from = \"pvwatch@example.org\",
  to = { \"safety@example.org\" }, timeout = 2, retry_base = 0.5, retry_cap = 1,
  digest = { every = 31536000 } }"
pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
assert_eq 0 "$RC" "ingest exits 0 (the server is down; mail waits)"
assert_eq 1 "$(q "SELECT count(*) FROM rule_state WHERE rule = 'pvwatch.notify' AND key = 'digest_period'")" \
    "the first sight records the period"
assert_eq 0 "$(q "SELECT count(*) FROM outbox WHERE alert_id = 0")" "and queues no digest"
"$PYTHON" -c 'import sqlite3; c = sqlite3.connect("pv.db"); c.execute("UPDATE rule_state SET value = ? WHERE rule = ? AND key = ?", ("2000-01-01T00:00:00Z", "pvwatch.notify", "digest_period")); c.commit()'
start_pv run1 run -c pv.lua
expect_running run1
check_wait "[ \"\$(q 'SELECT count(*) FROM outbox WHERE alert_id = 0 AND attempts >= 1')\" = 1 ]" 15 \
    "the digest is queued and its first attempt fails (server down)"
stop_pv "$PV_PID" 5 KILL
assert_eq 1 "$(q "SELECT count(*) FROM outbox WHERE alert_id = 0")" "one digest row after SIGKILL"
smtp_start "$P3" "$T/s3/mail"
start_pv run2 run -c pv.lua
expect_running run2
check_wait "[ \$(ndigests mail) -ge 1 ]" 20 "after the restart the digest arrives"
# Proof the restarted engine has pumped since: a new alert's mail arrives.
printf 'patient_id,drug,start,dose,dose_unit\nPV-NEW,baricitinib,2026-01-01,2,mg\n' >inbox/meds.csv
printf 'patient_id,code,value,unit,observed_at\nPV-NEW,751-8,0.4,10*9/L,2026-03-01T09:00:00Z\n' >inbox/labs.csv
check_wait "grep -l 'PV-NEW' mail/new/* >/dev/null 2>&1" 20 "a later alert's mail arrives"
stop_pv
pv ingest -c pv.lua /dev/null
assert_eq 1 "$(ndigests mail)" "the period was mailed once (after outage, SIGKILL, restart, ingest)"
assert_eq 1 "$(q "SELECT count(*) FROM outbox WHERE alert_id = 0")" "one digest row in the outbox"
assert_eq "sent" "$(q "SELECT status FROM outbox WHERE alert_id = 0")" "and it is sent"
cd "$T" || exit 1

finish
