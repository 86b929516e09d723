#!/usr/bin/env bash
# End to end: alert e-mail (issue 5) against a real SMTP server, aiosmtpd
# (python3-aiosmtpd, ../shared/TESTING.md), started and stopped by this
# script on free 127.0.0.1 ports.
#   1. content: headers (RFC 2047 subject), envelope recipients, body,
#      Message-ID; no patient names; escalation mails, a repeat does not;
#      email.min_severity; routes by severity and signal
#   2. outage while 'pvwatch run' runs: every mail arrives exactly once
#   3. a server answering 550: retries, 'failed', an engine alert,
#      'pvwatch outbox retry' and delivery to a good server
#   4. a server that never speaks: the inbox goes on; timeout and retry
#   5. email.dir writes .eml files (and a digest); no email: no outbox
#   6. a restart resumes pending rows
#   7. password_env / password_file: the password reaches no log
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

E2E_DIR=$PV_SOURCE_DIR/tests/e2e
FEEDS=$PV_SOURCE_DIR/examples/feeds
LAB_HDR='patient_id,code,value,unit,observed_at'
MED_HDR='patient_id,drug,start,dose,dose_unit'
PLUGIN_SHA=$(sha256sum "$PV_TEST_PLUGINS/cytopenia.lua" | cut -d' ' -f1)
EMDASH=$(printf '\xe2\x80\x94')

# shellcheck source=tests/e2e/smtp.sh
. "$(dirname "${BASH_SOURCE[0]}")/smtp.sh"

# mail_count MAILDIR: messages delivered to MAILDIR/new.
mail_count() {
    if [ -d "$1/new" ]; then
        find "$1/new" -type f | wc -l | tr -d ' '
    else
        echo 0
    fi
}

# index_mails DIR IDX: parses every message in DIR/new (a maildir) or
# DIR/*.eml with Python's email package, once, into the tab-separated IDX,
# one line per message, read by mq. Columns: alert, event (X-Pvwatch-*),
# msgid, rcpt (aiosmtpd's X-RcptTo: the envelope), to, from, mailfrom
# (envelope), subject (RFC 2047 decoded), ascii (1 when the header is 7-bit),
# maxline (the longest header line pvwatch wrote), encoded (1 when the raw
# Subject is made of =?UTF-8?B? words only), date (1 when Date parses), body
# (a file holding the decoded body), file. Tabs and newlines in values
# become spaces.
index_mails() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import email, email.policy, email.utils, glob, os, re, sys
d, idx = sys.argv[1], sys.argv[2]
if os.path.isdir(os.path.join(d, "new")):
    files = sorted(glob.glob(os.path.join(d, "new", "*")))
else:
    files = sorted(glob.glob(os.path.join(d, "*.eml")))
bodies = idx + ".bodies"
os.makedirs(bodies, exist_ok=True)
out = []
for i, p in enumerate(files):
    raw = open(p, "rb").read()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    head = re.split(rb"\r?\n\r?\n", raw, 1)[0]
    lines = [l.rstrip(b"\r") for l in head.split(b"\n")]
    ours = [l for l in lines
            if not l.startswith((b"X-Peer:", b"X-MailFrom:", b"X-RcptTo:"))]
    subj, on = [], False
    for l in lines:
        if l.lower().startswith(b"subject:"):
            on = True
        elif l[:1] not in (b" ", b"\t"):
            on = False
        if on:
            subj.append(l.decode("ascii", "replace"))
    words = " ".join(subj)[len("Subject:"):].split()
    encoded = bool(words) and all(
        re.fullmatch(r"=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=", w) for w in words)
    try:
        date_ok = email.utils.parsedate_to_datetime(str(m["Date"])) is not None
    except (TypeError, ValueError):
        date_ok = False
    body = os.path.join(bodies, "%d.txt" % i)
    with open(body, "w", encoding="utf-8") as f:
        f.write(m.get_content().replace("\r\n", "\n"))
    def v(x):
        return re.sub(r"[\t\r\n]+", " ", "" if x is None else str(x))
    out.append("\t".join([
        v(m["X-Pvwatch-Alert"]), v(m["X-Pvwatch-Event"]), v(m["Message-ID"]),
        v(m["X-RcptTo"]), v(m["To"]), v(m["From"]), v(m["X-MailFrom"]),
        v(m["Subject"]), str(int(all(b < 128 for b in head))),
        str(max(len(l) for l in ours)), str(int(encoded)), str(int(date_ok)),
        body, p]))
