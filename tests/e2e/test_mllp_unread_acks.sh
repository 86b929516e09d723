#!/usr/bin/env bash
# End to end: an MLLP peer that sends and never reads its ACKs (issue 22
# item 6). Before the fix pvwatch queued every unsent ACK in memory
# (12 -> 545 MB in 25 s from one loopback client). Now a connection is not
# read while mllp.max_pending_ack_bytes of its ACKs wait in pvwatch, and is
# closed when they would pass mllp.max_pending_ack_bytes_hard.
#
# The premise made robust: the kernel hides ACKs in socket buffers before
# any reach pvwatch's own queue (the peer's receive buffer autotunes up to
# net.ipv4.tcp_rmem, pvwatch's send buffer up to tcp_wmem: about 3 MB
# measured). So the bad peer sets a 4 KiB SO_RCVBUF before connect (no
# receive autotuning), uses the longest control id and sending application
# HL7 allows (199 characters: each ACK is ~680 bytes, not ~90), and sends
# by bytes, not for a fixed time, until the test has seen the limit in the
# log (or a bound of bytes and seconds). Every wait is on a condition with
# a deadline.
#
# Asserted: the soft limit is reached and logged; TCP flow control then
# stops the peer; pvwatch's peak RSS (VmHWM) stays under its start-up RSS
# plus RSS_MARGIN_KB; a well-behaved peer ('pvwatch send') is served
# meanwhile and every message it got AA for is stored; pvwatch stops on
# SIGTERM with the bad peer still connected; with small limits the bad peer
# is closed at the hard limit; every AA either bad peer did receive answers
# a stored message.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAX_BYTES=$((64 * 1024 * 1024)) # the bad peer sends at most this
MAX_SECONDS=120                  # ... for at most this long
LIMIT_DEADLINE=100               # seconds to wait for a limit in the log
RSS_MARGIN_KB=$((40 * 1024))     # default limits: 1 MiB soft, 8 MiB hard
# Under AddressSanitizer freed memory is held in a quarantine (256 MiB by
# default) and counts in RSS: keep it small, so the bound still means
# something there, and allow for the sanitizer's redzones and shadow.
if [ -n "${ASAN_OPTIONS:-}" ]; then
    export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4"
    RSS_MARGIN_KB=$((80 * 1024))
fi

cat >bad.py <<'EOF'
# The bad peer: sends ORU^R01s (unique 199-character control ids) and never
# reads, until MAX_BYTES are sent, MAX_SECONDS pass, the connection is
# closed, or the file STOP exists and its sends have made no progress for
# a second (TCP flow control holds it). It prints a JSON summary. In mode
# 'hold' it then stays connected without reading until stdin closes. Then
# it reads what reached it (until EOF, a reset or 3 s of silence) and
# writes the control ids it got AA for to ACKED.
import json, os, select, socket, sys, time

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
port, max_bytes, max_seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
stop_path, acked_path, mode, tag = sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
app = "A" * 199

def msg(i):
    cid = "%s%0*d" % (tag, 199 - len(tag), i)
    return (VT + ("MSH|^~\\&|%s|%s|PVWATCH|PV|20260301120000||ORU^R01^ORU_R01|"
                  "%s|P|2.5.1\rPID|1||BADPAT%d^^^E2E^MR||Doe^Jane||19700101|F\r"
                  "OBX|1|NM|751-8^ANC^LN||3.%d|10*9/L|1.5-7.0|N|||F|||20260301100000\r"
                  % (app, app, cid, i % 50, i % 10)).encode() + FS + CR)

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
s.settimeout(10)
s.connect(("127.0.0.1", port))
s.setblocking(False)
sent_msgs = sent_bytes = 0
why, pending = "max_seconds", b""
t0 = last = time.monotonic()
while True:
    now = time.monotonic()
    if now - t0 >= max_seconds:
        break
    if sent_bytes >= max_bytes:
        why = "max_bytes"
        break
    if now - last >= 1.0 and os.path.exists(stop_path):
        why = "stop"
        break
    if not pending:
        pending = b"".join(msg(sent_msgs + k) for k in range(20))
    _, w, _ = select.select([], [s], [], 0.1)
    if not w:
        continue
    try:
        n = s.send(pending)
    except BlockingIOError:
        continue
    except (ConnectionResetError, BrokenPipeError):
        why = "closed"
        break
    pending = pending[n:]
    sent_bytes += n
    if not pending:
        sent_msgs += 20
    last = time.monotonic()
