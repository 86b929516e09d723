#!/usr/bin/env bash
# Issue 22 item 14: feed text cannot forge mail. A rule copies a lab's
# unit (CR/LF and lone dots from a quoted CSV field, and from an HL7
# \X0D0A\ escape) into the title, detail and action, with a 2 MiB title.
# What a real SMTP server (aiosmtpd, tests/e2e/smtp_raw.py keeps the DATA
# as it decoded it) received is checked byte for byte:
#   - it equals the message pvwatch queued (so curl's dot-stuffing is
#     right: neither cut short by a lone '.' nor doubled), for every mail
#   - CRLF line ends only, no line over 998 octets, no line that is '.',
#     only pvwatch's own header fields, no extra envelope recipient
#   - the subject is at most 200 characters and keeps the patient id; the
#     mail is small (the 2 MiB title is cut, saying how much)
#   - the feed's CR/LF appear escaped (\r \n), not as line breaks
#   - the same for an email.dir .eml file
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

E2E_DIR=$PV_SOURCE_DIR/tests/e2e
# shellcheck source=tests/e2e/smtp.sh
. "$(dirname "${BASH_SOURCE[0]}")/smtp.sh"

mkdir -p plugins raw
cat >plugins/hostile.lua <<'LUA'
return pv.rule {
  name = "test.hostile",
  signal = "hostile",
  description = "puts feed text into every field",
  on = { lab = "neutrophils" },
  when = function(obs)
    local unit = obs.unit or ""
    return pv.alert {
      severity = "high",
      title = "Odd unit " .. unit .. " " .. string.rep("T", 2 * 1024 * 1024),
      detail = "unit was: " .. unit .. "\n.\nline three\r.\r\nline five",
      action = "first\r\n.\r\nQUIT",
      key = "hostile",
      evidence = { obs },
    }
  end,
}
LUA
# A quoted CSV unit with CRLF, a lone dot, SMTP commands and a header.
printf 'patient_id,code,value,unit,observed_at\r\nP-CSV,751-8,0.4,"10*9/L\r\n.\r\nRCPT TO:<evil@example.org>\r\nSubject: forged\n.\nX\r.\r\nBcc: evil@example.org",2026-03-01T09:00:00Z\r\n' >labs.csv
# An HL7 unit with \X0D0A\ (CR LF) escapes.
printf 'MSH|^~\\&|LAB|HOSP|PV|PV|20260301090000||ORU^R01^ORU_R01|HOST0001|P|2.5.1\rPID|1||P-HL7^^^HOSP^MR\rOBR|1|ORD1||58410-2^CBC^LN|||20260301090000\rOBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L\\X0D0A\\.\\X0D0A\\Bcc: evil@example.org\\X0D0A\\|2.0-7.5|LL|||F|||20260301090000\r' >hostile.hl7

P=$(free_port)
SMTP_RAW_DIR=$T/raw PYTHONPATH=$E2E_DIR "$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$P" \
    -c smtp_raw.Raw >smtp.log 2>&1 &
S_PID=$!
BG_PIDS+=("$S_PID")
wait_for "port_open $P" 10 || {
    cat smtp.log >&2
    exit 1
}

section "issue22_item14_feed_text_in_mail: what the SMTP server received"
CFG_PLUGINS=$T/plugins write_config pv.lua "email = { url = \"smtp://127.0.0.1:$P\", from = \"pvwatch@example.org\", to = { \"ops@example.org\" }, timeout = 10 }"
pv ingest -c pv.lua labs.csv hostile.hl7
assert_eq 0 "$RC" "ingest exits 0 ($ERR)"
assert_eq 2 "$(q "SELECT count(*) FROM alerts WHERE rule = 'test.hostile'")" "2 alerts (CSV and HL7)"
assert_match '^e-mail: 2 sent$' "$(grep '^e-mail' <<<"$OUT")" "2 mails sent"
check_wait "[ \$(find raw -name '*.eml' | wc -l) = 2 ]" 10 "2 mails arrive"
# The queued messages, as pvwatch handed them to curl.
"$PYTHON" - pv.db queued <<'PYEOF'
import os, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
os.makedirs(sys.argv[2], exist_ok=True)
for a, p in con.execute("SELECT alert_id, payload FROM outbox ORDER BY id"):
    open(os.path.join(sys.argv[2], "alert-%d.eml" % a), "wb").write(p.encode() if isinstance(p, str) else p)