with open(idx, "w", encoding="utf-8") as f:
    f.write("".join(l + "\n" for l in out))
EOF
}

# mq IDX COND [EXPR]: for each message of IDX meeting the awk condition
# COND (over the column names of index_mails), prints the awk expression
# EXPR (default: the subject).
mq() {
    LC_ALL=C awk -F'\t' "{ alert = \$1; event = \$2; msgid = \$3; rcpt = \$4; to = \$5
        from = \$6; mailfrom = \$7; subject = \$8; ascii = \$9; maxline = \$10
        encoded = \$11; date = \$12; body = \$13; file = \$14 }
        ($2) { print ${3:-subject} }" "$1"
}

# mcount IDX COND: the number of messages meeting COND.
mcount() {
    mq "$1" "$2" | wc -l | tr -d ' '
}

# mone IDX COND [EXPR]: EXPR of the one message meeting COND; a failure
# (and nothing printed) when not exactly one does.
mone() {
    local n
    n=$(mcount "$1" "$2")
    if [ "$n" != 1 ]; then
        fail "$n messages meet ($2), expected one"
        return 0
    fi
    mq "$@"
}

# events_mailed IDX / events_logged JSONL: 'ALERT/EVENT' of each message /
# of each opened or escalated line of the alert log (engine alerts aside),
# sorted, on one line.
events_mailed() {
    mq "$1" 1 'alert "/" event' | LC_ALL=C sort | tr '\n' ' '
}
events_logged() {
    grep -E '"event":"(opened|escalated)"' "$1" | grep -v '"rule":"pvwatch\.' |
        sed -E 's/.*"event":"([a-z]+)","alert_id":([0-9]+).*/\2\/\1/' |
        LC_ALL=C sort | tr '\n' ' '
}

# email_config PORT EXTRA: the email table for the SMTP server on PORT.
email_config() {
    printf 'email = { url = "smtp://127.0.0.1:%s", from = "pvwatch@example.org", %s }\n' "$1" "$2"
}

# drop NAME: moves stage/NAME into the inbox (whole, as a writer should).
drop() {
    mv "stage/$1" "inbox/$1"
}

outbox_status() {
    q "SELECT group_concat(status, ',') FROM (SELECT status FROM outbox ORDER BY id)"
}

# The sample feeds: PV-001 opens at grade 2 (medium) and escalates to grade
# 3 (high), PV-003 grade 4 (critical), PV-005 grade 3 (high).
# An HL7 ORU whose PID-5 carries a name, for a patient on baricitinib.
write_named_hl7() {
    printf 'MSH|^~\\&|LAB|HOSP|PV|PV|20260301090000||ORU^R01^ORU_R01|NAMED0001|P|2.5.1\rPID|1||PV-NAME^^^HOSP^MR||Quixote^Dulcinea^^^^^L||19700101|F\rOBR|1|ORD1||58410-2^CBC^LN|||20260301090000\rOBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L^10*9/L^UCUM|2.0-7.5|LL|||F|||20260301090000\r' >"$1"
}
write_named_meds() {
    printf '%s\nPV-NAME,baricitinib,2026-01-01,2,mg\n' "$MED_HDR" >"$1"
}

