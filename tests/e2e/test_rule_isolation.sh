#!/usr/bin/env bash
# End to end (issue 20 part 1): the whole rule-spec suite (tests/rules) run
# by 'pvwatch test' with the rule memory cap squeezed, so that rules run
# out of memory in the middle of their history queries and their states
# are rebuilt (rules.c check_memory). Every history row is checked in C
# against the patient asked for (rules.c foreign_row), which logs "a row of
# another patient" if a cursor ever leaked from one query to the next: that
# must never appear, and the run must end by itself with its closing line.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

section "rule specs under a tiny memory cap: no rule sees another patient's rows"
pressure=0
for kb in 280 288 296; do
    printf 'plugins = { "%s/plugins" }\nscripts = { "%s/scripts" }\nlimits = { rule_memory = %d * 1024 }\n' \
        "$PV_SOURCE_DIR" "$PV_SOURCE_DIR" "$kb" >"tiny$kb.lua"
    rc=0
    (cd "$PV_SOURCE_DIR" && timeout 240 "$PVWATCH" test -c "$T/tiny$kb.lua" \
        tests/rules) >"out$kb.log" 2>&1 || rc=$?
    # 0 (all passed) or 1 (specs failed on memory errors), never a signal
    # or the timeout.
    if [ "$rc" -le 1 ]; then pass; else fail "cap $kb KiB: exit $rc"; fi
    assert_match '^[0-9]+ passed, [0-9]+ failed$' "$(tail -1 "out$kb.log")" \
        "cap $kb KiB: the closing line"
    assert_no_match 'another patient' "$(cat "out$kb.log")" \
        "cap $kb KiB: no history row of another patient"
    assert_no_match 'panic' "$(cat "out$kb.log")" "cap $kb KiB: no Lua panic"
    n=$(grep -c -e 'memory limit' -e 'started again' "out$kb.log" || true)
    pressure=$((pressure + n))
done
# The premise: the cap did bite (memory errors or rebuilt states).
if [ "$pressure" -gt 0 ]; then pass; else fail "the caps never bit"; fi

finish