summary = {"sent_msgs": sent_msgs, "sent_bytes": sent_bytes, "why": why,
           "stalled": round(time.monotonic() - last, 2),
           "seconds": round(time.monotonic() - t0, 2)}
print(json.dumps(summary), flush=True)
if mode == "hold":
    sys.stdin.read()
buf, eof = b"", False
s.setblocking(True)
s.settimeout(3)
try:
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            eof = True
            break
        buf += chunk
except socket.timeout:
    pass
except (ConnectionResetError, BrokenPipeError):
    eof = True
acked = []
for fr in buf.split(FS + CR):
    if VT not in fr:
        continue
    for seg in fr[fr.index(VT) + 1:].decode("utf-8", "replace").split("\r"):
        f = seg.split("|")
        if f[0] == "MSA" and len(f) > 2 and f[1] == "AA":
            acked.append(f[2])
with open(acked_path, "w") as f:
    f.write("".join(a + "\n" for a in acked))
summary.update({"eof": eof, "acks": len(acked), "ack_bytes": len(buf)})
print(json.dumps(summary), flush=True)
EOF

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
hwm_kb() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

good_file() {
    local i
    for i in $(seq 1 "$2"); do
        printf 'MSH|^~\\&|GOOD|GOODLAB|PVWATCH|PV|20260301120000||ORU^R01^ORU_R01|%s%04d|P|2.5.1\r' "$1" "$i"
        printf 'PID|1||GOODPAT%d^^^E2E^MR||Roe^Ann||19700101|F\r' "$i"
        printf 'OBX|1|NM|751-8^ANC^LN||4.2|10*9/L|1.5-7.0|N|||F|||20260301100000\r\n'
    done
}

# missing_of FILE: how many control ids of FILE are not one stored message
missing_of() {
    local missing=0 id
    while read -r id; do
        [ -n "$id" ] || continue
        if [ "$(q "SELECT count(*) FROM messages WHERE control_id = '$id'")" != 1 ]; then
            missing=$((missing + 1))
        fi
    done <"$1"
    echo "$missing"
}

# summary FILE N EXPR: EXPR on the Nth JSON line of FILE
summary() { json "$(sed -n "${2}p" "$1")" "$3"; }

start_run() {
    write_config pv.lua "mllp = { listen = \"127.0.0.1:0\", idle_timeout = 300 $1 }"
    rm -f pv.db pv.db-wal pv.db-shm alerts.jsonl
    start_pv "$2" run --config pv.lua
    expect_running "$2"
    PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$2.err" | head -n 1)
}

# ---------------------------------------------------------------------------
section "issue22_item06_unread_acks: default limits, RSS bounded, others served"
start_run "" pv
rss0=$(rss_kb "$PV_PID")
rm -f stop1
# The bad peer stays connected (not reading) until we close its stdin.
exec 7> >(exec "$PYTHON" bad.py "$PORT" "$MAX_BYTES" "$MAX_SECONDS" stop1 bad1.acked hold BAD \
    >bad1.json 2>bad1.err)
BAD_PID=$!
BG_PIDS+=("$BAD_PID")
check_wait "grep -q 'not reading from it until it does' pv.err" "$LIMIT_DEADLINE" \
    "the soft limit (1 MiB of unsent ACKs) is reached and logged"
touch stop1
check_wait "[ \"\$(lines bad1.json)\" -ge 1 ]" 30 "the bad peer stopped sending"
echo "   bad peer: $(sed -n 1p bad1.json)"
assert_eq stop "$(summary bad1.json 1 'J["why"]')" \
    "the bad peer is held by flow control (no send progress for 1 s), not closed"
hwm=$(hwm_kb "$PV_PID")
echo "   pvwatch RSS at start ${rss0} kB, peak ${hwm} kB"
if [ "$hwm" -lt $((rss0 + RSS_MARGIN_KB)) ]; then pass; else
    fail "peak RSS ${hwm} kB is not under ${rss0} + ${RSS_MARGIN_KB} kB"