# ===========================================================================
section "1. content: headers, recipients, body, Message-ID, no names"
mkdir s1 && cd s1 || exit 1
P1=$(free_port)
smtp_start "$P1" "$T/s1/mail"
S1_PID=$SMTP_PID
write_config pv.lua "$(email_config "$P1" 'to = { "a@example.org", "b@example.org" }, timeout = 5')"
# A patients file with names in extra columns, and an HL7 PID-5 name.
cat >patients.csv <<'EOF'
patient_id,birth_date,sex,first_name,last_name
PV-001,1961-04-02,F,Zenobia,Zebedee
EOF
write_named_meds named_meds.csv
write_named_hl7 named.hl7
pv ingest -c pv.lua patients.csv "$FEEDS/medications.csv" "$FEEDS/labs.csv" named_meds.csv named.hl7
assert_eq 0 "$RC" "ingest exits 0 (stderr: $ERR)"
assert_match 'alerts: 4 opened, 1 escalated, 0 repeated' "$OUT" "4 alerts opened, 1 escalated"
assert_match '^e-mail: 5 sent$' "$(printf '%s\n' "$OUT" | grep '^e-mail')" "ingest reports 5 mails sent"
check_wait "[ \$(mail_count mail) -ge 5 ]" 10 "5 mails arrive"
assert_eq 5 "$(mail_count mail)" "exactly 5 mails"
assert_eq "sent,sent,sent,sent,sent" "$(outbox_status)" "every outbox row is sent"
index_mails mail idx
assert_eq 5 "$(mq idx 1 msgid | sort -u | wc -l | tr -d ' ')" "5 distinct Message-IDs"

S=$(mone idx 'event == "escalated"')
assert_eq "[pvwatch] HIGH cytopenia: Neutropenia grade 3 on baricitinib $EMDASH patient PV-001 (escalated)" "$S" "escalation subject"
S=$(mone idx 'subject ~ /patient PV-005/')
assert_eq "[pvwatch] HIGH cytopenia: Neutropenia grade 3 on baricitinib $EMDASH patient PV-005" "$S" "subject of PV-005"
S=$(mone idx 'subject ~ /patient PV-003/')
assert_eq "[pvwatch] CRITICAL cytopenia: Neutropenia grade 4 on baricitinib $EMDASH patient PV-003" "$S" "subject of PV-003"
S=$(mone idx 'subject ~ /patient PV-001/ && event == "opened"')
assert_eq "[pvwatch] MEDIUM cytopenia: Neutropenia grade 2 on baricitinib $EMDASH patient PV-001" "$S" "subject of PV-001's opening"
assert_eq 0 "$(mcount idx 'ascii != 1')" "headers are 7-bit ASCII"
assert_eq 0 "$(mcount idx 'encoded != 1')" "every subject is RFC 2047 encoded words"
assert_eq 0 "$(mcount idx 'maxline > 78')" \
    "header lines are at most 78 characters (longest: $(mq idx 1 maxline | sort -n | tail -1))"
assert_eq "pvwatch <pvwatch@example.org>" "$(mq idx 1 from | sort -u)" "From"
assert_eq "a@example.org, b@example.org" "$(mq idx 1 to | sort -u)" "To"
assert_eq "a@example.org, b@example.org" "$(mq idx 1 rcpt | sort -u)" "envelope recipients (X-RcptTo)"
assert_eq "pvwatch@example.org" "$(mq idx 1 mailfrom | sort -u)" "envelope sender"
assert_eq 0 "$(mcount idx 'date != 1')" "every mail has a valid Date"

# Message-ID: names the alert and the event, as in the alerts table.
assert_eq 0 "$(mcount idx 'msgid !~ /^<pvwatch\.alert-[0-9]+\.(opened|escalated)-[0-9]+\.[0-9a-f]+@pvwatch>$/ || index(msgid, "<pvwatch.alert-" alert "." event "-") != 1')" \
    "Message-ID <pvwatch.alert-ID.EVENT-N.HASH@pvwatch> agrees with X-Pvwatch-Alert/Event"
esc_alert=$(q "SELECT id FROM alerts WHERE patient_id='PV-001'")
assert_match "^<pvwatch\\.alert-$esc_alert\\.escalated-2\\." "$(mone idx 'event == "escalated"' msgid)" \
    "the escalation's Message-ID names alert $esc_alert, event 2"
assert_match "^<pvwatch\\.alert-$esc_alert\\.opened-1\\." "$(mone idx 'subject ~ /PV-001/ && event == "opened"' msgid)" \
    "the opening's Message-ID names alert $esc_alert, event 1"
assert_eq "$(events_logged alerts.jsonl)" "$(events_mailed idx)" "one mail per alert event of alerts.jsonl"

