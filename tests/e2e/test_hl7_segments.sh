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

section "issue15_item02_discontinued_and_replaced_orders"
mkdir orc2 && cd orc2 || exit 1
write_config pv.lua
# rde FILE CTL MSH7 PATIENT ORC [RXE-1 START] [DOSE]: one RDE^O11.
rde() {
    printf 'MSH|^~\\&|PHARM|HOSP|PV|PV|%s||RDE^O11^RDE_O11|%s|P|2.5.1\rPID|1||%s\r%s\rRXE|^^^%s|2047232^baricitinib^RXNORM|%s||mg\r' \
        "$3" "$2" "$4" "$5" "${6:-20261001}" "${7:-4}" >"$1"
}
# DC1: ordered 2026-10-01, discontinued by MSH-7 2026-10-05 (washout ends
# 2026-11-02); DC2 by ORC-9 2026-10-03 and filler number only; KEEP: the
# same order never discontinued; DCX: a DC naming another order.
for p in DC1 DC2 KEEP DCX; do
    rde "nw_$p.hl7" "NW$p" 20261001080000 "$p" "ORC|NW|PL$p|FI$p"
done
rde dc_DC1.hl7 DCDC1 20261005080000 DC1 'ORC|DC|PLDC1'
rde dc_DC2.hl7 DCDC2 20261005080000 DC2 'ORC|DC||FIDC2||||||20261003120000'
rde dc_DCX.hl7 DCDCX 20261005080000 DCX 'ORC|DC|PLOTHER|FIOTHER'
for p in DC1 DC2 KEEP DCX; do
    oru "low_$p.hl7" "LOW$p" "$p" 'OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|||||F|||20261201070000'
done
pv ingest -c pv.lua nw_DC1.hl7 nw_DC2.hl7 nw_KEEP.hl7 nw_DCX.hl7 dc_DC1.hl7 dc_DC2.hl7 dc_DCX.hl7
assert_eq 0 "$RC" "orders and discontinuations accepted ($OUT)"
assert_eq "2026-10-05T08:00:00Z" "$(q "SELECT end_at FROM exposures WHERE patient_id='DC1'")" \
    "DC by placer number ends the exposure at the message time"
assert_eq "2026-10-03T12:00:00Z" "$(q "SELECT end_at FROM exposures WHERE patient_id='DC2'")" \
    "DC by filler number ends it at ORC-9"
assert_eq "" "$(q "SELECT end_at FROM exposures WHERE patient_id='DCX'")" \
    "a DC of another order number ends nothing"
assert_eq "PLKEEP|FIKEEP" "$(q "SELECT placer_order, filler_order FROM exposures WHERE patient_id='KEEP'")" \
    "the order numbers are kept on the exposure row"
pv ingest -c pv.lua low_DC1.hl7 low_DC2.hl7 low_KEEP.hl7 low_DCX.hl7
for p in DC1 DC2; do
    assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE patient_id='$p' AND rule LIKE 'baricitinib.%'")" \
        "$p: a low ANC after the discontinued course and its washout raises no baricitinib alert"
done
for p in KEEP DCX; do
    assert_ne 0 "$(q "SELECT count(*) FROM alerts WHERE patient_id='$p' AND rule LIKE 'baricitinib.%'")" \
        "$p: still exposed, the same low ANC alerts"
done
# XO: the 4 mg order changed to 2 mg from 2026-10-15: one row each.
rde nw_XO.hl7 NWXO 20261001080000 XO1 'ORC|NW|PLXO|FIXO'
rde xo_XO.hl7 XOXO 20261015080000 XO1 'ORC|XO|PLXO|FIXO' 20261015 2
pv ingest -c pv.lua nw_XO.hl7 xo_XO.hl7
assert_eq "4.0|2026-10-01T00:00:00Z|2026-10-15T00:00:00Z;2.0|2026-10-15T00:00:00Z|" \
    "$(q "SELECT dose, start_at, end_at FROM exposures WHERE patient_id='XO1' ORDER BY id" | tr '\n' ';' | sed 's/;$//')" \
    "XO ends the old order where the new one starts; the new one is open"
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


