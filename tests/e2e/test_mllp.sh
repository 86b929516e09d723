#!/usr/bin/env bash
# End to end: HL7 v2 over MLLP (issue 3; DESIGN "Feeds", HL7 part).
#
# 'pvwatch run' listens on a port the system picks (mllp.listen port 0; the
# log names it) and is driven by the real npm MLLP clients of
# ../shared/TESTING.md (installed from the lock files in tests/e2e/npm/),
# by 'pvwatch send' and by raw sockets for what no client library does
# (an oversized frame, a silent or half-sent connection). ACK codes and
# control ids are checked, and the rows in SQLite.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HL7=$PV_SHARED_DIR/corpus/hl7
NPM=$PV_SOURCE_DIR/tests/e2e/npm
NODE_STEP_TIMEOUT=90 # seconds: the outer bound of every node step
MAX_MESSAGE=32768    # above the largest corpus message sent (25 KB)
IDLE_TIMEOUT=5

# ---------------------------------------------------------------------------
# The clients: node and each npm peer, installed from its lock file when
# tests/run-all.sh has not done it already.
if ! command -v node >/dev/null 2>&1; then
    echo "node is not installed (TESTING.md: Node.js 20 and npm)" >&2
    exit 1
fi
for peer in medplum hl7v2-net simple-hl7; do
    if [ ! -d "$NPM/$peer/node_modules" ]; then
        (cd "$NPM/$peer" && timeout 300 npm ci --silent --no-audit --no-fund) >&2 || {
            echo "cannot install the npm peer in $NPM/$peer (npm ci)" >&2
            exit 1
        }
    fi
done

# node_send PEER OUT ARGS...: runs PEER's send.mjs against pvwatch with a
# deadline; its JSON lines go to OUT, its status to $NODE_RC.
NODE_RC=0
node_send() {
    local peer=$1 out=$2
    shift 2
    timeout "$NODE_STEP_TIMEOUT" node "$NPM/$peer/send.mjs" 127.0.0.1 "$PORT" \
        --timeout 20000 "$@" >"$out" 2>"$out.err"
    NODE_RC=$?
    if [ "$NODE_RC" != 0 ]; then
        echo "--- $peer: status $NODE_RC" >&2
        cat "$out" "$out.err" >&2
    fi
}

# A raw MLLP peer for what the libraries cannot do, in Python's standard
# library only.
cat >mllp.py <<'EOF'
import json, socket, sys, time

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"

def read_frame(s, timeout):
    s.settimeout(timeout)
    buf = b""
    while FS + CR not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf += chunk
    start = buf.index(VT) + 1
    return buf[start:buf.index(FS + CR)].decode("utf-8", "replace")

def msa(ack):
    for seg in (ack or "").split("\r"):
        if seg.startswith("MSA|"):
            f = seg.split("|")
            return f[1], (f[2] if len(f) > 2 else "")
    return None, None

def closed_by_peer(s, timeout):
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False

def frame(path):
    return VT + open(path, "rb").read().strip() + FS + CR

port = int(sys.argv[2])
addr = ("127.0.0.1", port)
if sys.argv[1] == "big":
    # A frame over mllp.max_message: AR, then the connection is closed.
    s = socket.create_connection(addr, timeout=10)
    s.sendall(frame(sys.argv[3]))
    code, ctl = msa(read_frame(s, 10))
    print(json.dumps({"code": code, "control_id": ctl, "closed": closed_by_peer(s, 10)}))
elif sys.argv[1] == "silent":
    # A connection that sends nothing and one that stops inside a frame,
    # then a third that sends a message: its ACK must not wait for them.
    silent = socket.create_connection(addr, timeout=10)
    half = socket.create_connection(addr, timeout=10)
    half.sendall(b"\x0bMSH|^~\\&|HALF|LAB|PV|PV|2026030112")
    t0 = time.monotonic()
    s = socket.create_connection(addr, timeout=10)
    s.sendall(frame(sys.argv[3]))
    code, ctl = msa(read_frame(s, 10))
    ms = (time.monotonic() - t0) * 1000
    s.close()
    # Both idle connections are closed by the server after mllp.idle_timeout.
    t1 = time.monotonic()
    idle = float(sys.argv[4])
    closed = closed_by_peer(silent, idle + 10) and closed_by_peer(half, idle + 10)
    print(json.dumps({"code": code, "control_id": ctl, "ms": ms, "idle_closed": closed,
                      "idle_s": time.monotonic() - t1}))
