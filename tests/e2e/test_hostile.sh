#!/usr/bin/env bash
# End to end: hostile MLLP clients (issue 6, "Hostile clients").
#
# One 'pvwatch run' listens on a loopback port the system picks; hostile
# clients written with Python's standard library (all traffic to 127.0.0.1)
# try to exhaust it while a normal client ('pvwatch send') must still get
# its ACK on time and pvwatch's memory must stay bounded:
#   - a 100 MiB frame: AR, the connection closed, RSS grows by far less
#     than the frame (the framer keeps at most mllp.max_message);
#   - a client sending one byte a second (slowloris);
#   - 1,000 idle connections (ulimit -n raised), then more than
#     mllp.max_connections: the excess is refused cleanly; after
#     mllp.idle_timeout every idle connection is closed by pvwatch;
#   - random bytes, with and without framing bytes;
#   - half-open connections: half a frame then shutdown(SHUT_WR), a whole
#     frame then SHUT_WR (its ACK still arrives), half a frame then a reset,
#     and a whole frame then a reset before the ACK (stored once).
# Every loop has a deadline; nothing sleeps for luck. RSS is read from
# /proc/PID/status (VmRSS, and VmHWM for the peak).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IDLE_TIMEOUT=12      # s: long enough for each section, short enough to wait for
MAX_CONNECTIONS=1010 # 1,000 idle ones fit; the 30 extra partly do not
NIDLE=1000
NEXTRA=30
PROMPT_MS=2000       # an ACK for the normal client within this
# The normal client: 'pvwatch send' of the binary under test, or another
# (PV_SEND_CLIENT), e.g. a plain build while PVWATCH is a valgrind wrapper
# whose start-up alone would eat the deadline.
SEND_CLIENT=${PV_SEND_CLIENT:-$PVWATCH}
RSS_GROWTH_KB=$((32 * 1024))

# 1,000 idle connections need 1,000 descriptors in pvwatch and in the client.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((NIDLE + NEXTRA + 64)) ]; then
    echo "SKIP: cannot raise the descriptor limit to $((NIDLE + NEXTRA + 64)) (ulimit -n is $(ulimit -n))"
    NIDLE=$(($(ulimit -n) - NEXTRA - 64))
    MAX_CONNECTIONS=$((NIDLE + 10))
fi

cat >hostile.py <<'EOF'
import json, os, random, socket, struct, sys, threading, time

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
port = int(sys.argv[2])
addr = ("127.0.0.1", port)

def frames(buf):
    """The complete MLLP frames in buf, and the rest."""
    out = []
    while True:
        s = buf.find(VT)
        e = buf.find(FS + CR, s + 1) if s >= 0 else -1
        if s < 0 or e < 0:
            return out, buf
        out.append(buf[s + 1:e].decode("utf-8", "replace"))
        buf = buf[e + 2:]

def msa(ack):
    for seg in (ack or "").split("\r"):
        if seg.startswith("MSA|"):
            f = seg.split("|")
            return f[1], (f[2] if len(f) > 2 else "")
    return None, None

def read_until_closed(s, timeout):
    """Reads until the peer closes (or timeout). Returns (bytes, closed)."""
    s.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                return buf, True
            buf += chunk
    except (ConnectionResetError, BrokenPipeError):
        return buf, True
    except socket.timeout:
        return buf, False

def read_frame(s, timeout):
    s.settimeout(timeout)
    buf = b""
    while True:
        got, _ = frames(buf)
        if got:
            return got[0]
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf += chunk

def oru(ctl, pid, value):
    return ("MSH|^~\\&|HOSTILE|LAB|PVWATCH|PV|20260301120000||ORU^R01|%s|P|2.5.1\r"
            "PID|1||%s^^^E2E^MR\r"
            "OBR|1|ORD-%s||57021-8^CBC^LN|||20260301100000\r"
            "OBX|1|NM|751-8^Neutrophils^LN||%s|10*9/L|1.5-7.0|N|||F|||20260301100000\r"
            % (ctl, pid, ctl, value)).encode()

def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

