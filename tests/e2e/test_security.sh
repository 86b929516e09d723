#!/usr/bin/env bash
# End to end: security basics (issue 6, "Security basics").
#
#   1. File modes under umask 000: the database (and its -wal and -shm)
#      0600, the alert log 0640, the email.dir directory 0750 and its .eml
#      files 0640, the inbox's processed/ and rejected/ 0750, and no file
#      pvwatch creates is readable or writable by others.
#   2. No patient names in logs or mail: a Synthea patients CSV (FIRST,
#      LAST: the shared corpus file plus one patient of ours who gets an
#      alert) and HL7 messages with a PID-5 name (one stored, one answered
#      AE, one malformed) go through 'pvwatch run'; the names must not be
#      in pvwatch's stdout/stderr, the alert log, the alerts, alert_actions
#      and outbox tables, the .eml files, the inbox's .error files or
#      'pvwatch alerts list/show'. (The raw HL7 message is kept in
#      messages.raw by design: the store is the record.)
#   3. 'pvwatch check' warns when mllp.listen is not loopback (0.0.0.0,
#      [::], a LAN address) and is quiet for 127.0.0.1, localhost, [::1]
#      and the default; 'pvwatch run' prints the same warning.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SYNTHEA=$PV_SHARED_DIR/corpus/csv/synthea_patients.csv
FIRST=Zebulonix
LAST=Quarmbyworth
HL7_FIRST=Ottolinea
HL7_LAST=Marzipanova
AE_FIRST=Fennimorex
AE_LAST=Brackenthwaite

# mode FILE: its permission bits in octal (e.g. 640).
mode() {
    stat -c %a "$1" 2>/dev/null || echo missing
}

# ---------------------------------------------------------------------------
section "pvwatch run under umask 000"
umask 000
mkdir -p plugins
cp "$PV_SOURCE_DIR/plugins/cytopenia.lua" plugins/
CFG_PLUGINS=$T/plugins write_config pv.lua 'email = { dir = "outbox", min_severity = "low" }'
start_pv pv run -c pv.lua
expect_running pv
PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
assert_match '^[0-9]+$' "$PORT" "pvwatch names its MLLP port"

# ---------------------------------------------------------------------------
section "patients with names: Synthea CSV and HL7 PID-5"
# The names to look for: every FIRST and LAST of the shared Synthea file,
# and ours.
"$PYTHON" - "$SYNTHEA" >names.txt <<'EOF'
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        for k in ("FIRST", "LAST", "MAIDEN"):
            if row.get(k):
                print(row[k])
EOF
printf '%s\n' "$FIRST" "$LAST" "$HL7_FIRST" "$HL7_LAST" "$AE_FIRST" "$AE_LAST" >>names.txt
assert_eq True "$([ "$(wc -l <names.txt)" -gt 40 ] && echo True)" "names to look for: $(wc -l <names.txt | tr -d ' ')"

# Our patient in Synthea's format (with a name), then an exposure and a lab
# that raise an alert for him, and one for the HL7 patient.
{
    head -n 1 "$SYNTHEA"
    echo "SEC-1,1960-05-01,,999-99-9999,S99999999,X99999999X,Mr.,$FIRST,$LAST,,,M,white,nonhispanic,M,Nowhere  Massachusetts  US,1 Secret Lane,Boston,Massachusetts,Suffolk County,02101,42.3,-71.0,1000.0,100.0"
} >sec_patients.csv
printf 'patient_id,drug,start,dose,dose_unit\nSEC-1,baricitinib,2026-01-01,2,mg\nSEC-2,baricitinib,2026-01-01,2,mg\n' >sec_meds.csv
printf 'patient_id,code,value,unit,observed_at\nSEC-1,751-8,0.4,10*9/L,2026-02-01T09:00:00Z\n' >sec_labs.csv
# A patients file with a bad row that carries a name: its .error file
# must not repeat the name.
{
    head -n 1 "$SYNTHEA"
    echo "SEC-3,not-a-date,,999-99-9998,,,,$FIRST,$LAST,,,,white,nonhispanic,M,Nowhere,2 Secret Lane,Boston,Massachusetts,Suffolk County,02101,42.3,-71.0,1.0,1.0"
} >sec_bad_patients.csv
for f in "$SYNTHEA" sec_patients.csv sec_meds.csv sec_labs.csv sec_bad_patients.csv; do
    b=$(basename "$f")
    cp "$f" "inbox/.$b"
    mv "inbox/.$b" "inbox/$b"
    check_wait "[ -e inbox/processed/$b ] || [ -e inbox/rejected/$b ]" 15 "$b is taken from the inbox"