EOF

# oru ID PATIENT CODE VALUE [TIME]: a small ORU^R01 of one OBX, its times
# without a zone offset.
oru() {
    printf 'MSH|^~\\&|E2E|E2ELAB|PVWATCH|PV|20260301120000||ORU^R01^ORU_R01|%s|P|2.5.1\r' "$1"
    printf 'PID|1||%s^^^E2E^MR||Doe^Jane||19700101|F\r' "$2"
    printf 'OBR|1|ORD-%s||57021-8^CBC^LN|||%s\r' "$1" "${5:-20260301100000}"
    printf 'OBX|1|NM|%s^Test^LN||%s|10*9/L|1.5-7.0|N|||F|||%s\r' "$3" "$4" "${5:-20260301100000}"
}

count_obs() {
    q "SELECT count(*) FROM observations o JOIN messages m ON m.id = o.message_id WHERE m.control_id = '$1'"
}

# ---------------------------------------------------------------------------
section "start pvwatch run with MLLP on a port the system picks"
mkdir -p inbox
cat >pv.lua <<EOF
database = "pv.db"
alert_log = "alerts.jsonl"
inbox = { path = "inbox" }
plugins = { "$PV_SOURCE_DIR/plugins" }
scripts = { "$PV_SOURCE_DIR/scripts" }
mllp = { listen = "127.0.0.1:0", max_message = $MAX_MESSAGE, idle_timeout = $IDLE_TIMEOUT }
EOF
start_pv pv run -c pv.lua
check_wait "grep -q 'MLLP listening on 127.0.0.1:[0-9]' pv.err" 15 "pvwatch names its MLLP port"
PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
if [ -z "$PORT" ]; then
    cat pv.err >&2
    finish
fi
check_wait "$PYTHON -c 'import socket; socket.create_connection((\"127.0.0.1\", $PORT), timeout=1).close()'" 10 \
    "the MLLP port accepts connections"

# ---------------------------------------------------------------------------
section "@medplum/hl7 (keepAlive): the corpus messages, each acknowledged AA after commit"
node_send medplum a.json \
    "$HL7/oru_r01_nist_lri_cbc_diff_crlf.hl7" \
    "$HL7/oru_r01_nist_lri_lipid_text_ranges_crlf.hl7" \
    "$HL7/oru_r01_nist_lri_esr_final_nte_crlf.hl7" \
    "$HL7/oru_r01_nist_lri_esr_corrected_crlf.hl7" \
    "$HL7/oru_r01_newborn_screen_escapes_utf8_lf.hl7" \
    "$HL7/rde_o11_ceftriaxone_subcomponents.hl7" \
    "$HL7/ras_o17_field_escape_zsegs_unknown_seg.hl7" \
    "$HL7/vxu_v04_hepb_cvx.hl7"
assert_eq 0 "$NODE_RC" "medplum client finished with every ACK"
assert_eq 8 "$(jsonl a.json 'len(L)')" "one ACK per message"
assert_eq "AA AA AA AA AA AA AA AA" "$(jsonl a.json '" ".join(str(x.get("code")) for x in L)')" "MSA-1 of each ACK"
assert_eq True "$(jsonl a.json 'all(x["control_id"] == x["sent_control_id"] for x in L)')" \
    "MSA-2 equals the MSH-10 sent, for every message"
assert_eq "NIST-LRI-GU-002.00" "$(jsonl a.json 'L[0]["control_id"]')" "MSA-2 of the CBC"
assert_eq "ACK^R01^ACK ACK^O11^ACK ACK^O17^ACK ACK^V04^ACK" \
    "$(jsonl a.json '" ".join(L[i]["ack_type"] for i in (0, 5, 6, 7))')" "MSH-9 of the ACKs: ACK^<trigger>^ACK"