B=$(cat "$(mone idx 'event == "escalated"' body)")
assert_match 'Patient: +PV-001' "$B" "body: the patient id"
assert_match 'Severity: +high, grade 3' "$B" "body: severity and grade"
assert_match 'lab 751-8 = 0\.8 10\*9/L at 2026-03-01T09:00:00Z' "$B" "body: the lab fact with value, unit and date"
assert_match 'exposure .* = 2 mg at 2026-01-05' "$B" "body: the exposure fact with dose and date"
trend=$(printf '%s\n' "$B" | sed -n '/^Recent results of 751-8/,/^$/p' | tr -s ' ' | sed -n '2,4p' | tr '\n' ';')
assert_eq " 2026-03-01 0.8 10*9/L; 2026-02-14 1.2 10*9/L; 2026-01-03 3.1 10*9/L;" "$trend" "body: the trend, newest first"
assert_match 'Action: +Interrupt baricitinib' "$(printf '%s' "$B" | tr '\n' ' ')" "body: the action"
assert_match "Provenance: rule baricitinib\\.neutropenia, source sha256 $PLUGIN_SHA" "$B" "body: the rule and its sha256"
assert_match "pvwatch alerts ack $esc_alert( |$)" "$B" "body: how to acknowledge"

# Names: neither the patients file's nor PID-5's, in any mail or the log.
assert_eq 1 "$(mcount idx 'subject ~ /patient PV-NAME$/')" "the HL7 patient's alert is mailed"
for name in Zenobia Zebedee Quixote Dulcinea; do
    assert_eq 0 "$(grep -rl "$name" mail alerts.jsonl | wc -l | tr -d ' ')" "the name $name is in no mail and not in alerts.jsonl"
done

section "1b. a repeat is not mailed"
printf '%s\nPV-001,751-8,0.9,10*9/L,2026-03-05T09:00:00Z\n' "$LAB_HDR" >repeat.csv
pv ingest -c pv.lua repeat.csv
assert_match 'alerts: 0 opened, 0 escalated, 1 repeated' "$OUT" "the new grade 3 value is a repeat"
assert_no_match '^e-mail' "$OUT" "nothing sent"
assert_eq 5 "$(q 'SELECT count(*) FROM outbox')" "no outbox row for the repeat"
assert_eq 5 "$(mail_count mail)" "no mail for the repeat"

section "1c. email.min_severity: below it nothing is queued"
mkdir ../s1c && cd ../s1c || exit 1
write_config pv.lua "$(email_config "$P1" 'to = { "min@example.org" }, min_severity = "high"')"
pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
assert_eq 0 "$RC" "ingest exits 0 (stderr: $ERR)"
assert_eq 3 "$(q 'SELECT count(*) FROM outbox')" "3 rows: the medium opening is not queued"
assert_eq 0 "$(q "SELECT count(*) FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE a.patient_id = 'PV-001' AND o.payload LIKE '%X-Pvwatch-Event: opened%'")" \
    "no row for PV-001's medium opening"
assert_match '^e-mail: 3 sent$' "$(printf '%s\n' "$OUT" | grep '^e-mail')" "3 mails sent"
index_mails ../s1/mail idx
assert_eq "CRITICAL HIGH HIGH" "$(mq idx 'rcpt == "min@example.org"' 'split(subject, w, " ") ? w[2] : ""' | sort | tr '\n' ' ' | sed 's/ $//')" \
    "3 mails to min@example.org, high and critical only"
assert_eq 1 "$(mcount idx 'rcpt == "min@example.org" && event == "escalated"')" \
    "the escalation to high is mailed"

section "1d. routes: recipients by severity and by signal"
mkdir ../s1d && cd ../s1d || exit 1
write_config pv.lua "$(email_config "$P1" 'routes = {
  { to = { "oncall@example.org" }, min_severity = "critical" },
  { to = { "cyto@example.org", "pharm@example.org" }, signals = { "cytopenia" } },
  { to = { "liver@example.org" }, signals = { "hepatic" } },
}')"
pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
assert_eq 0 "$RC" "ingest exits 0 (stderr: $ERR)"
assert_match '^e-mail: 5 sent$' "$(printf '%s\n' "$OUT" | grep '^e-mail')" "5 mails sent"
index_mails ../s1/mail idx
assert_eq "PV-003" "$(mq idx 'rcpt == "oncall@example.org"' '(n = split(subject, w, " ")) ? w[n] : ""')" \
    "oncall@ (critical) gets only PV-003"
