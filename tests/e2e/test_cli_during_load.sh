#!/usr/bin/env bash
# test_cli_during_load: issue 22 item 9, "CLI during load" of the fault
# suite, and the alert-log lines of commands run beside the engine.
#
# While 'pvwatch run' holds the database's lock and an MLLP peer streams
# ORU^R01s that raise alerts, 'pvwatch alerts list', 'alerts list --json'
# and 'alerts ack' are run over and over. A command beside the engine never
# writes the alert log itself (the engine's recovery there would write the
# engine's lines twice); it commits its action and the action's line in
# alert_log_queue in one transaction (pv_alerts_set_queue_only), and the
# engine writes the line on its next watch tick (engine.c,
# write_others_lines). Asserted: every command succeeds (no SQLITE_BUSY
# surfacing as an error), every AA'd message is stored once, each ack's
# line reaches the log while the engine runs (waited for with a deadline),
# exactly once, and a restart of the engine writes no line twice (seqs 1..N
# without a gap or a repeat).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N_MSGS=10000    # ORU^R01s the loader sends
N_PATIENTS=40   # on baricitinib, each with low neutrophils
LINE_DEADLINE=15 # seconds for an ack's line to reach the log

# The loader: pipelines N ORU^R01s over one connection (a thread sends, the
# main thread reads the ACKs) and writes the control ids answered AA.
cat >load.py <<'EOF'
import socket, sys, threading
port, n, npat, acked_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
def msg(i):
    return (VT + ("MSH|^~\\&|LAB|HOSP|PV|PV|20260301120000||ORU^R01|LOAD%06d|P|2.5.1\r"
                  "PID|1||PV-%d||Doe^Jane||19700101|F\r"
                  "OBR|1|||26464-8^WBC^LN\r"
                  "OBX|1|NM|751-8^Neutrophils^LN||0.%d|10*9/L|2.0-7.5|L|||F|||"
                  "20260301%02d%02d00\r" % (i, 1 + i % npat, 1 + i % 8, 10 + (i // 60) % 12, i % 60)
                  ).encode() + FS + CR)
s = socket.create_connection(("127.0.0.1", port), timeout=60)
def sender():
    for k in range(0, n, 50):
        s.sendall(b"".join(msg(i) for i in range(k, min(n, k + 50))))
threading.Thread(target=sender, daemon=True).start()
buf, acked, answers = b"", [], 0
while answers < n:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    while FS + CR in buf:
        fr, buf = buf.split(FS + CR, 1)
        answers += 1
        for seg in fr.lstrip(VT).decode("utf-8", "replace").split("\r"):
            f = seg.split("|")
            if f[0] == "MSA" and len(f) > 2 and f[1] == "AA":
                acked.append(f[2])
with open(acked_path, "w") as f:
    f.write("".join(a + "\n" for a in acked))
print(answers, len(acked))
EOF

port_of() {
    sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" | head -n 1
}

# ack_lines ID: how many 'acknowledged' lines of alert ID the log has
ack_lines() {
    jsonl alerts.jsonl "sum(1 for x in L if x.get('event') == 'acknowledged' and x.get('alert_id') == $1)"
}

# ---------------------------------------------------------------------------
section "issue22_cli_during_load: alerts list/ack hammered during MLLP load"
mkdir -p inbox
: >feed.csv
write_config pv.lua
start_pv pv run -c pv.lua
expect_running pv
PORT=$(port_of pv.err)
{
    echo "patient_id,drug,start"
    for i in $(seq 1 "$N_PATIENTS"); do echo "PV-$i,baricitinib,2026-01-01"; done
} >inbox/meds.csv
check_wait "[ -e inbox/processed/meds.csv ]" 15 "the exposures were ingested from the inbox"

"$PYTHON" load.py "$PORT" "$N_MSGS" "$N_PATIENTS" load.acked >load.out 2>load.err &
LOAD_PID=$!
BG_PIDS+=("$LOAD_PID")
runs=0 failed=0
: >acked_ids
: >cli.err
# Until the loader is done (and at least 45 commands): list, list --json,
# and an ack of every alert still open.
while kill -0 "$LOAD_PID" 2>/dev/null || [ "$runs" -lt 45 ]; do
    "$PVWATCH" alerts list -c pv.lua >/dev/null 2>>cli.err || failed=$((failed + 1))
    "$PVWATCH" alerts list -c pv.lua --json >/dev/null 2>>cli.err || failed=$((failed + 1))
    runs=$((runs + 2))
    id=$(q "SELECT min(id) FROM alerts WHERE status = 'open'")
    if [ -n "$id" ]; then
        if "$PVWATCH" alerts ack "$id" -c pv.lua --note "load" >/dev/null 2>>cli.err; then
            echo "$id" >>acked_ids
        else
            failed=$((failed + 1))
        fi
        runs=$((runs + 1))
    fi
    [ "$runs" -lt 2000 ] || break
done
wait "$LOAD_PID"
assert_eq 0 "$?" "the loader ran"
echo "   loader: answers, AAs: $(cat load.out); $runs commands beside it, $(lines acked_ids) acks"
assert_eq 0 "$failed" "every command beside the engine succeeded"
assert_no_match "." "$(cat cli.err)" "no command printed an error (no 'database is locked')"
assert_eq "$N_MSGS" "$(lines load.acked)" "every message was answered AA"
assert_eq "$N_MSGS" "$(q "SELECT count(DISTINCT control_id) FROM messages WHERE control_id LIKE 'LOAD%'")" \
    "every AA'd message is stored"
assert_eq "$N_MSGS" "$(q "SELECT count(*) FROM messages WHERE control_id LIKE 'LOAD%'")" \
    "... once"
assert_ne 0 "$(lines acked_ids)" "some alerts were acknowledged during the load"

# ---------------------------------------------------------------------------
section "issue22_cli_during_load: each ack's line reaches the log once, the engine running"
all_once="True"
while read -r id; do
    if ! wait_for "[ \"\$(ack_lines $id)\" -ge 1 ]" "$LINE_DEADLINE"; then
        all_once="alert $id: no line after ${LINE_DEADLINE}s"
        break
    fi
    n=$(ack_lines "$id")
    [ "$n" = 1 ] || { all_once="alert $id: $n lines"; break; }
done <acked_ids
assert_eq True "$all_once" "every ack done beside the engine has its log line exactly once"
assert_eq 1 "$(jsonl alerts.jsonl "sum(1 for x in L if x.get('event') == 'acknowledged' and x.get('note') == 'load' and x.get('alert_id') == $(head -n 1 acked_ids))")" \
    "the line carries the ack's note"
# One more, with the engine idle: written by the next watch tick.
id=$(q "SELECT min(id) FROM alerts WHERE status = 'acknowledged'")
pv alerts close "$id" -c pv.lua --note "idle"
assert_eq 0 "$RC" "'alerts close' beside the idle engine succeeds"
check_wait "[ \"\$(jsonl alerts.jsonl \"sum(1 for x in L if x.get('event') == 'closed' and x.get('alert_id') == $id)\")\" = 1 ]" \
    "$LINE_DEADLINE" "the close's line is written by the idle engine"
# And one just before SIGTERM: written at the stop at the latest.
id2=$(q "SELECT max(id) FROM alerts WHERE status = 'acknowledged'")
pv alerts close "$id2" -c pv.lua --note "at stop"
assert_eq 0 "$RC" "'alerts close' just before the stop succeeds"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "run stops with status 0"
assert_eq 1 "$(jsonl alerts.jsonl "sum(1 for x in L if x.get('event') == 'closed' and x.get('alert_id') == $id2)")" \
    "the last close's line is in the log when the engine has stopped"
n_before=$(lines alerts.jsonl)

# ---------------------------------------------------------------------------
section "issue22_cli_during_load: a restart writes no line twice"
start_pv pv2 run -c pv.lua
expect_running pv2
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "the second run stops with status 0"
assert_eq "$n_before" "$(lines alerts.jsonl)" "the restart added no line"
assert_eq True "$(jsonl alerts.jsonl 'sorted(x["seq"] for x in L) == list(range(1, len(L) + 1))')" \
    "the seqs are 1..N: none missing, none twice"
assert_eq "$(lines acked_ids)" "$(jsonl alerts.jsonl "sum(1 for x in L if x.get('event') == 'acknowledged')")" \
    "one 'acknowledged' line per ack"
assert_eq "$(q 'SELECT count(*) FROM alerts')" "$(jsonl alerts.jsonl 'len(set(x["alert_id"] for x in L if x.get("event") == "opened"))')" \
    "one 'opened' line per alert row"
assert_eq 0 "$(q 'SELECT count(*) FROM alert_log_queue')" "nothing is left in the queue after a clean stop"

finish