# The rows.
assert_eq 28 "$(count_obs NIST-LRI-GU-002.00)" "CBC: 28 observations"
assert_eq "12.5|g/mL|13.0|18.0|L|F|2011-01-03T22:34:28Z" \
    "$(q "SELECT value_num, unit, ref_low, ref_high, flag, status, observed_at FROM observations WHERE patient_id = 'PATID1234' AND code = '718-7'")" \
    "CBC: hemoglobin value, unit, range '13 to 18', flag, time from OBX-14 in UTC"
assert_eq "105600.0|{cells}/uL|HH" \
    "$(q "SELECT value_num, unit, flag FROM observations WHERE patient_id = 'PATID1234' AND code = '26464-8'")" \
    "CBC: leukocytes"
assert_eq "Many spherocytes present." \
    "$(q "SELECT value_text FROM observations WHERE patient_id = 'PATID1234' AND code = '6742-1'")" "CBC: a TX value"
assert_eq 4 "$(count_obs NIST-LRI-GU-003.00)" "lipid: 4 observations"
assert_eq "196.0|mg/dL||" \
    "$(q "SELECT value_num, unit, ref_low, ref_high FROM observations WHERE patient_id = 'PATID1234' AND code = '2093-3'")" \
    "lipid: cholesterol; its free-text range gives no bounds"
assert_eq "100.0|40.0|160.0" \
    "$(q "SELECT value_num, ref_low, ref_high FROM observations WHERE patient_id = 'PATID1234' AND code = '2571-8'")" \
    "lipid: triglycerides with range '40 to 160'"
assert_eq 2 "$(q "SELECT count(*) FROM observations WHERE patient_id = 'PATID1234' AND code = '30341-2'")" \
    "ESR: final and corrected rows both kept"
assert_eq "20.0|C|H" \
    "$(q "SELECT value_num, status, flag FROM observations WHERE patient_id = 'PATID1234' AND code = '30341-2' AND observed_at = '2011-03-31T22:05:51Z' AND status NOT IN ('W', 'D')")" \
    "ESR: exactly one current row for the code and time, the corrected value"
assert_eq "10.0|W" \
    "$(q "SELECT value_num, status FROM observations WHERE patient_id = 'PATID1234' AND code = '30341-2' AND message_id = (SELECT id FROM messages WHERE control_id = 'NIST-LRI-GU-001.00')")" \
    "ESR: the final value is marked replaced (W)"
assert_eq 149 "$(count_obs AUTOMATEDTEST-003)" "newborn screening: 149 observations"
assert_eq "77.5|µmol/L|175.0" \
    "$(q "SELECT value_num, unit, ref_high FROM observations WHERE patient_id = '12345678' AND code = '29573-3'")" \
    "newborn screening: UTF-8 unit and '<175' range"
assert_eq "1|1|0" \
    "$(q "SELECT instr(value_text, char(10)) > 0, instr(value_text, 'LAB ~M 57752') > 0, instr(value_text, char(92)) > 0 FROM observations WHERE patient_id = '12345678' AND code = '57724-7'")" \
    "newborn screening: \\.br\\ and \\R\\ escapes decoded, no backslash left"
assert_eq "cefTRIAXone (ROCEPHIN) 2 g in sodium chloride 0.9 % 50 mL IVPB|DEFAULTMED|2.0|g|2021-04-07T19:13:42Z" \
    "$(q "SELECT drug, drug_code, dose, dose_unit, start_at FROM exposures WHERE patient_id = '1234'")" \
    "RDE: exposure from RXE-2, RXE-3, RXE-5 and the RXE-1 start"
assert_eq "0001|Tylenol|http://acme.org/meds;10.0;mg 0002|Advil|http://acme.org/meds;20.0;mg" \
    "$(q "SELECT drug_code || ';' || dose || ';' || dose_unit FROM exposures WHERE patient_id = '7000135' ORDER BY drug_code" | tr '\n' ' ' | sed 's/ $//')" \
    "RAS: two exposures from RXA-5 (\\F\\ decoded), RXA-6, RXA-7"
assert_eq "HEPB-PEDIATRIC/ADOLESCENT|08|CVX|0.5|mL|2014-07-30T00:00:00Z" \
    "$(q "SELECT drug, drug_code, code_system, dose, dose_unit, start_at FROM exposures WHERE patient_id = 'PA123456'")" \
    "VXU: exposure from RXA with its CVX code"