assert_eq 4 "$(mcount idx 'rcpt == "cyto@example.org, pharm@example.org"')" \
    "the cytopenia route gets every cytopenia event, once, to both addresses"
assert_eq 0 "$(mcount idx 'rcpt ~ /liver/ || to ~ /liver/')" \
    "the hepatic route gets nothing"
assert_eq "oncall@example.org" "$(mone idx 'rcpt == "oncall@example.org"' to)" "To of the oncall mail"
smtp_stop "$S1_PID" "$P1"
cd "$T" || exit 1

# ===========================================================================
section "2. outage while 'pvwatch run' runs: every mail exactly once"
mkdir s2 && cd s2 || exit 1
mkdir stage
P2=$(free_port)
write_config pv.lua "$(email_config "$P2" 'to = { "ops@example.org" }, timeout = 2, retry_base = 0.2, retry_cap = 1, max_attempts = 1000')"
smtp_start "$P2" "$T/s2/mail"
S2_PID=$SMTP_PID
start_pv run run -c pv.lua
check_wait "grep -q 'running' run.err" 15 "engine running"
cp "$FEEDS/medications.csv" stage/meds.csv
drop meds.csv
check_wait "[ -f inbox/processed/meds.csv ]" 10 "meds.csv ingested"
grep -E '^(patient_id|PV-003),' "$FEEDS/labs.csv" >stage/labs-a.csv
drop labs-a.csv
check_wait "[ \$(mail_count mail) = 1 ]" 10 "the mail before the outage arrives"
check_wait "[ \"\$(outbox_status)\" = sent ]" 5 "and is marked sent"

smtp_stop "$S2_PID" "$P2"
grep -E '^(patient_id|PV-001|PV-005),' "$FEEDS/labs.csv" >stage/labs-b.csv
drop labs-b.csv
check_wait "[ -f inbox/processed/labs-b.csv ]" 10 "labs-b.csv ingested during the outage"
assert_eq 4 "$(q 'SELECT count(*) FROM outbox')" "3 more rows queued (PV-001 opened + escalated, PV-005)"
check_wait "[ \$(q \"SELECT count(*) FROM outbox WHERE status='pending' AND attempts >= 2\") = 3 ]" 15 \
    "each is tried and retried while the server is down"
assert_match 'onnect' "$(q "SELECT last_error FROM outbox WHERE status='pending' LIMIT 1")" "last_error says the connection failed"
assert_eq 1 "$(mail_count mail)" "nothing arrived during the outage"

smtp_start "$P2" "$T/s2/mail"
S2_PID=$SMTP_PID
check_wait "[ \"\$(outbox_status)\" = sent,sent,sent,sent ]" 15 "after the outage every row is sent"
check_wait "[ \$(mail_count mail) = 4 ]" 5 "4 mails in the maildir"

section "6. a restart resumes pending rows"
smtp_stop "$S2_PID" "$P2"
write_named_meds stage/named_meds.csv
write_named_hl7 stage/named.hl7
drop named_meds.csv
check_wait "[ -f inbox/processed/named_meds.csv ]" 10 "named_meds.csv ingested"
drop named.hl7
check_wait "[ -f inbox/processed/named.hl7 ]" 10 "named.hl7 ingested"
check_wait "[ \$(q \"SELECT count(*) FROM outbox WHERE status='pending' AND attempts >= 1\") = 1 ]" 10 \
    "its mail is tried while the server is down"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "pvwatch run exits 0 on SIGTERM"
assert_eq "sent,sent,sent,sent,pending" "$(outbox_status)" "the row stays pending across the stop"
smtp_start "$P2" "$T/s2/mail"
S2_PID=$SMTP_PID
start_pv run2 run -c pv.lua
check_wait "[ \"\$(outbox_status)\" = sent,sent,sent,sent,sent ]" 15 "the restarted engine sends it"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "second run exits 0 on SIGTERM"
assert_eq 5 "$(mail_count mail)" "5 mails in all: each exactly once"
index_mails mail idx
assert_eq 5 "$(mq idx 1 msgid | sort -u | wc -l | tr -d ' ')" "5 distinct Message-IDs"
assert_eq "$(events_logged alerts.jsonl)" "$(events_mailed idx)" "one mail per alert event, none lost"
smtp_stop "$S2_PID" "$P2"
cd "$T" || exit 1

