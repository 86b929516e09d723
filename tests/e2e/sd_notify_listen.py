#!/usr/bin/env python3
"""sd_notify_listen.py: plays systemd's side of Type=notify for one run.

Usage: sd_notify_listen.py PVWATCH CONFIG WORKDIR

Binds a unix datagram socket, starts 'PVWATCH run -c CONFIG' in WORKDIR
with NOTIFY_SOCKET naming it, and checks, with deadlines, never sleeps:
  - the first message is READY=1 (with a STATUS= line naming the MLLP
    address), and at the moment it arrives the MLLP port accepts a
    connection: systemd would call the unit started then;
  - before READY=1 the engine had logged that it is running;
  - SIGHUP gives RELOADING=1 then READY=1;
  - SIGTERM gives STOPPING=1, and the process exits 0.
Prints one line per check and 'N passed, N failed'; exit 1 on a failure.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

pvwatch, config, workdir = sys.argv[1:4]
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print("ok:", what)
    else:
        failed += 1
        print("FAIL:", what)


def recv_until(sock, pred, timeout):
    """Messages until one satisfies pred, or the deadline: (msg, seen)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, seen
        sock.settimeout(left)
        try:
            msg = sock.recv(4096).decode("utf-8", "replace")
        except socket.timeout:
            return None, seen
        seen.append(msg)
        if pred(msg):
            return msg, seen


def fields(msg):
    return dict(l.split("=", 1) for l in msg.split("\n") if "=" in l)


tmp = tempfile.mkdtemp(prefix="pv-notify.")
path = os.path.join(tmp, "notify")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
env = dict(os.environ, NOTIFY_SOCKET=path)
err = open(os.path.join(workdir, "notify-run.err"), "w+")
proc = subprocess.Popen([pvwatch, "run", "-c", config], cwd=workdir,
                        env=env, stdout=subprocess.DEVNULL, stderr=err)
try:
    msg, seen = recv_until(sock, lambda m: True, 20)
    check(msg is not None and fields(msg).get("READY") == "1",
          "the first notification is READY=1 (got %r)" % (seen,))
    addr = None
    if msg:
        m = re.search(r"MLLP (\S+?):(\d+)", fields(msg).get("STATUS", ""))
        check(m is not None, "STATUS= names the MLLP address: %r" % msg)
        if m:
            addr = (m.group(1), int(m.group(2)))
    if addr:
        # At once: READY=1 means the listener is bound and listening.
        try:
            c = socket.create_connection(addr, timeout=2)
            c.close()
            check(True, "MLLP %s:%d accepts when READY=1 arrives" % addr)
        except OSError as e:
            check(False, "MLLP %s:%d refused at READY=1: %s" % (addr + (e,)))
        err.flush()
        err.seek(0)
        check("running:" in err.read(),
              "the engine logged 'running' before READY=1")

    proc.send_signal(signal.SIGHUP)
    msg, seen = recv_until(sock, lambda m: "READY=1" in m, 20)
    check(msg is not None and any("RELOADING=1" in s for s in seen) and
          seen.index(next(s for s in seen if "RELOADING=1" in s)) <
          seen.index(msg),
          "SIGHUP: RELOADING=1, then READY=1 (got %r)" % (seen,))

    proc.send_signal(signal.SIGTERM)
    msg, seen = recv_until(sock, lambda m: "STOPPING=1" in m, 20)
    check(msg is not None, "SIGTERM: STOPPING=1 (got %r)" % (seen,))
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "pvwatch run exited 0 after SIGTERM (rc %r)" % rc)
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    sock.close()
    os.unlink(path)
    os.rmdir(tmp)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed or not passed else 0)