assert_eq 8 "$(q "SELECT count(*) FROM messages WHERE status = 'accepted' AND source LIKE 'hl7:%'")" \
    "8 messages stored as accepted"
assert_eq "1961-06-15|M" "$(q "SELECT birth_date, sex FROM patients WHERE id = 'PATID1234'")" \
    "PID: the patient, with birth date and sex only"

# ---------------------------------------------------------------------------
section "AR for a malformed message, AE with an ERR segment for an ORU without PID-3"
{
    printf 'MSH|^~\\&|E2E|E2ELAB|PVWATCH|PV|20260301120000||ORU^R01|E2E-BAD-1|P|2.5.1\r'
    printf 'PID|1||P-BAD\r'
    printf 'obx|1|NM|718-7^Hgb^LN||9|g/dL\r'
} >bad.hl7
{
    printf 'MSH|^~\\&|E2E|E2ELAB|PVWATCH|PV|20260301120000||ORU^R01|E2E-NOPID-1|P|2.5.1\r'
    printf 'PID|1||||Doe^Jane\r'
    printf 'OBR|1|||718-7^Hgb^LN|||20260301100000\r'
    printf 'OBX|1|NM|718-7^Hgb^LN||9|g/dL|||||F\r'
} >nopid.hl7
node_send medplum b.json bad.hl7 nopid.hl7
assert_eq 0 "$NODE_RC" "medplum client got both ACKs"
assert_eq "AR|E2E-BAD-1" "$(jsonl b.json 'L[0]["code"] + "|" + L[0]["control_id"]')" "malformed: AR, MSA-2 = its MSH-10"
assert_eq "AE|E2E-NOPID-1" "$(jsonl b.json 'L[1]["code"] + "|" + L[1]["control_id"]')" "no PID-3: AE, MSA-2 = its MSH-10"
assert_match 'PID-3' "$(jsonl b.json 'L[1]["error"]')" "no PID-3: the ERR segment says what is missing"
assert_ne "" "$(jsonl b.json 'L[0]["error"]')" "malformed: the ERR segment says what is wrong"
assert_eq 0 "$(q "SELECT count(*) FROM observations WHERE code = '718-7' AND value_num = 9")" "neither stored a fact"
assert_eq "rejected" "$(q "SELECT status FROM messages WHERE control_id = 'E2E-NOPID-1'")" \
    "the AE message is kept as rejected"

# ---------------------------------------------------------------------------
section "the same message twice: AA both times, stored once"
oru E2E-DUP-1 P-DUP 751-8 3.2 >dup.hl7
node_send medplum c.json dup.hl7 dup.hl7
assert_eq 0 "$NODE_RC" "medplum client got both ACKs"
assert_eq "AA|E2E-DUP-1 AA|E2E-DUP-1" "$(jsonl c.json '" ".join(x["code"] + "|" + x["control_id"] for x in L)')" \
    "both acknowledged AA with their control id"
assert_eq 1 "$(q "SELECT count(*) FROM messages WHERE control_id = 'E2E-DUP-1'")" "stored once in messages"
assert_eq 1 "$(q "SELECT count(*) FROM observations WHERE patient_id = 'P-DUP'")" "its fact stored once"
assert_match 'duplicate' "$(cat pv.err)" "the duplicate is logged"

# ---------------------------------------------------------------------------
section "hl7v2-net, which ACKs every message it receives: pvwatch never ACKs an ACK"
: >net.hl7
for i in 1 2 3 4 5; do
    oru "E2E-NET-$i" P-NET 751-8 "4.$i" "2026030110000$i" >>net.hl7
done
err_lines_before=$(lines pv.err)
node_send hl7v2-net d.json --quiet-ms 1000 net.hl7
assert_eq 0 "$NODE_RC" "hl7v2-net client got every ACK"
assert_eq "AA AA AA AA AA" "$(jsonl d.json '" ".join(x["code"] for x in L if "code" in x)')" "each message AA"
assert_eq True "$(jsonl d.json 'all(x["control_id"] == x["sent_control_id"] for x in L if "code" in x)')" \
    "MSA-2 equals the MSH-10 sent"