PYEOF
# check_mail FILE: prints one line per problem found (nothing when clean).
check_mail() {
    "$PYTHON" - "$1" <<'PYEOF'
import email, email.policy, re, sys
raw = open(sys.argv[1], "rb").read()
bad = []
if re.search(rb"\r(?!\n)|(?<!\r)\n", raw):
    bad.append("a bare CR or LF")
lines = raw.split(b"\r\n")
if max(len(l) for l in lines) > 998:
    bad.append("a line over 998 octets (%d)" % max(len(l) for l in lines))
if any(l == b"." for l in lines):
    bad.append("a line that is a lone dot")
if len(raw) > 64 * 1024:
    bad.append("%d bytes (the 2 MiB title was not cut)" % len(raw))
head, _, body = raw.partition(b"\r\n\r\n")
names = [l.split(b":", 1)[0].decode() for l in head.split(b"\r\n") if l and l[:1] not in b" \t"]
want = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
        "Content-Transfer-Encoding", "X-Pvwatch-Alert", "X-Pvwatch-Event"]
if names != want:
    bad.append("header fields %s" % names)
for l in body.split(b"\r\n"):
    if re.match(rb"(Bcc|Subject|RCPT|QUIT|\.)", l):
        bad.append("a forged body line %r" % l[:60])
m = email.message_from_bytes(raw, policy=email.policy.default)
subj = str(m["Subject"])
if len(subj) > 200:
    bad.append("a subject of %d characters" % len(subj))
if not re.search(r"\u2026 \u2014 patient P-(CSV|HL7)$", subj):
    bad.append("subject does not end with the ellipsis and the patient: %r" % subj[-60:])
if m["To"] != "ops@example.org":
    bad.append("To: %r" % m["To"])
text = body.decode("utf-8")
if "\\r\\n" not in text and "\\n" not in text:
    bad.append("the feed's line breaks are not shown escaped")
if not re.search(r"\(\d+ more bytes\)", text):
    bad.append("the cut title does not say how much was left out")
print("\n".join(bad))
PYEOF
}
for f in raw/*.eml; do
    n=$(basename "$f")
    assert_eq "" "$(check_mail "$f")" "received $n is clean"
    a=$(grep -a -m1 '^X-Pvwatch-Alert: ' "$f" | tr -dc 0-9)
    if cmp -s "$f" "queued/alert-$a.eml"; then
        pass
    else
        fail "received $n differs from what pvwatch queued for alert $a (dot-stuffing?)"
    fi
    assert_eq "ops@example.org" "$(cat "${f%.eml}.rcpt")" "envelope recipients of $n"
done
assert_match 'RCPT TO:<evil@example\.org>' "$(cat raw/*.eml | tr -d '\r')" "the CSV text is there, as text"
assert_match '\\r\\n\.\\r\\nRCPT' "$(cat raw/*.eml)" "... with its CR LF escaped"
assert_match '10\*9/L\\r\\n\.\\r\\nBcc: evil@example\.org\\r\\n at ' "$(cat raw/*.eml)" "the HL7 \\X0D0A\\ arrives escaped"
# A rule's detail and action are one line each: their line breaks (which
# may be the feed's) are shown escaped too.
assert_match 'unit was: 10\*9/L\\r\\n\.\\r\\nRCPT.*\\n\.\\nline three\\r\.\\r\\nline five' "$(cat raw/*.eml)" \
    "detail: on one line, escaped"
assert_match $'\r\n  first\\\\r\\\\n\\.\\\\r\\\\nQUIT\r\n' "$(cat raw/*.eml)" "action: on one line, escaped"
kill -TERM "$S_PID" 2>/dev/null
wait "$S_PID" 2>/dev/null

section "issue22_item14_feed_text_in_eml: the same in an email.dir file"
mkdir d && cd d || exit 1
CFG_PLUGINS=$T/plugins write_config pv.lua 'email = { dir = "out" }'
pv ingest -c pv.lua ../labs.csv
assert_eq 0 "$RC" "ingest exits 0 ($ERR)"
assert_eq 1 "$(find out -name '*.eml' | wc -l | tr -d ' ')" "one .eml"
for f in out/*.eml; do
    assert_eq "" "$(check_mail "$f" | grep -v '^To: ')" "$f is clean"
done
cd "$T" || exit 1

finish
