#!/usr/bin/env bash
# test_sd_notify: 'pvwatch run' tells systemd (Type=notify) when it is
# ready, reloading and stopping (issue 21 part 3): sd_notify_listen.py
# plays systemd's unix datagram socket (NOTIFY_SOCKET) and checks that
# READY=1 comes only once the MLLP port accepts.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

section "built with libsystemd (CMake PV_SYSTEMD)"
if ! ldd "$PVWATCH" | grep -q libsystemd; then
    # -DPV_SYSTEMD=OFF, or libsystemd-dev missing at configure time: the
    # notifications are compiled out, nothing to test.
    echo "skipped: $PVWATCH is built without libsystemd"
    pass
    finish
fi
pass

section "READY=1 after the listeners, RELOADING=1 on SIGHUP, STOPPING=1"
write_config pv.lua
if "$PYTHON" "$PV_SOURCE_DIR/tests/e2e/sd_notify_listen.py" "$PVWATCH" \
    "$T/pv.lua" "$T" >notify.out 2>&1; then
    pass
else
    fail "sd_notify_listen.py:"
    sed 's/^/    /' notify.out
    [ -f notify-run.err ] && sed 's/^/    pvwatch: /' notify-run.err
fi
grep '^ok:' notify.out | sed 's/^/    /'

section "without NOTIFY_SOCKET: runs as before"
start_pv plain run -c pv.lua
expect_running plain
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "exit status after SIGTERM"
assert_no_match "cannot tell systemd" "$(cat plain.err)" "no sd_notify warning"

finish