# ===========================================================================
section "3. a server that answers 550: retried, given up, engine alert, retry"
mkdir s3 && cd s3 || exit 1
mkdir stage
P3=$(free_port)
write_config pv.lua "$(email_config "$P3" 'to = { "nobody@example.org" }, timeout = 2, retry_base = 0.2, retry_cap = 1, max_attempts = 3')"
export SMTP_REJECT_LOG=$T/s3/rcpt.log
smtp_start "$P3" "" smtp_reject.Reject
S3_PID=$SMTP_PID
unset SMTP_REJECT_LOG
start_pv run run -c pv.lua
check_wait "grep -q 'running' run.err" 15 "engine running"
cp "$FEEDS/medications.csv" stage/meds.csv
drop meds.csv
check_wait "[ -f inbox/processed/meds.csv ]" 10 "meds.csv ingested"
grep -E '^(patient_id|PV-003),' "$FEEDS/labs.csv" >stage/labs.csv
drop labs.csv
check_wait "[ \"\$(outbox_status)\" = failed ]" 20 "the row ends 'failed'"
assert_eq 3 "$(q 'SELECT attempts FROM outbox')" "after max_attempts (3) attempts"
assert_eq 3 "$(lines rcpt.log)" "the server saw 3 attempts"
assert_match '550' "$(q 'SELECT last_error FROM outbox')" "last_error has the server's 550"
assert_eq 1 "$(q "SELECT count(*) FROM alerts WHERE rule='pvwatch.notify' AND signal='engine'")" "an engine alert (pvwatch.notify)"
check_wait "grep -q '\"rule\":\"pvwatch.notify\"' alerts.jsonl" 5 "the engine alert is in alerts.jsonl"
assert_eq 1 "$(q 'SELECT count(*) FROM outbox')" "the engine alert is not mailed"
assert_match 'giving up after 3 attempts' "$(cat run.err)" "the log says it gave up"
pv outbox -c pv.lua list
assert_match '^1 .* failed .*550' "$(printf '%s\n' "$OUT" | grep '^1 ')" "'outbox list' shows the failed row and its error"

smtp_stop "$S3_PID" "$P3"
smtp_start "$P3" "$T/s3/mail"
S3_PID=$SMTP_PID
pv outbox -c pv.lua retry 1
assert_eq 0 "$RC" "'outbox retry 1' exits 0 ($ERR)"
assert_eq "1 mail pending again" "$OUT" "'outbox retry 1' output"
check_wait "[ \"\$(outbox_status)\" = sent ]" 10 "the retried row is sent by the running engine"
check_wait "[ \$(mail_count mail) = 1 ]" 5 "and arrives at the good server"
index_mails mail idx
assert_eq "nobody@example.org" "$(mq idx 1 rcpt)" "to its recipient"
pv outbox -c pv.lua retry 1
assert_ne 0 "$RC" "'outbox retry 1' on a sent row fails"
assert_match 'not failed' "$ERR" "and says why"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "pvwatch run exits 0 on SIGTERM"
assert_eq 1 "$(mail_count mail)" "delivered once"
smtp_stop "$S3_PID" "$P3"
cd "$T" || exit 1