# ---------------------------------------------------------------------------
# orx FILE CONTROL PATIENT PLACER FILLER OBX...: an ORU^R01 whose OBR has
# the given order numbers (issue 15 item 1).
orx() {
    local file=$1 ctl=$2 pat=$3 placer=$4 filler=$5
    shift 5
    {
        printf 'MSH|^~\\&|LAB|HOSP|PV|PV|20261201080000||ORU^R01^ORU_R01|%s|P|2.5.1\r' "$ctl"
        printf 'PID|1||%s^^^HOSP^MR\r' "$pat"
        printf 'OBR|1|%s|%s|57021-8^CBC^LN|||20261201070000\r' "$placer" "$filler"
        local s
        for s in "$@"; do
            printf '%s\r' "$s"
        done
    } >"$file"
}

section "issue15_item01_item06_status_by_order_and_reused_control_ids_over_mllp"
mkdir order && cd order || exit 1
write_config pv.lua
meds R1
start_pv pv run -c pv.lua
check_wait "grep -q 'MLLP listening on 127.0.0.1:[0-9]' pv.err" 15 "pvwatch names its MLLP port"
PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
[ -n "$PORT" ] || finish
# Item 1: preliminary then final of order FI1; a preliminary of another
# order (FI2) of the same code and time stays live; a W of 0.4 raises nothing.
orx r1.hl7 MSGR1 R1 PL1 FI1 'OBX|1|NM|751-8^Neutrophils^LN||1.1|10*9/L|||||P'
orx r2.hl7 MSGR2 R1 PL2 FI2 'OBX|1|NM|751-8^Neutrophils^LN||1.4|10*9/L|||||P'
orx r3.hl7 MSGR3 R1 PL1 FI1 'OBX|1|NM|751-8^Neutrophils^LN||1.2|10*9/L|||||F'
orx r4.hl7 MSGR4 R1 PL2 FI2 'OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|||||W'
for f in r1 r2 r3 r4; do
    assert_match "MSA\|AA\|MSG${f^^}" "$(ack "$f.hl7")" "$f.hl7 is AA"
done
assert_eq "FI1|1.1|W;FI2|1.4|W;FI1|1.2|F;FI2|0.4|W" \
    "$(q "SELECT filler_order, value_num, status FROM observations WHERE patient_id='R1' ORDER BY id" | tr '\n' ';' | sed 's/;$//')" \
    "the final replaces the preliminary of its own order; W retires the other order's"
assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE patient_id='R1' AND severity='critical'")" \
    "the W result of ANC 0.4 raises no critical alert"
# Item 6: a resend is AA; the same control id with other content is AE with
# an ERR and an engine alert, the new message kept as rejected.
assert_match "MSA\|AA\|MSGR3" "$(ack r3.hl7)" "a true resend is AA"
orx r3x.hl7 MSGR3 R1 PL1 FI1 'OBX|1|NM|751-8^Neutrophils^LN||0.2|10*9/L|||||F|||20261201090000'
ackx=$(ack r3x.hl7)
assert_match "MSA\|AE\|MSGR3" "$ackx" "a reused control id with other content is AE"
assert_match "ERR\|\|\|205\^Duplicate key identifier\^HL70357\|E\|\|\|\|control id MSGR3 from LAB.F.HOSP was already used for a message with other content" \
    "$ackx" "the ERR says so"
assert_eq "collision:hl7:LAB|HOSP|rejected" \
    "$(q "SELECT source, status FROM messages WHERE control_id LIKE 'MSGR3#sha256:%'")" \
    "the new message is kept, as rejected"
check_wait "[ \"\$(q \"SELECT count(*) FROM alerts WHERE rule='pvwatch.hl7' AND signal='engine' AND dedup_key='control-id-reuse:LAB|HOSP|MSGR3'\")\" = 1 ]" 10 \
    "an engine alert names the reused control id"
