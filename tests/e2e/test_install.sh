#!/usr/bin/env bash
# test_install: 'cmake --install' with DESTDIR (issue 21 part 3) puts the
# binary, the rule pack, the man page made from the help texts, the docs,
# the systemd unit, bash completion and the system configuration in place,
# and the installed binary finds its own rule pack (beside it, not the
# source tree) for 'check' and the demo ingest.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ ! -f "$PV_BUILD_DIR/cmake_install.cmake" ]; then
    fail "no cmake_install.cmake in $PV_BUILD_DIR"
    finish
fi
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$PV_BUILD_DIR/CMakeCache.txt")
root=$T/root

section "cmake --install into DESTDIR"
if DESTDIR=$root cmake --install "$PV_BUILD_DIR" >install.log 2>&1; then
    pass
else
    fail "cmake --install failed:"
    sed 's/^/    /' install.log
    finish
fi
bin=$root$prefix/bin/pvwatch
share=$root$prefix/share
assert_file "$bin" "the binary"
assert_file "$share/pvwatch/plugins/cytopenia.lua" "the rule pack"
assert_file "$share/pvwatch/scripts/ctcae.lua" "the rule modules"
assert_file "$share/man/man1/pvwatch.1" "the man page"
assert_file "$share/doc/pvwatch/operations.md" "the docs"
assert_file "$share/doc/pvwatch/examples/pvwatch.lua" "the example config"
assert_file "$share/bash-completion/completions/pvwatch" "bash completion"
assert_file "$root$prefix/lib/systemd/system/pvwatch.service" "the unit"
assert_file "$root$prefix/lib/sysusers.d/pvwatch.conf" "the sysusers.d file"
etc=$(sed -n 's/^CMAKE_INSTALL_SYSCONFDIR:PATH=//p' "$PV_BUILD_DIR/CMakeCache.txt")
case $etc in /*) ;; *) etc=$prefix/$etc ;; esac
[ "$prefix" = /usr ] && etc=/etc
assert_file "$root$etc/pvwatch/pvwatch.lua" "the system configuration"

section "the unit names the installed binary and configuration"
unit=$(cat "$root$prefix/lib/systemd/system/pvwatch.service")
assert_match "ExecStart=$prefix/bin/pvwatch run -c $etc/pvwatch/pvwatch.lua" \
    "$unit" "ExecStart"
assert_match "Type=notify" "$unit" "Type=notify"
assert_match "ProtectSystem=strict" "$unit" "ProtectSystem=strict"
assert_match "ReadWritePaths=/var/lib/pvwatch" "$unit" "ReadWritePaths"
assert_match "NoNewPrivileges=yes" "$unit" "NoNewPrivileges"
if command -v systemd-analyze >/dev/null; then
    # Parse errors are "FILE:LINE: reason"; a container without systemd
    # running adds lines about the machine (missing targets, binaries not
    # under /usr/bin here), which say nothing about the unit.
    systemd-analyze verify "$root$prefix/lib/systemd/system/pvwatch.service" \
        >verify.out 2>&1
    assert_no_match "pvwatch\.service:[0-9]+:" "$(cat verify.out)" \
        "systemd-analyze verify: no unknown or invalid settings"
    systemd-analyze security --offline=yes \
        "$root$prefix/lib/systemd/system/pvwatch.service" >security.out 2>&1
    level=$(sed -n 's/.*Overall exposure level for pvwatch.service: \([0-9.]*\).*/\1/p' \
        security.out)
    echo "systemd-analyze security: exposure ${level:-?} (0 best, 10 worst)"
    assert_match "^[0-1]\.[0-9]\$" "$level" "hardened: exposure below 2.0"
fi

section "the man page: every command's help"
man=$(cat "$share/man/man1/pvwatch.1")
for c in run ingest replay alerts test check send outbox status; do
    assert_match "^\\.SS $c\$" "$(grep '^\.SS' <<<"$man")" "section for $c"
done
assert_match 'usage: pvwatch status' "$man" "the status usage text"
if command -v man >/dev/null; then
    MANWIDTH=80 man -l "$share/man/man1/pvwatch.1" >man.txt 2>man.err
    assert_eq 0 "$?" "man renders the page"
    assert_no_match "warning" "$(cat man.err)" "no roff warnings"
fi

section "the installed binary finds its own rule pack"
mkdir run && cd run || exit 1
"$bin" check >check.out 2>check.err
assert_eq 0 "$?" "check exit status"
assert_match "rule .* $share/pvwatch/plugins/cytopenia.lua" \
    "$(cat check.out)" "rules from the installed pack"
assert_no_match "$PV_SOURCE_DIR" "$(cat check.out)" "not the source tree"

"$bin" check -c "$root$etc/pvwatch/pvwatch.lua" >syscheck.out 2>&1
rc=$?
# The system configuration writes under /var/lib/pvwatch, which systemd
# makes (StateDirectory) when the unit starts: on a machine where it does
# not exist yet, check must say so, and say nothing else.
if [ -d /var/lib/pvwatch ]; then
    assert_eq 0 "$rc" "check of the installed system configuration ($(tail -n 2 syscheck.out))"
else
    assert_eq 2 "$rc" "check of the installed system configuration: its state directory is missing"
    assert_match "2 path problems" "$(cat syscheck.out)" "check counts the missing state directory"
    assert_eq 2 "$(grep -c 'its directory /var/lib/pvwatch does not exist' syscheck.out)" \
        "database and alert_log name the missing directory"
    assert_match "[0-9]+ rules loaded" "$(cat syscheck.out)" "the installed pack loads"
fi

section "the installed binary: the demo ingest"
"$bin" ingest "$PV_SOURCE_DIR"/examples/feeds/medications.csv \
    "$PV_SOURCE_DIR"/examples/feeds/labs.csv "$PV_SOURCE_DIR"/examples/feeds/events.csv \
    >ingest.out 2>ingest.err
rc=$?
assert_eq 0 "$rc" "ingest exit status ($(tail -n 3 ingest.err))"
open=$(q -d pvwatch.db "SELECT count(*) FROM alerts WHERE status='open'")
assert_ne 0 "$open" "the demo feeds raise alerts"
"$bin" status >status.out 2>&1
assert_eq 3 "$?" "status after the ingest: not running"
assert_match "alerts: +$open open" "$(cat status.out)" "status counts them"
cd "$T" || exit 1

finish