# ===========================================================================
section "4. a server that never speaks: ingest goes on; timeout and retry"
mkdir s4 && cd s4 || exit 1
mkdir stage
P4=$(free_port)
write_config pv.lua "$(email_config "$P4" 'to = { "ops@example.org" }, timeout = 4, retry_base = 0.2, retry_cap = 1, max_attempts = 100')"
"$PYTHON" "$E2E_DIR/smtp_silent.py" "$P4" silent.log >silent.err 2>&1 &
S4_PID=$!
BG_PIDS+=("$S4_PID")
check_wait "grep -q listening silent.log" 10 "the silent server listens"
start_pv run run -c pv.lua
check_wait "grep -q 'running' run.err" 15 "engine running"
cp "$FEEDS/medications.csv" stage/meds.csv
drop meds.csv
check_wait "[ -f inbox/processed/meds.csv ]" 10 "meds.csv ingested"
grep -E '^(patient_id|PV-003),' "$FEEDS/labs.csv" >stage/labs.csv
drop labs.csv
check_wait "grep -q 'accepted 1' silent.log" 10 "the mail attempt connects and hangs"
{
    echo "$LAB_HDR"
    for i in 1 2 3 4 5; do echo "STUCK$i,751-8,3000,cells/mm3,2026-02-0$i"; done
} >stage/more.csv
drop more.csv
check_wait "[ -f inbox/processed/more.csv ]" 2.5 "a file dropped meanwhile is ingested promptly"
assert_eq "" "$(grep 'closed 1' silent.log)" "... while the mail attempt is still stuck"
assert_eq 5 "$(q "SELECT count(*) FROM observations WHERE patient_id LIKE 'STUCK%'")" "its rows are stored"
check_wait "grep -q 'closed 1' silent.log" 8 "the attempt times out (email.timeout 4 s)"
check_wait "[ \$(q 'SELECT attempts FROM outbox') -ge 1 ]" 5 "the attempt is counted"
assert_match '[Tt]ime' "$(q 'SELECT last_error FROM outbox')" "last_error says it timed out"
assert_eq pending "$(outbox_status)" "the row stays pending"
check_wait "grep -q 'accepted 2' silent.log" 10 "the mail is tried again"
# The second attempt has just begun: a stop must not wait for its timeout.
stop_pv "$PV_PID" 2
assert_eq 0 "$STOP_RC" "SIGTERM with a transfer stuck: exit 0 within 2 s, not at the mail timeout"
kill -TERM "$S4_PID" 2>/dev/null
wait "$S4_PID" 2>/dev/null
cd "$T" || exit 1

# ===========================================================================
section "5. email.dir writes .eml files; a digest; without email nothing is queued"
mkdir s5 && cd s5 || exit 1
write_config pv.lua 'email = { dir = "outbox" }'
pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
assert_eq 0 "$RC" "ingest exits 0 (stderr: $ERR)"
assert_eq 4 "$(find outbox -name 'outbox-*.eml' | wc -l | tr -d ' ')" "one .eml per alert event"
assert_eq "outbox-000001.eml outbox-000002.eml outbox-000003.eml outbox-000004.eml" \
    "$(cd outbox && echo outbox-*.eml)" "named by outbox row"
assert_eq 0 "$(find outbox -name '*.tmp' | wc -l | tr -d ' ')" "no temporary files left"
assert_eq "sent,sent,sent,sent" "$(outbox_status)" "rows marked sent"
index_mails outbox idx
assert_eq "safety-officer@localhost" "$(mq idx 1 to | sort -u)" "To: the default recipient"
assert_eq 4 "$(mq idx 1 msgid | sort -u | wc -l | tr -d ' ')" "distinct Message-IDs"
assert_eq "$(events_logged alerts.jsonl)" "$(events_mailed idx)" "one file per alert event"
assert_match 'patient PV-001 \(escalated\)$' "$(mone idx 'event == "escalated"')" "the escalation's file"
pv ingest -c pv.lua "$FEEDS/labs.csv"
assert_eq 4 "$(find outbox -name '*.eml' | wc -l | tr -d ' ')" "ingesting again writes nothing more"

mkdir ../s5b && cd ../s5b || exit 1
write_config pv.lua 'email = { dir = "outbox", digest_interval = 3600, digest_severity = "medium" }'
pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
assert_eq 0 "$RC" "digest: ingest exits 0 (stderr: $ERR)"
assert_eq "digest:safety-officer@localhost" "$(q "SELECT channel FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE a.patient_id = 'PV-001' AND o.payload LIKE '%X-Pvwatch-Event: opened%'")" \
    "digest: the medium event is queued for the digest"
assert_eq 4 "$(find outbox -name '*.eml' | wc -l | tr -d ' ')" "digest: 3 mails and 1 digest"
index_mails outbox idx
assert_eq 1 "$(mcount idx 'index(subject, "[pvwatch] digest: 1 ") == 1')" "digest: one digest of one event"
assert_match 'Neutropenia grade 2 on baricitinib' "$(cat "$(mone idx 'subject ~ /digest/' body)")" "digest: it carries the event"