assert_eq 0 "$(q "SELECT count(*) FROM observations WHERE patient_id='R1' AND value_num=0.2")" \
    "its result is not stored"
# Item 2 over MLLP: a discontinued order ends its exposure, XO replaces it.
rde m_nw.hl7 MNW 20261001080000 MO1 'ORC|NW|PLM1|FIM1'
rde m_dc.hl7 MDC 20261005080000 MO1 'ORC|DC|PLM1|FIM1'
rde m_nw2.hl7 MNW2 20261001080000 MO2 'ORC|NW|PLM2'
rde m_xo.hl7 MXO 20261015080000 MO2 'ORC|XO|PLM2' 20261015 2
for f in m_nw m_dc m_nw2 m_xo; do
    assert_match "MSA\|AA\|" "$(ack "$f.hl7")" "$f.hl7 is AA"
done
assert_eq "2026-10-05T08:00:00Z" "$(q "SELECT end_at FROM exposures WHERE patient_id='MO1'")" \
    "over MLLP: DC ends the exposure of its order"
assert_eq "2026-10-15T00:00:00Z|2.0" \
    "$(q "SELECT (SELECT end_at FROM exposures WHERE patient_id='MO2' AND dose=4), (SELECT dose FROM exposures WHERE patient_id='MO2' AND end_at IS NULL)")" \
    "over MLLP: XO ends the old order where the new one starts"
stop_pv
assert_eq 0 "$STOP_RC" "pvwatch run stops cleanly"
# mllp.duplicates = "by_content" stores it as a new message; as a file too.
write_config pv2.lua 'mllp = { listen = "127.0.0.1:0", duplicates = "by_content" }'
pv check -c pv2.lua
assert_eq 0 "$RC" "pvwatch check accepts mllp.duplicates = by_content"
write_config pv3.lua 'mllp = { listen = "127.0.0.1:0", duplicates = "bytes" }'
pv check -c pv3.lua
assert_match "mllp.duplicates 'bytes' is not one of reject, by_content" "$ERR" "pvwatch check names a bad mllp.duplicates"
pv ingest -c pv2.lua r3x.hl7
assert_eq 0 "$RC" "by_content: the file with the reused control id is ingested"
assert_eq 1 "$(q "SELECT count(*) FROM observations WHERE patient_id='R1' AND value_num=0.2")" \
    "by_content: its result is stored"
pv ingest -c pv2.lua r3x.hl7
assert_eq 1 "$(q "SELECT count(*) FROM observations WHERE patient_id='R1' AND value_num=0.2")" \
    "by_content: the same file again is a duplicate"
cd .. || exit 1

section "issue15_item01_item04_as_a_file"
mkdir file2 && cd file2 || exit 1
write_config pv.lua
meds G1
orx g1.hl7 MSGG1 G1 PL9 '' 'OBX|1|NM|751-8^Neutrophils^LN||0.9|10*9/L|||||P' \
    'OBX|2|DT|8665-2^LMP^LN||20261101||||||F' \
    'OBX|3|NM|2823-3^K^LN||4.1|mmol/L^^UCUM|3.5 - 5.3|||F' \
    'OBX|4|NM|LOC1^Local||7|U|||||F'
orx g2.hl7 MSGG2 G1 PL9 '' 'OBX|1|NM|751-8^Neutrophils^LN||0.3|10*9/L|||||W'
pv ingest -c pv.lua g1.hl7 g2.hl7
assert_eq 0 "$RC" "both files are ingested"
assert_eq "PL9|0.9|W;PL9|0.3|W" \
    "$(q "SELECT filler_order, value_num, status FROM observations WHERE patient_id='G1' AND code='751-8' ORDER BY id" | tr '\n' ';' | sed 's/;$//')" \
    "OBR-2 is the order when OBR-3 is empty; W retires the preliminary"
assert_eq "|20261101" "$(q "SELECT value_num, value_text FROM observations WHERE code='8665-2'")" "a DT value is text"
assert_eq "mmol/L|3.5|5.3" "$(q "SELECT unit, ref_low, ref_high FROM observations WHERE code='2823-3'")" \
    "the unit from its component, '3.5 - 5.3' parsed"