cmd = sys.argv[1]
if cmd == "huge":
    # A 100 MiB frame: the sender streams it from a thread while the main
    # thread reads; pvwatch answers AR once max_message is crossed and
    # closes, so the send fails part way (reset or broken pipe).
    mib = int(sys.argv[3])
    s = socket.create_connection(addr, timeout=30)
    sent = [0, None]
    def sender():
        head = oru("HOSTILE-HUGE-1", "P-HUGE", "1.0")[:-1] + b"\rNTE|1||"
        chunk = b"x" * (1 << 20)
        try:
            s.sendall(VT + head)
            sent[0] += len(head) + 1
            for _ in range(mib):
                s.sendall(chunk)
                sent[0] += len(chunk)
            s.sendall(b"\r" + FS + CR)
            sent[0] += 3
        except OSError as e:
            sent[1] = type(e).__name__
    t = threading.Thread(target=sender, daemon=True)
    t0 = time.monotonic()
    t.start()
    data, closed = read_until_closed(s, 60)
    t.join(30)
    got, _ = frames(data)
    code, ctl = msa(got[0] if got else None)
    print(json.dumps({"code": code, "control_id": ctl, "closed": closed,
                      "frames": len(got), "sent_mib": round(sent[0] / 2**20, 1),
                      "send_error": sent[1], "s": round(time.monotonic() - t0, 2)}))

elif cmd == "slowloris":
    # One byte a second for NSLOW seconds, then the rest of the frame: the
    # frame is still answered (AA). Writes 'started' to a file once the
    # first bytes are out, so the normal client runs while it dribbles.
    nslow, flag = int(sys.argv[3]), sys.argv[4]
    msg = VT + oru("HOSTILE-SLOW-1", "P-SLOW", "2.0") + FS + CR
    s = socket.create_connection(addr, timeout=10)
    for i in range(nslow):
        s.sendall(msg[i:i + 1])
        if i == 1:
            open(flag, "w").write("started\n")
        time.sleep(1)
    s.sendall(msg[nslow:])
    code, ctl = msa(read_frame(s, 10))
    print(json.dumps({"code": code, "control_id": ctl}))

elif cmd == "idle":
    # Opens N idle connections and holds them; then EXTRA more, which
    # pvwatch accepts up to mllp.max_connections and refuses (closes at
    # once) beyond; signals via files; then waits until pvwatch has closed
    # every connection (idle timeout) or the deadline passes.
    n, extra, ready, go, wait_s = (int(sys.argv[3]), int(sys.argv[4]),
                                   sys.argv[5], sys.argv[6], float(sys.argv[7]))
    t0 = time.monotonic()
    socks = []
    for i in range(n):
        socks.append(socket.create_connection(addr, timeout=10))
    # Each held connection must really be open: pvwatch would close a
    # refused one at once. A refused connection reads EOF within a second.
    open_s = time.monotonic() - t0
    open(ready, "w").write("%d\n" % len(socks))
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
    # The first N: none was refused (a short look at all of them at once;
    # poll, as select() stops at descriptor 1024).
    import select
    def readable(group, timeout_ms):
        p = select.poll()
        by_fd = {s.fileno(): s for s in group}
        for fd in by_fd:
            p.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        return [by_fd[fd] for fd, _ in p.poll(timeout_ms)]
    def eof(s):
        try:
            return not s.recv(4096)
        except OSError:
            return True
    early_closed = sum(eof(s) for s in readable(socks, 200))
    # EXTRA more, all at once: a refused one reads EOF at once.
    more = [socket.create_connection(addr, timeout=10) for _ in range(extra)]
    refused = set()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        for s in readable([s for s in more if s not in refused], 100):
            if eof(s):
                refused.add(s)
    refused = len(refused)
    t1 = time.monotonic()
    held = socks + more
    open(go + ".extra", "w").write("%d %d\n" % (extra - refused, refused))
    # Now wait for the idle timeout to close everything still open.
    pending = set(held)
    closed_by_peer = 0
    deadline = time.monotonic() + wait_s
    while pending and time.monotonic() < deadline:
        for s in readable(pending, 500):
            if eof(s):
                closed_by_peer += 1
                pending.discard(s)
    for s in held:
        s.close()
    print(json.dumps({"opened": n, "open_s": round(open_s, 2), "early_closed": early_closed,
                      "extra_accepted": extra - refused, "extra_refused": refused,
                      "still_open": len(pending), "closed_after_s": round(time.monotonic() - t1, 1)}))

