#!/usr/bin/env bash
# Issue 21 part 1: routes must not drop mail.
#   1. every documented `email = {...}` example (docs/*.md, examples/*,
#      README.md) is loaded with 'pvwatch check', and the routing table it
#      prints is compared with the table of expected recipients below; an
#      example without an expected table fails (add one).
#   2. issue21_part1_docs_example_routes: the docs/operations.md example,
#      pointed at a real aiosmtpd, mails what the table says: every alert
#      at or above min_severity reaches email.to (grade 3 neutropenia and
#      an engine alert included), critical ones also reach on-call.
#   3. exclusive routes, an address in two lists (one mail), a warning for
#      a severity that reaches nobody, and 'continue' refused with a hint.
#   4. 'pvwatch outbox list' shows each row's recipients.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FEEDS=$PV_SOURCE_DIR/examples/feeds

# shellcheck source=tests/e2e/smtp.sh
. "$(dirname "${BASH_SOURCE[0]}")/smtp.sh"

# routes CONFIG: the routing table of 'pvwatch check' as SIGNAL|SEVERITY|RCPTS
# lines, sorted.
routes() {
    "$PVWATCH" check -c "$1" >"$T/.chk" 2>"$T/.chkerr"
    RC=$?
    sed -n '/^e-mail routing/,$p' "$T/.chk" | tail -n +3 |
        sed -E 's/^  ([^ ]+) +([a-z]+) +(.*)$/\1|\2|\3/; s/\|\(not mailed: below email\.min_severity\)$/|-/' |
        LC_ALL=C sort
}

# The expected tables, by FILE#N (the Nth email example of FILE). "-" is
# "(not mailed: below email.min_severity)".
declare -A WANT
WANT["docs/operations.md#1"]="*|critical|oncall@example.org
*|critical|safety@example.org
*|high|safety@example.org
*|low|-
*|medium|safety@example.org"
WANT["docs/operations.md#3"]="*|critical|oncall@example.org
*|critical|safety@example.org
*|high|safety@example.org
*|low|-
*|medium|safety@example.org
hepatic|critical|liver@example.org
hepatic|high|liver@example.org
hepatic|low|-
hepatic|medium|liver@example.org"
DIR_ONLY="*|critical|safety-officer@localhost
*|high|safety-officer@localhost
*|low|-
*|medium|safety-officer@localhost"
WANT["docs/operations.md#2"]=$DIR_ONLY
WANT["README.md#1"]=$DIR_ONLY
WANT["examples/README.md#1"]=$DIR_ONLY
WANT["examples/demo.sh#1"]=$DIR_ONLY

# ===========================================================================
section "1. every documented email example routes as expected"
"$PYTHON" - "$PV_SOURCE_DIR" >examples.tsv <<'PYEOF' || fail "cannot extract the examples"
import glob, os, re, sys
root = sys.argv[1]
files = []
for pat in ("docs/*.md", "examples/*.lua", "examples/*.md", "examples/*.sh", "README.md"):
    files += sorted(glob.glob(os.path.join(root, pat)))
for f in files:
    text = open(f, encoding="utf-8").read()
    rel = os.path.relpath(f, root)
    n = 0
    for m in re.finditer(r"(?<![A-Za-z_.])email\s*=\s*\{", text):
        i, depth, q = m.end(), 1, None
        while i < len(text) and depth:
            c = text[i]
            if q:
                if c == "\\":
                    i += 1
                elif c == q:
                    q = None
            elif c in "\"'":
                q = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        if depth:
            continue
        n += 1
        line = text.count("\n", 0, m.start()) + 1
        print("%s#%d\t%d\t%s" % (rel, n, line, text[m.start():i].replace("\n", "\\n")))
PYEOF
nex=0
while IFS=$'\t' read -r key line body; do
    nex=$((nex + 1))
    d="ex$nex"
    mkdir -p "$d/plugins"
    cp "$PV_SOURCE_DIR/plugins/cytopenia.lua" "$d/plugins/"
    {
        printf 'plugins = { "plugins" }\nscripts = { "%s/scripts" }\n' "$PV_SOURCE_DIR"
        printf '%b\n' "${body//\\\\/\\\\\\\\}"
    } >"$d/pv.lua"
    got=$(routes "$d/pv.lua")
    if [ "$RC" != 0 ]; then
        fail "$key (line $line): 'pvwatch check' exits $RC: $(cat "$T/.chkerr")"
        continue
    fi
    if [ -z "${WANT[$key]+x}" ]; then
        fail "$key (line $line): no expected routing table in test_mail_routes.sh; it routes:
$got"
        continue
    fi
    assert_eq "${WANT[$key]}" "$got" "$key (line $line): routing table"
    assert_eq "" "$(grep 'reach nobody' "$T/.chkerr")" "$key: no severity reaches nobody"
done <examples.tsv
assert_eq 6 "$nex" "the email examples found (docs/operations.md 3, README 1, examples 2)"