done
assert_file inbox/processed/synthea_patients.csv "the Synthea patients file is accepted"
assert_eq "1960-05-01|M" "$(q "SELECT birth_date, sex FROM patients WHERE id = 'SEC-1'")" \
    "the patient is stored with birth date and sex only"

{
    printf 'MSH|^~\\&|SEC|LAB|PVWATCH|PV|20260301120000||ORU^R01|SEC-HL7-1|P|2.5.1\r'
    printf 'PID|1||SEC-2^^^E2E^MR||%s^%s^Q||19650202|F|||3 Secret Street^^Boston^MA^02101\r' "$HL7_LAST" "$HL7_FIRST"
    printf 'NK1|1|%s^Relative|SPO\r' "$HL7_LAST"
    printf 'OBR|1|ORD-SEC-1||57021-8^CBC^LN|||20260301100000\r'
    printf 'OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|1.5-7.0|LL|||F|||20260301100000\r'
    printf 'NTE|1||Patient %s %s seen in clinic\r' "$HL7_FIRST" "$HL7_LAST"
} >sec1.hl7
{
    printf 'MSH|^~\\&|SEC|LAB|PVWATCH|PV|20260301120000||ORU^R01|SEC-HL7-2|P|2.5.1\r'
    printf 'PID|1||||%s^%s\r' "$AE_LAST" "$AE_FIRST"
    printf 'OBR|1|||751-8^ANC^LN|||20260301100000\r'
    printf 'OBX|1|NM|751-8^ANC^LN||0.3|10*9/L|||||F\r'
} >sec2.hl7
{
    printf 'MSH|^~\\&|SEC|LAB|PVWATCH|PV|20260301120000||ORU^R01|SEC-HL7-3|P|2.5.1\r'
    printf 'PID|1||SEC-4||%s^%s\r' "$AE_LAST" "$AE_FIRST"
    printf 'obx|1|NM|751-8^ANC^LN||0.3|10*9/L\r'
} >sec3.hl7
timeout 60 "$PVWATCH" send "127.0.0.1:$PORT" sec1.hl7 sec2.hl7 sec3.hl7 >send.out 2>send.err
assert_eq "AA AE AR" "$(sed -n 's/^[^ ]*: \(A[AER]\) .*/\1/p' send.out | tr '\n' ' ' | sed 's/ $//')" \
    "the HL7 messages: AA, AE (no PID-3), AR (malformed)"
check_wait "[ \"\$(q \"SELECT count(*) FROM alerts WHERE patient_id IN ('SEC-1', 'SEC-2') AND rule = 'baricitinib.neutropenia'\")\" = 2 ]" 10 \
    "both named patients have an alert"
check_wait "[ \$(find outbox -name '*.eml' | wc -l) -ge 2 ]" 10 "their mails are written to email.dir"
pv alerts list -c pv.lua --json
echo "$OUT" >alerts_list.json
for id in $(q "SELECT id FROM alerts"); do
    pv alerts show -c pv.lua "$id"
    echo "$OUT" >>alerts_show.txt
done
stop_pv "$PV_PID" 15
assert_eq 0 "$STOP_RC" "pvwatch stops with status 0"

