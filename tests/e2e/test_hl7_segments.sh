#!/usr/bin/env bash
# End to end: one bad HL7 segment is not the whole message (issue 15 item 5)
# and an OBX-14 that is not a valid, plausible time rejects the segment, not
# quietly another time (issue 22 item 15). As a file ('pvwatch ingest') and
# over MLLP ('pvwatch send' to 'pvwatch run'): stored rows, alerts, messages
# rows and ACK contents (AA with ERR severity W naming each skipped segment,
# AE when nothing usable remained).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RULE=baricitinib.neutropenia

# oru FILE CONTROL PATIENT OBX...: writes one ORU^R01 with the given OBX
# segments (segments end with CR, as over MLLP).
oru() {
    local file=$1 ctl=$2 pat=$3
    shift 3
    {
        printf 'MSH|^~\\&|LAB|HOSP|PV|PV|20261201080000||ORU^R01^ORU_R01|%s|P|2.5.1\r' "$ctl"
        printf 'PID|1||%s^^^HOSP^MR||Doe^Jane||19700101|F\r' "$pat"
        printf 'OBR|1|PL1|FI1|57021-8^CBC^LN|||20261201070000\r'
        local s
        for s in "$@"; do
            printf '%s\r' "$s"
        done
    } >"$file"
}

# Three bad segments around one good, low ANC (grade 4 with baricitinib).
BAD_SEGS=(
    'OBX|1|NM|718-7^Hemoglobin^LN||13.1|g/dL|||||F|||garbage'
    'OBX|2|NM|751-8^Neutrophils^LN||0.4|10*9/L|||||F|||20261201070000'
    'OBX|3|NM|777-3^Platelets^LN||250|10*9/L|||||F|||99991231000000'
    'OBX|4|NM|^^^||5.0|10*9/L|||||F|||20261201070000'
    'OBX|5|NM|6690-2^WBC^LN||4.0|10*9/L|||||F|||20261231235960'
    'OBX|6|NM|789-8^RBC^LN||4.5|10*12/L|||||F|||00000000'
)

# ack FILE: sends FILE (one message) over a raw MLLP connection to $PORT
# and prints the ACK with CR turned into LF: 'pvwatch send' prints only
# the code and the first error text, the ERR segments are checked here.
cat >ack.py <<'EOF'
import socket, sys
data = open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"\x0b" + data + b"\x1c\x0d")
buf = b""
while b"\x1c\x0d" not in buf:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
s.close()
sys.stdout.write(buf.strip(b"\x0b\x1c\x0d").decode("utf-8", "replace").replace("\r", "\n"))
EOF
ack() {
    "$PYTHON" "$T/ack.py" "$PORT" "$1"
}

meds() {
    printf 'patient_id,drug,start,dose,dose_unit\n%s,baricitinib,2026-11-01,4,mg\n' "$1" >"$1-meds.csv"
    pv ingest -c pv.lua "$1-meds.csv"
}

# ---------------------------------------------------------------------------
section "issue15_item05_bad_segments_skipped_in_a_file"
mkdir file && cd file || exit 1
write_config pv.lua
meds F1
assert_eq 0 "$RC" "the medication file is ingested"
oru f1.hl7 MSGF1 F1 "${BAD_SEGS[@]}"
pv ingest -c pv.lua f1.hl7
assert_eq 3 "$RC" "ingest exits 3: part of the file was rejected"
assert_eq "751-8|0.4|2026-12-01T07:00:00Z" \
    "$(q "SELECT code, value_num, observed_at FROM observations WHERE patient_id='F1'")" \
    "only the good OBX is stored, with its own time"
assert_eq "partial|1|5" \
    "$(q "SELECT status, rows_stored, rows_rejected FROM messages WHERE control_id='MSGF1'")" \
    "the message is kept as partial: 1 stored, 5 skipped"