summary=$(jsonl d.json 'json.dumps(next(x for x in L if x.get("summary")))')
assert_eq 5 "$(json "$summary" 'J["sent"]')" "5 messages sent"
assert_eq 10 "$(json "$summary" 'J["frames_written"]')" \
    "the client wrote 10 frames: its 5 messages and its ACKs of pvwatch's 5 ACKs"
assert_eq 5 "$(json "$summary" 'J["frames_received"]')" \
    "pvwatch sent exactly 5 frames, none in answer to an ACK (1 s watched after the last)"
assert_eq "" "$(jsonl d.json '" ".join(x["client_error"] for x in L if "client_error" in x) or None')" \
    "no error on the client side"
net_port=$(json "$summary" 'J["local_port"]')
assert_eq "" "$(tail -n +$((err_lines_before + 1)) pv.err | grep ":$net_port:" | head -n 3)" \
    "the server log says nothing about that connection (no error loop)"
assert_eq 5 "$(q "SELECT count(*) FROM messages WHERE control_id LIKE 'E2E-NET-%'")" "5 messages stored"
assert_eq 5 "$(q "SELECT count(*) FROM observations WHERE patient_id = 'P-NET'")" "5 observations stored"
assert_eq 0 "$(q "SELECT count(*) FROM messages WHERE type LIKE 'ACK%'")" "no ACK stored"

# ---------------------------------------------------------------------------
section "simple-hl7, a third client"
oru E2E-SIMPLE-1 P-SIMPLE 751-8 2.9 >simple.hl7
node_send simple-hl7 e.json simple.hl7
assert_eq 0 "$NODE_RC" "simple-hl7 client got its ACK"
assert_eq "AA|E2E-SIMPLE-1" "$(jsonl e.json 'L[0]["code"] + "|" + L[0]["control_id"]')" "AA with MSA-2 = MSH-10"
assert_eq "2.9|10*9/L" "$(q "SELECT value_num, unit FROM observations WHERE patient_id = 'P-SIMPLE'")" "its fact stored"

# ---------------------------------------------------------------------------
section "pvwatch send"
{
    oru E2E-SEND-1 P-SEND 751-8 3.1
    printf '\n'
    oru E2E-SEND-2 P-SEND 751-8 3.3 20260302100000
} >send.hl7
timeout 60 "$PVWATCH" send "127.0.0.1:$PORT" send.hl7 >send.out 2>send.err
assert_eq 0 "$?" "pvwatch send exits 0 when every message got AA"
assert_eq 2 "$(grep -c ': AA E2E-SEND-[12]$' send.out)" "one 'FILE:LINE: AA control-id' line per message"
assert_match '^send\.hl7:1: AA E2E-SEND-1$' "$(head -n 1 send.out)" "the first line names file and line"
assert_eq 2 "$(q "SELECT count(*) FROM observations WHERE patient_id = 'P-SEND'")" "both stored"
timeout 60 "$PVWATCH" send "127.0.0.1:$PORT" bad.hl7 >sendbad.out 2>sendbad.err
assert_eq 1 "$?" "pvwatch send exits 1 when a message got AR"
assert_match '^bad\.hl7:1: AR E2E-BAD-1 .+' "$(cat sendbad.out)" "it prints AR, the control id and the error text"
{
    printf 'MSH|^~\\&|E2E|E2ELAB|PVWATCH|PV|20260301120000||ORU^R01|E2E-FS-1|P|2.5.1\r'
    printf 'PID|1||P-FS\034X\r'
    oru E2E-SEND-3 P-SEND 751-8 3.5 20260303100000
} >framing.hl7
timeout 60 "$PVWATCH" send "127.0.0.1:$PORT" framing.hl7 >sendfs.out 2>sendfs.err
assert_eq 1 "$?" "pvwatch send exits 1 when a message cannot be framed"
assert_match '^framing\.hl7:1: not sent: .*framing byte' "$(cat sendfs.out)" "it says why the message was not sent"
assert_match 'framing\.hl7:3: AA E2E-SEND-3$' "$(cat sendfs.out)" "and still sends the next one"