# ---------------------------------------------------------------------------
section "no patient names in logs, alerts, outbox or mail"
# find_names LABEL FILE...: the names found in the files, as "name(file)".
find_names() {
    local label=$1 f hits=""
    shift
    for f in "$@"; do
        [ -e "$f" ] || continue
        local h
        h=$(grep -oFf names.txt "$f" 2>/dev/null | sort -u | tr '\n' ' ')
        [ -n "$h" ] && hits="$hits $h($(basename "$f"))"
    done
    assert_eq "" "$hits" "$label: no patient name"
}
find_names "pvwatch stderr and stdout" pv.err pv.out
find_names "the alert log" alerts.jsonl
sqlite3 pv.db '.mode line' 'SELECT * FROM alerts' >db_alerts.txt
sqlite3 pv.db '.mode line' 'SELECT * FROM alert_actions' >db_actions.txt
sqlite3 pv.db '.mode line' 'SELECT * FROM outbox' >db_outbox.txt
sqlite3 pv.db '.mode line' 'SELECT * FROM patients' >db_patients.txt
sqlite3 pv.db '.mode line' 'SELECT id, source, control_id, type, name, status, error FROM messages' >db_messages.txt
find_names "the alerts table" db_alerts.txt
find_names "alert_actions" db_actions.txt
find_names "the outbox table" db_outbox.txt
find_names "the patients table" db_patients.txt
find_names "messages (but raw)" db_messages.txt
find_names "the .eml files" outbox/*.eml
find_names "the inbox's .error files" inbox/rejected/*.error
find_names "'pvwatch alerts list --json' and 'show'" alerts_list.json alerts_show.txt
find_names "'pvwatch send' output" send.out send.err
assert_eq 2 "$(grep -l 'SEC-[12]' outbox/*.eml | wc -l | tr -d ' ')" \
    "(control: the mails name the patients by id)"
assert_match "$HL7_LAST" "$(sqlite3 pv.db "SELECT CAST(raw AS TEXT) FROM messages WHERE control_id = 'SEC-HL7-1'")" \
    "(control: the search would find a name: messages.raw keeps the HL7 message as received)"

# ---------------------------------------------------------------------------
section "file modes under umask 000"
assert_eq 600 "$(mode pv.db)" "the database is created 0600"
for f in pv.db-wal pv.db-shm; do
    if [ -e "$f" ]; then
        assert_eq 600 "$(mode "$f")" "$f 0600 (SQLite copies the database's mode)"
    fi
done
assert_eq 640 "$(mode alerts.jsonl)" "the alert log is created 0640"
assert_eq 750 "$(mode outbox)" "email.dir is created 0750"
eml_modes=$(for f in outbox/*.eml; do mode "$f"; done | sort -u | tr '\n' ' ' | sed 's/ $//')
assert_eq 640 "$eml_modes" "the .eml files are created 0640"
assert_eq "750 750" "$(mode inbox/processed) $(mode inbox/rejected)" "inbox/processed and inbox/rejected are created 0750"
# Nothing pvwatch created may be readable or writable by others (the
# inputs dropped into the inbox keep the modes their writer gave them).
others=$(find . -newer pv.lua \( -perm -o+r -o -perm -o+w \) \
    ! -path './inbox/processed/*.csv' ! -path './inbox/rejected/*.csv' ! -path './*.csv' \
    ! -name '*.error' ! -name '*.hl7' ! -name '*.txt' ! -name '*.json' ! -name '*.out' ! -name '*.err' ! -name '.*' \
    ! -path './plugins*' ! -path './names.txt' ! -path '.' -printf '%p:%m ' 2>/dev/null)
assert_eq "" "$others" "no file or directory pvwatch created is open to others"
# The inbox's NAME.error files list rejected lines ("FILE:LINE: reason"):
# a log like the others.
err_modes=$(for f in inbox/rejected/*.error; do mode "$f"; done | sort -u | tr '\n' ' ' | sed 's/ $//')
assert_eq 640 "$err_modes" "inbox/rejected/NAME.error files are created 0640"

# ---------------------------------------------------------------------------
section "pvwatch check warns when MLLP listens beyond loopback"
umask 077
# check_listen ADDR: 'pvwatch check' of a configuration whose mllp.listen
# is ADDR (none: the built-in default, 127.0.0.1:2575).
check_listen() {
    {
        echo 'plugins = { "plugins" }'
        [ -n "$1" ] && echo "mllp = { listen = \"$1\" }"
    } >listen.lua
    pv check -c listen.lua
}
for addr in 0.0.0.0:2575 "[::]:2575" 192.168.1.10:2575; do
    check_listen "$addr"
    assert_eq 0 "$RC" "check with $addr: still exit 0 (a warning, not an error)"
    esc=$(printf '%s' "$addr" | sed 's/[].[]/\\&/g')
    assert_match "mllp.listen '$esc' accepts connections from other machines" "$ERR" "check with $addr: warns"
done
for addr in 127.0.0.1:2575 localhost:2575 "[::1]:2575" ""; do
    check_listen "$addr"
    assert_eq 0 "$RC" "check with ${addr:-the default}: exit 0"
    assert_no_match 'accepts connections from other machines|warning' "$ERR" "check with ${addr:-the default}: no warning"
done
# 'pvwatch run' prints the same warning (checked without opening a port
# beyond loopback: an address no interface has makes it stop at once).
mkdir -p lan
printf 'database = "pv.db"\nalert_log = "alerts.jsonl"\nplugins = { "%s" }\nmllp = { listen = "192.0.2.1:2575" }\n' \
    "$T/plugins" >lan/pv.lua
(cd lan && timeout 20 "$PVWATCH" run -c pv.lua) >run_lan.out 2>run_lan.err
assert_ne 0 "$?" "run on an address this host does not have fails"
assert_match "192.0.2.1:2575' accepts connections from other machines" "$(cat run_lan.err)" "pvwatch run warns too"

finish