for want in "OBX-14 at line 4: observation time 'garbage' is not a valid time" \
    "OBX-14 at line 6: observation time '99991231000000' is an impossible time \\(more than a day in the future\\)" \
    "OBX-3 at line 7: observation identifier missing" \
    "OBX-14 at line 8: observation time '20261231235960' is not a valid time" \
    "OBX-14 at line 9: observation time '00000000' is not a valid time"; do
    assert_match "$want" "$ERR" "stderr names the skipped segment: $want"
done
assert_match "$want" "$(q "SELECT error FROM messages WHERE control_id='MSGF1'")" \
    "messages.error keeps the reasons"
assert_eq "1|critical" "$(q "SELECT count(*), severity FROM alerts WHERE patient_id='F1' AND rule='$RULE'")" \
    "the good ANC of the message is judged: one critical neutropenia alert"
cd .. || exit 1

section "issue22_item15_year_before_1850_and_far_future_rejected"
mkdir times && cd times || exit 1
write_config pv.lua
oru t1.hl7 MSGT1 T1 'OBX|1|NM|751-8^Neutrophils^LN||2.0|10*9/L|||||F|||18491231' \
    'OBX|2|NM|751-8^Neutrophils^LN||2.1|10*9/L|||||F|||18500101'
pv ingest -c pv.lua t1.hl7
assert_match "OBX-14 at line 4: observation time '18491231' is an impossible time \(before 1850\)" "$ERR" \
    "a time before 1850 is rejected with its reason"
assert_eq "2.1|1850-01-01T00:00:00Z" "$(q "SELECT value_num, observed_at FROM observations")" \
    "1850-01-01 itself is accepted"
# An invalid OBR-7 is not replaced by MSH-7 either.
{
    printf 'MSH|^~\\&|LAB|HOSP|PV|PV|20261201080000||ORU^R01|MSGT2|P|2.5.1\r'
    printf 'PID|1||T2\r'
    printf 'OBR|1|||57021-8^CBC^LN|||2026133\r'
    printf 'OBX|1|NM|751-8^Neutrophils^LN||2.0|10*9/L|||||F\r'
} >t2.hl7
pv ingest -c pv.lua t2.hl7
assert_match "no OBX-14, and OBR-7 \(line 3\) '2026133' is not a valid time" "$ERR" \
    "an invalid OBR-7 rejects the segment, it is not replaced by MSH-7"
assert_eq 0 "$(q "SELECT count(*) FROM observations WHERE patient_id='T2'")" "nothing stored for T2"
assert_eq "rejected" "$(q "SELECT status FROM messages WHERE control_id='MSGT2'")" \
    "nothing usable remained: the message is rejected (AE)"
# CSV shares the check.
printf 'patient_id,code,value,unit,observed_at\nT3,751-8,2.0,10*9/L,9999-12-31\nT3,751-8,2.2,10*9/L,0000-01-01\nT3,751-8,2.4,10*9/L,2026-11-30\n' >t3.csv
pv ingest -c pv.lua t3.csv
assert_eq 3 "$RC" "the CSV file with impossible times exits 3"
assert_match "t3.csv:2: observed_at '9999-12-31' is an impossible time \(more than a day in the future\)" "$ERR" \
    "a CSV result in 9999 is rejected"
assert_match "t3.csv:3: observed_at '0000-01-01' is an impossible time \(before 1850\)" "$ERR" \
    "a CSV result in year 0000 is rejected"
assert_eq "2.4" "$(q "SELECT value_num FROM observations WHERE patient_id='T3'")" "the good CSV row is stored"
cd .. || exit 1

section "issue15_item01_status_w_not_judged_and_retires"
mkdir status && cd status || exit 1
write_config pv.lua
meds W1
oru w1.hl7 MSGW1 W1 'OBX|1|NM|751-8^Neutrophils^LN||2.0|10*9/L|||||F|||20261201070000'
oru w2.hl7 MSGW2 W1 'OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|||||W|||20261201070000'
pv ingest -c pv.lua w1.hl7 w2.hl7
assert_eq 0 "$RC" "both messages are stored"
assert_eq "2.0|W;0.4|W" "$(q "SELECT value_num, status FROM observations WHERE patient_id='W1' ORDER BY id" | tr '\n' ';' | sed 's/;$//')" \
    "the W result is stored and retires the earlier live result"
assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE patient_id='W1'")" \
    "an ANC of 0.4 with status W raises no alert"
for st in X I R N; do
    oru "x$st.hl7" "MSGX$st" "X$st" "OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|||||$st|||20261201070000"
    meds "X$st"
    pv ingest -c pv.lua "x$st.hl7"
    assert_eq "$st" "$(q "SELECT status FROM observations WHERE patient_id='X$st'")" "status $st is stored"
    assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE patient_id='X$st'")" "status $st is not judged"
done
oru p1.hl7 MSGP1 P1 'OBX|1|NM|751-8^Neutrophils^LN||0.9|10*9/L|||||P|||20261201070000'
oru p2.hl7 MSGP2 P1 'OBX|1|NM|751-8^Neutrophils^LN||0.8|10*9/L|||||F|||20261201070000'
pv ingest -c pv.lua p1.hl7 p2.hl7
assert_eq "0.9|W;0.8|F" "$(q "SELECT value_num, status FROM observations WHERE patient_id='P1' ORDER BY id" | tr '\n' ';' | sed 's/;$//')" \
    "a final replaces the preliminary of the same code and time: one live row, history kept"
cd .. || exit 1

section "issue15_item02_cancelled_order_is_no_exposure"
mkdir orc && cd orc || exit 1
write_config pv.lua
for ctl in CA DC OC CR OD HD; do
    printf 'MSH|^~\\&|PHARM|HOSP|PV|PV|20261101080000||RDE^O11^RDE_O11|RDE%s|P|2.5.1\rPID|1||O%s\rORC|%s|PL%s|FI%s\rRXE|^^^20261101|2047232^baricitinib^RXNORM|4||mg\r' \
        "$ctl" "$ctl" "$ctl" "$ctl" "$ctl" >"rde_$ctl.hl7"
    oru "low_$ctl.hl7" "LOW$ctl" "O$ctl" 'OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|||||F|||20261201070000'
    pv ingest -c pv.lua "rde_$ctl.hl7" "low_$ctl.hl7"
    assert_eq 0 "$RC" "ORC-1 $ctl: both messages accepted"
    assert_eq 0 "$(q "SELECT count(*) FROM exposures WHERE patient_id='O$ctl'")" "ORC-1 $ctl creates no exposure"
    assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE patient_id='O$ctl'")" "ORC-1 $ctl: a later low ANC raises nothing"
done
printf 'MSH|^~\\&|PHARM|HOSP|PV|PV|20261101080000||RDE^O11^RDE_O11|RDENW|P|2.5.1\rPID|1||ONW\rORC|NW|PLNW|FINW\rRXE|^^^20261101|2047232^baricitinib^RXNORM|4||mg\r' >rde_NW.hl7
pv ingest -c pv.lua rde_NW.hl7
assert_eq 1 "$(q "SELECT count(*) FROM exposures WHERE patient_id='ONW'")" "ORC-1 NW (new order) is an exposure"
cd .. || exit 1

section "issue15_item09_utf8_bom_hl7_file"
mkdir bom && cd bom || exit 1
write_config pv.lua
oru plain.hl7 MSGB1 B1 'OBX|1|NM|751-8^Neutrophils^LN||2.0|10*9/L|||||F|||20261201070000'
{ printf '\xef\xbb\xbf'; cat plain.hl7; } >bom.hl7
pv ingest -c pv.lua bom.hl7
assert_eq 0 "$RC" "an HL7 file that starts with a UTF-8 BOM is ingested"
assert_match "hl7: 1 stored" "$OUT" "read as HL7, not CSV"
assert_eq "2.0" "$(q "SELECT value_num FROM observations WHERE patient_id='B1'")" "its result is stored"
mkdir -p inbox
oru plain2.hl7 MSGB2 B2 'OBX|1|NM|751-8^Neutrophils^LN||2.1|10*9/L|||||F|||20261201070000'
{ printf '\xef\xbb\xbf'; cat plain2.hl7; } >inbox/.bom2.tmp
start_pv pv run -c pv.lua
expect_running pv
mv inbox/.bom2.tmp inbox/bom2.hl7
check_wait "[ \"\$(q \"SELECT count(*) FROM observations WHERE patient_id='B2'\")\" = 1 ]" 15 \
    "a BOM HL7 file dropped in the inbox is ingested"