assert_eq "''" "$(q "SELECT quote(code_system) FROM observations WHERE code='LOC1'")" "an empty OBX-3.3 is not LOINC"
# The P of 0.9 was judged when it came (a preliminary counts), the W not.
assert_eq 0 "$(q "SELECT count(*) FROM alerts WHERE patient_id='G1' AND severity='critical'")" \
    "the W ANC of 0.3 raises no critical alert"
cd .. || exit 1


section "issue15_item08_batch_in_one_mllp_frame"
mkdir batch && cd batch || exit 1
write_config pv.lua
meds BA1
start_pv pv run -c pv.lua
check_wait "grep -q 'MLLP listening on 127.0.0.1:[0-9]' pv.err" 15 "pvwatch names its MLLP port"
PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
[ -n "$PORT" ] || finish
# One frame: BHS, three messages (the second has nothing usable), BTS.
oru m1.hl7 MSGBA1 BA1 'OBX|1|NM|751-8^Neutrophils^LN||0.4|10*9/L|||||F|||20261201070000'
oru m2.hl7 MSGBA2 BA2 'OBX|1|NM|^^^||5.0|10*9/L|||||F|||20261201070000'
oru m3.hl7 MSGBA3 BA3 'OBX|1|NM|751-8^Neutrophils^LN||2.0|10*9/L|||||F|||20261201070000'
{
    printf 'BHS|^~\\&|LAB|HOSP|PV|PV|20261201080000||||BATCH7\r'
    cat m1.hl7 m2.hl7 m3.hl7
    printf 'BTS|3\r'
} >b1.hl7
back=$(ack b1.hl7)
assert_match "^BHS\|\^~\\\\&\|PV\|PV\|LAB\|HOSP\|[0-9]{14}\+0000\|\|\|\|PVBACK[0-9]+\|BATCH7" "$back" \
    "one batch ACK: BHS with BHS-12 = the batch's BHS-11"
assert_match "MSA\|AE\|MSGBA2" "$back" "the message that was not AA has its ACK in the batch"
assert_no_match "MSA\|AA" "$back" "AA messages are acknowledged by the batch, no ACK of their own"
assert_match "BTS\|1\|3 messages$" "$back" "BTS-1 counts the ACKs in the batch"
assert_eq "BA1|0.4;BA3|2.0" \
    "$(q "SELECT patient_id, value_num FROM observations WHERE patient_id LIKE 'BA%' ORDER BY patient_id" | tr '\n' ';' | sed 's/;$//')" \
    "each message of the batch is stored"
check_wait "[ \"\$(q \"SELECT count(*) FROM alerts WHERE patient_id='BA1' AND rule='$RULE' AND severity='critical'\")\" = 1 ]" 10 \
    "and judged: the low ANC in the batch raises a critical alert"
# FHS-wrapped, all good: no ACK inside, BTS|0.
oru m4.hl7 MSGBB1 BB1 'OBX|1|NM|751-8^Neutrophils^LN||2.5|10*9/L|||||F|||20261201070000'
{
    printf 'FHS|^~\\&|LAB|HOSP\rBHS|^~\\&|LAB|HOSP||||||||B8\r'
    cat m4.hl7
    printf 'BTS|1\rFTS|1\r'
} >b2.hl7
back=$(ack b2.hl7)
assert_match "BTS\|0\|1 messages$" "$back" "an all-good batch: no ACK inside, every message acknowledged"
assert_eq 1 "$(q "SELECT count(*) FROM observations WHERE patient_id='BB1'")" "its message is stored"
# Not a batch at all: AR as before.
printf 'XYZ|nonsense\r' >b3.hl7
assert_match "MSA\|AR" "$(ack b3.hl7)" "a frame that is neither a message nor a batch is AR"
stop_pv
assert_eq 0 "$STOP_RC" "pvwatch run stops cleanly"
cd .. || exit 1

finish
