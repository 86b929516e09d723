#!/usr/bin/env bash
# End to end: a CSV header of 170,000 columns (1 MiB, under the parser's
# record limit) is rejected at once with "header has N columns, more than
# the limit of 1024" and moved to inbox/rejected/ (issue 22 item 11: it
# blocked the loop for 292 s); a labs file with 1000 columns, the right
# ones among them, is stored. An MLLP message sent meanwhile is answered
# within a deadline: the loop was not held.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# wide_header N: N columns of 5-byte names ("a0000"), comma separated.
wide_header() {
    "$PYTHON" -c '
import sys
n = int(sys.argv[1])
sys.stdout.write(",".join("%c%04x" % (97 + i % 26, i % 0xffff) for i in range(n)) + "\n")
sys.stdout.write(",".join("1" for i in range(n)) + "\n")
' "$1"
}

# labs1000: a labs file of 1000 columns, 995 of them unknown.
labs1000() {
    "$PYTHON" -c '
cols = ["patient_id", "code", "value", "unit", "observed_at"] + ["x%03d" % i for i in range(995)]
print(",".join(cols))
for r in range(3):
    print(",".join(["W%d" % r, "751-8", "%d.5" % (r + 2), "10*9/L", "2026-03-01T10:00:00Z"] + [""] * 995))
'
}

section "issue22_item11_wide_header: pvwatch ingest"
wide_header 170000 >wide.csv
echo "   wide.csv: $(wc -c <wide.csv) bytes"
t0=${EPOCHREALTIME/[.,]/}
timeout 20 "$PVWATCH" ingest --db pv.db wide.csv >ing.out 2>ing.err
rc=$?
t1=${EPOCHREALTIME/[.,]/}
echo "   ingest took $(((t1 - t0) / 1000)) ms"
assert_ne 0 "$rc" "ingest of the wide file fails"
assert_ne 124 "$rc" "and does not time out"
if [ $((t1 - t0)) -lt 2000000 ]; then pass; else fail "ingest took $(((t1 - t0) / 1000)) ms, over 2 s"; fi
assert_match 'wide\.csv:1: header has 170000 columns, more than the limit of 1024' \
    "$(cat ing.out ing.err)" "the reason names file, line and limit"

labs1000 >labs1000.csv
timeout 20 "$PVWATCH" ingest --db pv.db labs1000.csv >ing2.out 2>ing2.err
assert_eq 0 "$?" "a 1000-column labs file is ingested"
assert_eq 3 "$(q "SELECT count(*) FROM observations WHERE patient_id LIKE 'W_'")" \
    "its 3 rows stored"

section "issue22_item11_wide_header: inbox moves it to rejected/"
rm -f pv.db pv.db-wal pv.db-shm
mkdir -p inbox
write_config pv.lua
start_pv pv run --config pv.lua
expect_running pv
PORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
cp wide.csv inbox/.wide.tmp && mv inbox/.wide.tmp inbox/wide.csv
cp labs1000.csv inbox/.l.tmp && mv inbox/.l.tmp inbox/labs1000.csv
check_wait "[ -f inbox/rejected/wide.csv.error ]" 10 "wide.csv moved to rejected/ with an .error"
assert_match 'wide\.csv:1: header has 170000 columns, more than the limit of 1024' \
    "$(cat inbox/rejected/wide.csv.error 2>/dev/null)" ".error gives the reason"
check_wait "[ -f inbox/processed/labs1000.csv ]" 10 "labs1000.csv processed"
printf 'MSH|^~\\&|E2E|LAB|PV|PV|20260301120000||ORU^R01^ORU_R01|WIDE1|P|2.5.1\rPID|1||WP1^^^E2E^MR||Doe^Jane||19700101|F\rOBX|1|NM|751-8^ANC^LN||3.1|10*9/L|1.5-7.0|N|||F|||20260301100000\r' >one.hl7
timeout 10 "$PVWATCH" send "127.0.0.1:$PORT" one.hl7 >send.out 2>&1
assert_eq 0 "$?" "MLLP is answered AA meanwhile, within 10 s"
stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "pvwatch stops cleanly"
assert_eq 3 "$(q "SELECT count(*) FROM observations WHERE patient_id LIKE 'W_'")" \
    "the 1000-column file's rows stored"

finish