# ===========================================================================
section "2. issue21_part1_docs_example_routes: the operations.md example, for real"
mkdir s2 && cd s2 || exit 1
P=$(free_port)
smtp_start "$P" "$T/s2/mail"
S_PID=$SMTP_PID
mkdir plugins
cp "$PV_SOURCE_DIR/plugins/cytopenia.lua" plugins/
# A rule that fails on every ANC: an engine alert (high) per patient.
cat >plugins/broken.lua <<'LUA'
return pv.rule {
  name = "test.broken",
  signal = "test",
  description = "fails",
  on = { lab = "neutrophils" },
  when = function() error("broken on purpose") end,
}
LUA
body=$(awk -F'\t' '$1 == "docs/operations.md#1" { print $3 }' ../examples.tsv)
CFG_PLUGINS=$T/s2/plugins write_config pv.lua "$(printf '%b' "$body")
-- the example, pointed at the test server (no TLS there, so no password)
email.url = \"smtp://127.0.0.1:$P\"
email.tls = nil
email.username = nil
email.password_env = nil
email.digest_interval = nil"
pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
assert_eq 0 "$RC" "ingest exits 0 ($ERR)"
# aiosmtpd's Mailbox adds X-RcptTo (the envelope) to each message.
rc_of() {
    grep -h '^X-RcptTo:' mail/new/* | sed 's/^X-RcptTo: //; s/\r$//' | LC_ALL=C sort | uniq -c |
        awk '{ print $2 "=" $1 }' | tr '\n' ' '
}
# Alerts: PV-001 medium then high (escalated), PV-003 critical, PV-005 high
# (cytopenia), and an engine alert (test.broken, high) per patient with an
# ANC: safety@ gets every event, oncall@ the critical one.
NENG=$(q "SELECT count(*) FROM alerts WHERE signal = 'engine'")
assert_match '^[1-9][0-9]*$' "$NENG" "engine alerts were raised"
assert_eq 4 "$(q "SELECT count(*) FROM alerts a JOIN alert_actions x ON x.alert_id = a.id WHERE x.action IN ('opened','escalated') AND a.signal = 'cytopenia'")" \
    "4 cytopenia alert events"
NEV=$((NENG + 4))
check_wait "[ \$(find mail/new -type f | wc -l) -ge $((NEV + 1)) ]" 10 "all $((NEV + 1)) mails arrive"
assert_eq "oncall@example.org=1 safety@example.org=$NEV " "$(rc_of)" "recipients of the mails"
assert_eq "$NENG" "$(grep -l '^X-RcptTo: safety@example.org' mail/new/* | xargs grep -l 'Signal:    engine' | wc -l | tr -d ' ')" \
    "every engine alert reaches email.to"
assert_eq 1 "$(grep -l '^X-RcptTo: safety@example.org' mail/new/* | xargs grep -l 'Signal:    cytopenia' | xargs grep -l 'Patient:   PV-005' | wc -l | tr -d ' ')" \
    "the grade 3 neutropenia of PV-005 reaches email.to"

section "4. 'pvwatch outbox list' shows the recipients of each row"
pv outbox -c pv.lua list
assert_eq 0 "$RC" "outbox list exits 0 ($ERR)"
assert_eq "$NEV" "$(grep -c ' email  to safety@example.org$' <<<"$OUT")" "a row to safety@ per event"
assert_eq 1 "$(grep -c ' email  to oncall@example.org$' <<<"$OUT")" "1 row to oncall@"
assert_match 'VIA +TO / LAST ERROR' "$(head -1 <<<"$OUT")" "the header names the column"
kill -TERM "$S_PID" 2>/dev/null
wait "$S_PID" 2>/dev/null
cd "$T" || exit 1

# ===========================================================================
section "3. exclusive, overlapping lists, nobody, continue"
mkdir s3 && cd s3 || exit 1
mkdir plugins
cp "$PV_SOURCE_DIR/plugins/cytopenia.lua" plugins/
CFG_PLUGINS=$T/s3/plugins write_config pv.lua 'email = { dir = "out", to = { "all@example.org" },
  routes = {
    { to = { "cyto@example.org", "all@example.org" }, signals = { "cytopenia" } },
    { to = { "crit@example.org" }, min_severity = "critical", signals = { "cytopenia" }, exclusive = true },
  } }'
got=$(routes pv.lua | grep '^cytopenia' | tr '\n' ';')
assert_eq "cytopenia|critical|crit@example.org;cytopenia|high|all@example.org;cytopenia|high|cyto@example.org;cytopenia|low|-;cytopenia|medium|all@example.org;cytopenia|medium|cyto@example.org;" \
    "$got" "exclusive takes critical alone; all@ once per event"
pv ingest -c pv.lua "$FEEDS/medications.csv" "$FEEDS/labs.csv"
assert_eq 0 "$RC" "ingest exits 0 ($ERR)"
assert_eq "all@example.org|3 crit@example.org|1 cyto@example.org|3" \
    "$(q "SELECT substr(channel, 7), count(*) FROM outbox GROUP BY channel ORDER BY 1" | tr '\n' ' ' | sed 's/ $//')" \
    "outbox rows: all@ and cyto@ for the 3 non-critical events, crit@ alone for the critical"

write_config nobody.lua 'email = { url = "smtp://127.0.0.1:1", routes = { { to = { "liver@example.org" }, signals = { "hepatic" } } } }'
routes nobody.lua >/dev/null
assert_eq 0 "$RC" "routes without email.to: check passes ($(cat "$T/.chkerr"))"
assert_match 'high alerts of other signals reach nobody' "$(cat "$T/.chkerr")" "check warns: other signals reach nobody"
assert_match 'medium alerts of other signals reach nobody' "$(cat "$T/.chkerr")" "... at medium too"

write_config cont.lua 'email = { dir = "out", routes = { { to = { "x@example.org" }, continue = false } } }'
pv check -c cont.lua
assert_eq 2 "$RC" "'continue' is a configuration error"
assert_match 'exclusive = true' "$ERR" "the error says what to write instead"
write_config bad.lua 'email = { dir = "out", to = { "a@example.org\r\nBcc: evil@example.org" } }'
pv check -c bad.lua
assert_eq 2 "$RC" "an address with CR LF is a configuration error"
assert_match "email.to .* is not an address" "$ERR" "named as such"
cd "$T" || exit 1

finish