mkdir ../s5c && cd ../s5c || exit 1
write_config pv.lua
pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
assert_eq 0 "$RC" "no email: ingest exits 0"
assert_eq 4 "$(lines alerts.jsonl)" "no email: the alerts are raised"
assert_eq 0 "$(q 'SELECT count(*) FROM outbox')" "no email: the outbox is empty"
assert_no_match 'e-mail' "$OUT" "no email: nothing reported sent"
pv outbox -c pv.lua list
assert_match '\(outbox empty\)' "$OUT" "no email: 'outbox list' says empty"
assert_no_file outbox "no email: no outbox directory"
cd "$T" || exit 1

# ===========================================================================
section "7. the password (password_env, password_file) reaches no log"
mkdir s7 && cd s7 || exit 1
SECRET='pw-Zq8x!kV3-never-log-me'
P7=$(free_port)
write_config pv.lua "$(email_config "$P7" 'to = { "ops@example.org" }, username = "pvuser", password_env = "PV_TEST_SMTP_PASSWORD", insecure = true, max_attempts = 1, timeout = 2')"
# Server down: the attempt fails, is given up, becomes an engine alert.
PV_TEST_SMTP_PASSWORD=$SECRET pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
cat "$T/.err" >down.err
assert_eq 0 "$RC" "ingest exits 0 with the server down"
assert_eq "failed,failed,failed,failed" "$(outbox_status)" "given up after 1 attempt"
assert_eq 4 "$(q "SELECT count(*) FROM alerts WHERE rule='pvwatch.notify'")" "engine alerts raised"
# Server up (aiosmtpd offers no AUTH without TLS, so curl sends without it).
smtp_start "$P7" "$T/s7/mail"
S7_PID=$SMTP_PID
PV_TEST_SMTP_PASSWORD=$SECRET pv outbox -c pv.lua retry
assert_eq "4 mails pending again" "$OUT" "'outbox retry' (all)"
PV_TEST_SMTP_PASSWORD=$SECRET pv ingest -c pv.lua "$FEEDS/labs.csv"
cat "$T/.err" >up.err
assert_match '^e-mail: 4 sent$' "$(printf '%s\n' "$OUT" | grep '^e-mail')" "delivered with username + password_env set"
check_wait "[ \$(mail_count mail) = 4 ]" 5 "4 mails arrive"
PV_TEST_SMTP_PASSWORD=$SECRET pv outbox -c pv.lua list
printf '%s\n%s\n' "$OUT" "$ERR" >list.out
# password_file
printf '%s\n' "$SECRET" >secret.txt
write_config pv2.lua "$(email_config "$P7" 'to = { "ops@example.org" }, username = "pvuser", password_file = "secret.txt", insecure = true, timeout = 2, max_attempts = 1')"
sed -i 's/pv\.db/pv2.db/; s/alerts\.jsonl/alerts2.jsonl/' pv2.lua
pv ingest -c pv2.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
cat "$T/.err" >file.err
assert_match '^e-mail: 4 sent$' "$(printf '%s\n' "$OUT" | grep '^e-mail')" "delivered with password_file"
# An unset variable: a clear error naming the variable, not a value.
pv ingest -c pv.lua "$FEEDS/labs.csv"
assert_ne 0 "$RC" "an unset password_env is an error"
assert_match 'PV_TEST_SMTP_PASSWORD' "$ERR" "the error names the variable"
for f in down.err up.err file.err list.out alerts.jsonl alerts2.jsonl; do
    assert_eq 0 "$(grep -c -F -- "$SECRET" "$f")" "the password is not in $f"
done
assert_eq 0 "$(grep -rlF -- "$SECRET" mail | wc -l | tr -d ' ')" "the password is in no mail"
assert_eq 0 "$(q "SELECT count(*) FROM outbox WHERE instr(payload, '$SECRET') OR instr(coalesce(last_error, ''), '$SECRET')")" \
    "the password is not in the outbox"
assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE instr(coalesce(detail, ''), '$SECRET')")" "the password is in no alert"
smtp_stop "$S7_PID" "$P7"
cd "$T" || exit 1

finish