stop_pv
cd .. || exit 1

# ---------------------------------------------------------------------------
section "issue15_item05_bad_segments_over_mllp_ack_aa_with_err_w"
mkdir mllp && cd mllp || exit 1
write_config pv.lua
meds M1
start_pv pv run -c pv.lua
check_wait "grep -q 'MLLP listening on 127.0.0.1:[0-9]' pv.err" 15 "pvwatch names its MLLP port"
PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
if [ -z "$PORT" ]; then
    cat pv.err >&2
    finish
fi
oru m1.hl7 MSGM1 M1 "${BAD_SEGS[@]}"
pv send "127.0.0.1:$PORT" m1.hl7
assert_eq 0 "$RC" "pvwatch send: exit 0, the message got AA"
assert_match "^m1.hl7:1: AA MSGM1 OBX-14 at line 4" "$OUT" "pvwatch send prints AA and the first warning"
oru m1b.hl7 MSGM1B M1 "${BAD_SEGS[@]}"
ack=$(ack m1b.hl7)
assert_match "MSA\|AA\|MSGM1B" "$ack" "the ACK is AA for the message"
assert_match 'ERR\|\|OBX\^1\^14\|102\^Data type error\^HL70357\|W\|\|\|\|OBX-14 at line 4: observation time .garbage. is not a valid time' \
    "$ack" "an ERR of severity W names the first OBX (ERR-2 OBX^1^14)"
assert_match 'ERR\|\|OBX\^4\^3\|102\^Data type error\^HL70357\|W\|\|\|\|OBX-3 at line 7' "$ack" \
    "an ERR names the OBX without OBX-3 (ERR-2 OBX^4^3)"
assert_eq 5 "$(printf '%s\n' "$ack" | grep -c '^ERR|.*|W|')" "one ERR per skipped segment"
assert_eq "751-8|0.4
751-8|0.4" "$(q "SELECT code, value_num FROM observations WHERE patient_id='M1'")" \
    "the good OBX of each message is stored"
check_wait "[ \"\$(q \"SELECT count(*) FROM alerts WHERE patient_id='M1' AND rule='$RULE' AND severity='critical'\")\" = 1 ]" 10 \
    "and judged: a critical neutropenia alert"

oru m2.hl7 MSGM2 M2 'OBX|1|NM|^^^||5.0|10*9/L|||||F|||20261201070000'
pv send "127.0.0.1:$PORT" m2.hl7
assert_eq 1 "$RC" "pvwatch send: exit 1, the message got AE"
oru m2b.hl7 MSGM2B M2 'OBX|1|NM|^^^||5.0|10*9/L|||||F|||20261201070000'
ack=$(ack m2b.hl7)
assert_match "MSA\|AE\|MSGM2B" "$ack" "nothing usable remained: AE"
assert_match "ERR\|\|\|101\^Required field missing\^HL70357\|E\|\|\|\|nothing usable in the message: 1 segment skipped, the first: OBX-3 at line 4" \
    "$ack" "the AE's ERR says why"
assert_eq "rejected" "$(q "SELECT status FROM messages WHERE control_id='MSGM2'")" \
    "the AE message is kept as rejected"

oru m3.hl7 MSGM3 M3 'OBX|1|NM|751-8^Neutrophils^LN||2.0|10*9/L|||||F|||20261201070000'
ack=$(ack m3.hl7)
assert_match "MSA\|AA\|MSGM3" "$ack" "a good message: AA"
assert_no_match "^ERR" "$ack" "and no ERR"
stop_pv
assert_eq 0 "$STOP_RC" "pvwatch run stops cleanly"
cd .. || exit 1

finish