fi
# A well-behaved peer meanwhile: served within the deadline.
good_file GOOD 50 >good.hl7
t0=${EPOCHREALTIME/[.,]/}
timeout 20 "$PVWATCH" send "127.0.0.1:$PORT" good.hl7 >good.out 2>good.err
assert_eq 0 "$?" "pvwatch send got AA for every message while the bad peer waits"
t1=${EPOCHREALTIME/[.,]/}
echo "   50 messages of the good peer in $(((t1 - t0) / 1000)) ms"
grep -o 'AA [^ ]*' good.out | awk '{print $2}' >good.acked
assert_eq 50 "$(lines good.acked)" "50 AAs to the good peer"
assert_eq 0 "$(missing_of good.acked)" "every message ACKed to the good peer is stored"
hwm=$(hwm_kb "$PV_PID")
if [ "$hwm" -lt $((rss0 + RSS_MARGIN_KB)) ]; then pass; else
    fail "peak RSS ${hwm} kB is not under ${rss0} + ${RSS_MARGIN_KB} kB"
fi
# Stop with the bad peer still connected and its ACKs unread.
t0=${EPOCHREALTIME/[.,]/}
stop_pv "$PV_PID" 15
t1=${EPOCHREALTIME/[.,]/}
assert_eq 0 "$STOP_RC" "pvwatch stops on SIGTERM with a peer that never reads"
echo "   stop took $(((t1 - t0) / 1000)) ms"
exec 7>&-
check_wait "[ \"\$(lines bad1.json)\" -ge 2 ]" 15 "the bad peer read what reached it"
echo "   bad peer after the stop: $(sed -n 2p bad1.json)"
assert_ne 0 "$(lines bad1.acked)" "the bad peer did receive some AAs"
assert_eq 0 "$(missing_of bad1.acked)" "every AA the bad peer received answers a stored message"
assert_eq 0 "$(missing_of good.acked)" "after the stop: every message ACKed to the good peer is stored"

# ---------------------------------------------------------------------------
section "issue22_item06_unread_acks: hard limit closes the peer, no AA lost"
# The hard limit equal to the soft one: reading stops at the soft limit,
# and a peer paused between the two stays connected with at most the hard
# limit queued (by design), so with a gap between them whether the close
# comes depends on how many messages the read that crossed the soft limit
# held. With none, the first ACK that would pass 4 KiB closes it.
start_run ", max_pending_ack_bytes = 4096, max_pending_ack_bytes_hard = 4096" pv2
timeout $((MAX_SECONDS / 2 + 30)) "$PYTHON" bad.py "$PORT" "$MAX_BYTES" $((MAX_SECONDS / 2)) \
    stop2 bad2.acked read BAD2 >bad2.json 2>bad2.err
assert_eq 0 "$?" "the bad peer ran"
echo "   bad peer: $(sed -n 2p bad2.json)"
assert_match "max_pending_ack_bytes_hard" "$(cat pv2.err)" "the close is logged"
assert_eq closed "$(summary bad2.json 1 'J["why"]')" \
    "the bad peer's connection was closed by pvwatch while it sent"
assert_ne 0 "$(lines bad2.acked)" "the bad peer did receive some AAs"
assert_eq 0 "$(missing_of bad2.acked)" "every AA the bad peer received answers a stored message"
good_file GOOD2 20 >good2.hl7
timeout 20 "$PVWATCH" send "127.0.0.1:$PORT" good2.hl7 >good2.out 2>good2.err
assert_eq 0 "$?" "a good peer is served after the close"
grep -o 'AA [^ ]*' good2.out | awk '{print $2}' >good2.acked
assert_eq 20 "$(lines good2.acked)" "20 AAs to the good peer"
assert_eq 0 "$(missing_of good2.acked)" "every message ACKed to the good peer is stored"
stop_pv "$PV_PID" 15
assert_eq 0 "$STOP_RC" "pvwatch stops cleanly"

# ---------------------------------------------------------------------------
section "config: the hard limit may not be below the soft one"
write_config bad.lua "mllp = { max_pending_ack_bytes = 65536, max_pending_ack_bytes_hard = 8192 }"
pv check --config bad.lua
assert_ne 0 "$RC" "pvwatch check refuses it"
assert_match "max_pending_ack_bytes_hard \\(8192\\) is below" "$OUT$ERR" "with a clear reason"

finish