elif cmd == "random":
    # Random bytes over several connections: plain noise, noise with
    # framing bytes sprinkled in, and frames full of noise. Every answer
    # must be a well-formed ACK frame (AR/AE); nothing else comes back.
    rng = random.Random(int(sys.argv[3]))
    nconn, total = int(sys.argv[4]), int(sys.argv[5])
    answers, codes, bad, reset = 0, {}, 0, 0
    for i in range(nconn):
        s = socket.create_connection(addr, timeout=10)
        kind = i % 3
        data = bytearray(rng.getrandbits(8) for _ in range(total // nconn))
        if kind == 1:
            for _ in range(len(data) // 50):
                data[rng.randrange(len(data))] = rng.choice(b"\x0b\x1c\x0d")
        elif kind == 2:
            out = bytearray()
            for j in range(0, len(data), 300):
                out += VT + bytes(b for b in data[j:j + 300] if b not in (0x0b, 0x1c)) + FS + CR
            data = out
        try:
            s.sendall(bytes(data))
            s.shutdown(socket.SHUT_WR)
        except OSError:
            reset += 1
        buf, closed = read_until_closed(s, 10)
        got, rest = frames(buf)
        for f in got:
            answers += 1
            code, _ = msa(f)
            codes[code] = codes.get(code, 0) + 1
            if not f.startswith("MSH|") or code not in ("AR", "AE"):
                bad += 1
        if rest.strip(b"\r\n"):
            bad += 1
        s.close()
    print(json.dumps({"answers": answers, "codes": codes, "bad": bad, "reset": reset}))

elif cmd == "halfopen":
    res = {}
    # 1. Half a frame, then shutdown(SHUT_WR): closed at once, no answer.
    s = socket.create_connection(addr, timeout=10)
    s.sendall(VT + oru("HOSTILE-HALF-1", "P-HALF", "3.0")[:40])
    s.shutdown(socket.SHUT_WR)
    t0 = time.monotonic()
    data, closed = read_until_closed(s, 8)
    res["half_shut"] = {"closed": closed, "bytes": len(data),
                        "s": round(time.monotonic() - t0, 2)}
    s.close()
    # 2. A whole frame, then SHUT_WR at once: its ACK still arrives, then EOF.
    s = socket.create_connection(addr, timeout=10)
    s.sendall(VT + oru("HOSTILE-HALF-2", "P-HALF2", "3.1") + FS + CR)
    s.shutdown(socket.SHUT_WR)
    data, closed = read_until_closed(s, 8)
    got, _ = frames(data)
    res["whole_shut"] = {"closed": closed, "acks": [msa(f) for f in got]}
    s.close()
    # 3. Half a frame, then a reset (the peer vanishes).
    s = socket.create_connection(addr, timeout=10)
    s.sendall(VT + oru("HOSTILE-HALF-3", "P-HALF3", "3.2")[:50])
    time.sleep(0.1)
    rst(s)
    # 4. A whole frame, then a reset before the ACK can arrive.
    s = socket.create_connection(addr, timeout=10)
    s.sendall(VT + oru("HOSTILE-HALF-4", "P-HALF4", "3.3") + FS + CR)
    rst(s)
    # 5. Many connections that send half a frame and vanish, at once.
    for i in range(50):
        s = socket.create_connection(addr, timeout=10)
        s.sendall(VT + oru("HOSTILE-HALF-5-%d" % i, "P-HALF5", "3.4")[:60 + i])
        rst(s) if i % 2 else s.close()
    print(json.dumps(res))
EOF

# rss_kb KEY: VmRSS or VmHWM of pvwatch, in kB.
rss_kb() {
    awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PV_PID/status" 2>/dev/null
}

# send_timed FILE OUT: 'pvwatch send' with a deadline; sets SEND_RC and
# SEND_MS (wall time of the whole command).
SEND_RC=0
SEND_MS=0
now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    printf '%s' $((t / 1000))
}
send_timed() {
    local t0
    t0=$(now_ms)
    timeout 30 "$SEND_CLIENT" send "127.0.0.1:$PORT" "$1" >"$2" 2>&1
    SEND_RC=$?
    SEND_MS=$(($(now_ms) - t0))
}

# oru_file CTL PATIENT VALUE FILE
oru_file() {
    {
        printf 'MSH|^~\\&|NORMAL|LAB|PVWATCH|PV|20260301120000||ORU^R01|%s|P|2.5.1\r' "$1"
        printf 'PID|1||%s^^^E2E^MR\r' "$2"
        printf 'OBR|1|ORD-%s||57021-8^CBC^LN|||20260301100000\r' "$1"
        printf 'OBX|1|NM|751-8^Neutrophils^LN||%s|10*9/L|1.5-7.0|N|||F|||20260301100000\r' "$3"
    } >"$4"
}

# normal_client TAG: one message from 'pvwatch send', which must get AA
# within PROMPT_MS.
NORMAL_N=0
normal_client() {
    NORMAL_N=$((NORMAL_N + 1))
    oru_file "NORMAL-$NORMAL_N" "P-NORMAL" "4.$NORMAL_N" "normal$NORMAL_N.hl7"
    send_timed "normal$NORMAL_N.hl7" "normal$NORMAL_N.out"
    assert_eq "0|normal$NORMAL_N.hl7:1: AA NORMAL-$NORMAL_N" \
        "$SEND_RC|$(cat "normal$NORMAL_N.out")" "$1: the normal client gets AA"
    if [ "$SEND_MS" -lt "$PROMPT_MS" ]; then pass; else
        fail "$1: the normal client waited $SEND_MS ms (deadline $PROMPT_MS ms)"
    fi
    echo "   normal client ($1): AA in $SEND_MS ms"
}

alive() {
    if kill -0 "$PV_PID" 2>/dev/null; then pass; else
        fail "$1: pvwatch is no longer running; its stderr:"
        tail -n 20 pv.err | sed 's/^/    /'
        finish
    fi
}

# ---------------------------------------------------------------------------
section "start pvwatch run with MLLP on a loopback port the system picks"
CFG_PLUGINS=$PV_TEST_PLUGINS write_config pv.lua \
    "mllp = { listen = \"127.0.0.1:0\", idle_timeout = $IDLE_TIMEOUT, max_connections = $MAX_CONNECTIONS }"
mkdir -p inbox
start_pv pv run -c pv.lua
expect_running pv
PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
assert_match '^[0-9]+$' "$PORT" "pvwatch names its MLLP port"
normal_client "at start"
RSS0=$(rss_kb VmRSS)
echo "   RSS at start: $RSS0 kB (descriptor limit $(ulimit -n))"

# ---------------------------------------------------------------------------
section "a 100 MiB frame: AR, connection closed, memory bounded"
huge=$(timeout 90 "$PYTHON" hostile.py huge "$PORT" 100)
echo "   $huge"
# (MSA-2 is empty: the framer drops the frame's bytes once it is too big,
# so the control id is not known; the sender knows which message it was.)
assert_eq "AR" "$(json "$huge" 'J["code"]')" "the 100 MiB frame is answered AR"
assert_eq True "$(json "$huge" 'J["closed"]')" "then pvwatch closes the connection"
assert_eq 1 "$(json "$huge" 'J["frames"]')" "exactly one answer"
alive "after the 100 MiB frame"
RSS1=$(rss_kb VmRSS)
HWM1=$(rss_kb VmHWM)
echo "   RSS $RSS0 kB -> $RSS1 kB, peak $HWM1 kB"
if [ $((HWM1 - RSS0)) -lt "$RSS_GROWTH_KB" ]; then pass; else
    fail "peak RSS grew by $((HWM1 - RSS0)) kB for a 100 MiB frame (bound $RSS_GROWTH_KB kB)"
fi
assert_match 'longer than 1048576 bytes' "$(cat pv.err)" "the log says why"
assert_eq 0 "$(q "SELECT count(*) FROM patients WHERE id = 'P-HUGE'")" "nothing of it stored"
normal_client "after the 100 MiB frame"

# ---------------------------------------------------------------------------
section "a client sending one byte a second does not delay another"
rm -f slow.flag
timeout 60 "$PYTHON" hostile.py slowloris "$PORT" 6 slow.flag >slow.json 2>slow.err &
SLOW_PID=$!
check_wait "[ -s slow.flag ]" 10 "the slow client has started"
normal_client "while a client sends one byte a second"
if wait_for "! kill -0 $SLOW_PID" 30; then wait "$SLOW_PID"; else kill "$SLOW_PID"; fi
assert_eq "AA|HOSTILE-SLOW-1" "$(json "$(cat slow.json)" 'J["code"] + "|" + J["control_id"]')" \
    "the slow client's frame, once complete, is answered AA"
alive "after the slow client"

# ---------------------------------------------------------------------------
section "$NIDLE idle connections, then more than mllp.max_connections"
rm -f idle.ready idle.go idle.go.extra
RSS2=$(rss_kb VmRSS)
timeout 100 "$PYTHON" hostile.py idle "$PORT" "$NIDLE" "$NEXTRA" idle.ready idle.go \
    $((IDLE_TIMEOUT + 15)) >idle.json 2>idle.err &
IDLE_PID=$!
check_wait "[ -s idle.ready ]" 40 "$NIDLE connections opened"
# Served after the $NIDLE were accepted (one loop, in order of arrival).
normal_client "with $NIDLE idle connections open"
RSS3=$(rss_kb VmRSS)
echo "   RSS with $NIDLE idle connections: $RSS2 kB -> $RSS3 kB"
if [ $((RSS3 - RSS2)) -lt "$RSS_GROWTH_KB" ]; then pass; else
    fail "RSS grew by $((RSS3 - RSS2)) kB for $NIDLE idle connections (bound $RSS_GROWTH_KB kB)"
fi
: >idle.go
check_wait "[ -s idle.go.extra ]" 30 "the extra connections were tried"
read -r extra_ok extra_refused <idle.go.extra
echo "   beyond the limit: $extra_ok accepted, $extra_refused refused"
assert_eq $((NEXTRA - (MAX_CONNECTIONS - NIDLE))) "$extra_refused" \
    "connections beyond mllp.max_connections = $MAX_CONNECTIONS are refused (closed at once)"
assert_match 'refused: [0-9]+ connections open \(mllp.max_connections\)' "$(cat pv.err)" \
    "the log says why"
alive "with $MAX_CONNECTIONS connections"
# Every held connection is closed by pvwatch after idle_timeout.
if wait_for "! kill -0 $IDLE_PID" $((IDLE_TIMEOUT + 30)); then wait "$IDLE_PID"; else kill "$IDLE_PID"; fi
idle=$(cat idle.json)
echo "   $idle"
assert_eq 0 "$(json "$idle" 'J["early_closed"]')" "none of the first $NIDLE was refused"
assert_eq 0 "$(json "$idle" 'J["still_open"]')" \
    "pvwatch closed every idle connection after mllp.idle_timeout = ${IDLE_TIMEOUT}s"
assert_eq True "$(json "$idle" "J['closed_after_s'] < $IDLE_TIMEOUT + 10")" "not much later than the timeout"
assert_match 'idle for [0-9]+s; closing' "$(cat pv.err)" "the log says why"
RSS4=$(rss_kb VmRSS)
echo "   RSS after they were closed: $RSS4 kB"
alive "after the idle connections"
normal_client "after the idle connections were closed"

# ---------------------------------------------------------------------------
section "random bytes"
rnd=$(timeout 60 "$PYTHON" hostile.py random "$PORT" 6 12 $((512 * 1024)))
echo "   $rnd"
assert_eq 0 "$(json "$rnd" 'J["bad"]')" "every answer to noise is a well-formed AR/AE ACK frame"
assert_eq True "$(json "$rnd" 'J["answers"] > 0')" "framed noise is answered (AR)"
alive "after random bytes"
assert_eq 0 "$(q "SELECT count(*) FROM messages WHERE status = 'accepted' AND source LIKE 'hl7:%' AND control_id NOT LIKE 'NORMAL-%' AND control_id NOT LIKE 'HOSTILE-%'")" \
    "no noise stored as an accepted message"
normal_client "after random bytes"

# ---------------------------------------------------------------------------
section "half-open connections"
half=$(timeout 60 "$PYTHON" hostile.py halfopen "$PORT")
echo "   $half"
assert_eq "True|0" "$(json "$half" 'str(J["half_shut"]["closed"]) + "|" + str(J["half_shut"]["bytes"])')" \
    "half a frame then SHUT_WR: closed without an answer"
assert_eq True "$(json "$half" "J['half_shut']['s'] < $IDLE_TIMEOUT")" "at once, not after the idle timeout"
assert_eq "True|[['AA', 'HOSTILE-HALF-2']]" \
    "$(json "$half" 'str(J["whole_shut"]["closed"]) + "|" + str(J["whole_shut"]["acks"])')" \
    "a whole frame then SHUT_WR: its ACK (AA) still arrives, then the close"
check_wait "[ \"\$(q \"SELECT count(*) FROM messages WHERE control_id = 'HOSTILE-HALF-4'\")\" = 1 ]" 10 \
    "a whole frame whose sender vanished before the ACK is stored (once)"
assert_eq 0 "$(q "SELECT count(*) FROM patients WHERE id IN ('P-HALF', 'P-HALF3', 'P-HALF5')")" \
    "nothing of the half frames is stored"
alive "after half-open connections"
# The sender of HOSTILE-HALF-4 got no ACK and sends again: AA, still once.
{
    printf 'MSH|^~\\&|HOSTILE|LAB|PVWATCH|PV|20260301120000||ORU^R01|HOSTILE-HALF-4|P|2.5.1\r'
    printf 'PID|1||P-HALF4^^^E2E^MR\r'
    printf 'OBR|1|ORD-HOSTILE-HALF-4||57021-8^CBC^LN|||20260301100000\r'
    printf 'OBX|1|NM|751-8^Neutrophils^LN||3.3|10*9/L|1.5-7.0|N|||F|||20260301100000\r'
} >resend.hl7
send_timed resend.hl7 resend.out
assert_eq "0|resend.hl7:1: AA HOSTILE-HALF-4" "$SEND_RC|$(cat resend.out)" "the re-sent message gets AA"
assert_eq "1|1" "$(q "SELECT count(*) FROM messages WHERE control_id = 'HOSTILE-HALF-4'")|$(q "SELECT count(*) FROM observations WHERE patient_id = 'P-HALF4'")" \
    "and is stored once"
normal_client "after half-open connections"

# ---------------------------------------------------------------------------
section "memory and a clean stop"
RSS5=$(rss_kb VmRSS)
HWM5=$(rss_kb VmHWM)
echo "   RSS: start $RSS0 kB, end $RSS5 kB, peak $HWM5 kB"
if [ $((HWM5 - RSS0)) -lt "$RSS_GROWTH_KB" ]; then pass; else
    fail "peak RSS grew by $((HWM5 - RSS0)) kB over the whole test (bound $RSS_GROWTH_KB kB)"
fi
stop_pv "$PV_PID" 15
assert_eq 0 "$STOP_RC" "exit status after SIGTERM"
assert_eq "" "$(grep -iE 'not committed|message not stored|abort|assert|sanitizer' pv.err | head -n 3)" \
    "no database error or crash in the server log"
assert_eq "ok" "$(q 'PRAGMA integrity_check')" "the database is intact"
assert_eq "$NORMAL_N" "$(q "SELECT count(*) FROM messages WHERE control_id LIKE 'NORMAL-%' AND status = 'accepted'")" \
    "every normal message stored once"

finish