# ---------------------------------------------------------------------------
section "a frame over mllp.max_message: AR, connection closed, others still served"
{
    printf 'MSH|^~\\&|E2E|E2ELAB|PVWATCH|PV|20260301120000||ORU^R01|E2E-BIG-1|P|2.5.1\r'
    printf 'PID|1||P-BIG\r'
    printf 'NTE|1||%s\r' "$(head -c 100000 /dev/zero | tr '\0' x)"
} >big.hl7
big=$(timeout 60 "$PYTHON" mllp.py big "$PORT" big.hl7)
assert_eq AR "$(json "$big" 'J["code"]')" "the oversized frame is answered AR"
assert_eq E2E-BIG-1 "$(json "$big" 'J["control_id"]')" "its MSA-2 is the message's MSH-10"
assert_eq True "$(json "$big" 'J["closed"]')" "then the connection is closed"
assert_match "longer than $MAX_MESSAGE bytes" "$(cat pv.err)" "the log says why"
assert_eq 0 "$(q "SELECT count(*) FROM patients WHERE id = 'P-BIG'")" "nothing of it stored"
oru E2E-AFTER-BIG-1 P-AFTER 751-8 3.0 >after.hl7
timeout 60 "$PVWATCH" send "127.0.0.1:$PORT" after.hl7 >after.out 2>&1
assert_eq 0 "$?" "another client is still served"
assert_match ': AA E2E-AFTER-BIG-1$' "$(cat after.out)" "with AA"

# ---------------------------------------------------------------------------
section "a silent and a half-sent connection do not delay another client"
oru E2E-PROMPT-1 P-PROMPT 751-8 3.4 >prompt.hl7
silent=$(timeout 60 "$PYTHON" mllp.py silent "$PORT" prompt.hl7 "$IDLE_TIMEOUT")
assert_eq "AA|E2E-PROMPT-1" "$(json "$silent" 'J["code"] + "|" + J["control_id"]')" "the third connection gets AA"
assert_eq True "$(json "$silent" 'J["ms"] < 2000')" \
    "its ACK came promptly ($(json "$silent" 'round(J["ms"], 1)') ms; deadline 2000 ms, idle timeout ${IDLE_TIMEOUT} s)"
assert_eq True "$(json "$silent" 'J["idle_closed"]')" "the idle connections are closed after mllp.idle_timeout"
assert_eq True "$(json "$silent" "J['idle_s'] < $IDLE_TIMEOUT + 5")" "not much later than the timeout"

# ---------------------------------------------------------------------------
section "SIGTERM: pvwatch stops with status 0"
stop_pv "$PV_PID" 15
assert_eq 0 "$STOP_RC" "exit status after SIGTERM"
summary_line=$(grep 'stopped: MLLP' pv.err | tail -n 1)
assert_match 'stopped: MLLP [0-9]+ connections, [0-9]+ messages \(AA [0-9]+, AE [0-9]+, AR [0-9]+; [0-9]+ duplicates?; [0-9]+ ACKs? not answered\) in [0-9]+ commits?; checkpoints: [0-9]+ pass(es)? copied [0-9]+ WAL pages?, [0-9]+ errors?; the loop ran [0-9]+ itself \([0-9.]+ ms\)$' \
    "$summary_line" "the stop logs what the run did"
# The number just before (count_before) or after (count_after) a word.
count_before() { sed -E "s/.* ([0-9]+) $1.*/\\1/" <<<"$summary_line"; }
count_after() { sed -E "s/.*[(;,] $1 ([0-9]+).*/\\1/" <<<"$summary_line"; }
acks=$(count_before 'ACKs? not answered') dups=$(count_before 'duplicates?') ars=$(count_after AR)
assert_eq True "$([ "$acks" -ge 5 ] && echo True || echo False)" \
    "it counts hl7v2-net's 5 ACKs of pvwatch's ACKs, unanswered ($acks)"
assert_eq True "$([ "$dups" -ge 1 ] && echo True || echo False)" "and the duplicate ($dups)"
assert_eq True "$([ "$ars" -ge 2 ] && echo True || echo False)" "and the ARs (malformed, oversized: $ars)"
assert_eq "" "$(grep -iE 'not committed|message not stored|cannot|failed|abort|assert' pv.err | head -n 3)" \
    "no database or I/O error in the server log"
assert_eq "ok|28" "$(q 'PRAGMA integrity_check')|$(count_obs NIST-LRI-GU-002.00)" \
    "the database is intact after the stop"

finish
