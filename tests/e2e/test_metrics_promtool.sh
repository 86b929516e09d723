#!/usr/bin/env bash
# End to end: /metrics and /readyz (issue 16, "Metrics"; core/metrics.c,
# docs/operations.md "Metrics").
#
# 1. promtool (Debian's prometheus package) is shown to complain about a
#    bad exposition, then checks the unit test's full exposition (every
#    family populated, a label with a quote, a backslash and a newline).
# 2. A real 'pvwatch run' with http.listen on a free port: /readyz is 200
#    once it runs; N MLLP messages sent with 'pvwatch send' show up as
#    received and stored (AA) exactly N times, an AR as an AR, the test
#    rules' calls, errors and alert events match the database, and the
#    scrape passes 'promtool check metrics' and holds no patient id.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool is not installed (Debian: apt-get install prometheus)" >&2
    exit 1
fi
UNIT=$PV_BUILD_DIR/test_metrics

# promtool_ok FILE MESSAGE: promtool check metrics accepts FILE silently.
promtool_ok() {
    local out rc=0
    out=$(promtool check metrics <"$1" 2>&1) || rc=$?
    assert_eq "0|" "$rc|$out" "$2"
}

# ---------------------------------------------------------------------------
section "promtool complains about what it should"
printf '# HELP bad_counter A counter without _total.\n# TYPE bad_counter counter\nbad_counter 1\n' >bad.prom
rc=0
out=$(promtool check metrics <bad.prom 2>&1) || rc=$?
assert_ne 0 "$rc" "a counter without _total fails the check"
assert_match '_total' "$out" "and promtool says why"

# ---------------------------------------------------------------------------
section "the unit test's full exposition passes promtool"
"$UNIT" --print >unit.prom
assert_eq 0 "$?" "test_metrics --print"
assert_match 'rule="we\\"ird\\\\na\\nme"' "$(cat unit.prom)" "the escaped label is in it"
promtool_ok unit.prom "promtool check metrics: no complaint"

# ---------------------------------------------------------------------------
section "a real run: /readyz, then N messages counted"
mkdir -p plugins inbox
cat >plugins/metrics.lua <<'EOF'
return {
  pv.rule { name = "t.metrics", signal = "test", on = { lab = "751-8" },
    when = function()
      return pv.alert { severity = "low", title = "saw the lab" }
    end },
  pv.rule { name = "t.broken", signal = "test", on = { lab = "751-8" },
    when = function() error("broken on purpose") end },
}
EOF
CFG_PLUGINS=$T/plugins write_config pv.lua \
    'http = { listen = "127.0.0.1:0", threads = 2 }'
start_pv pv run -c pv.lua
expect_running pv
check_wait "grep -q 'console listening on http://127.0.0.1:' pv.err" 15 \
    "the console listens"
HPORT=$(sed -n 's|.*console listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' pv.err | head -n 1)
MPORT=$(sed -n 's/.*MLLP listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' pv.err | head -n 1)
URL=http://127.0.0.1:$HPORT
check_wait "curl -sf '$URL/readyz' | grep -qx ready" 15 "/readyz says ready (200)"

N=5
oru() {
    printf 'MSH|^~\\&|E2E|E2ELAB|PVWATCH|PV|20260301120000||ORU^R01^ORU_R01|%s|P|2.5.1\r' "$1"
    printf 'PID|1||%s^^^E2E^MR||Doe^Jane||19700101|F\r' "$2"
    printf 'OBR|1|ORD-%s||57021-8^CBC^LN|||20260301100000\r' "$1"
    printf 'OBX|1|NM|751-8^Test^LN||3.1|10*9/L|1.5-7.0|N|||F|||20260301100000\r'
}
for i in $(seq 1 "$N"); do
    oru "E2E-MET-$i" "P-MET-$i"
    printf '\n'
done >n.hl7
timeout 60 "$PVWATCH" send "127.0.0.1:$MPORT" n.hl7 >send.out 2>send.err
assert_eq 0 "$?" "pvwatch send: every message got AA"
assert_eq "$N" "$(grep -c ': AA E2E-MET-' send.out)" "$N AA lines"
# An AR (lower-case segment name): received, stored as AR, a row rejected.
{
    printf 'MSH|^~\\&|E2E|E2ELAB|PVWATCH|PV|20260301120000||ORU^R01|E2E-MET-BAD|P|2.5.1\r'
    printf 'PID|1||P-MET-BAD\r'
    printf 'obx|1|NM|718-7^Hgb^LN||9|g/dL\r'
} >bad.hl7
timeout 60 "$PVWATCH" send "127.0.0.1:$MPORT" bad.hl7 >sendbad.out 2>&1
assert_match ': AR E2E-MET-BAD' "$(cat sendbad.out)" "the bad message got AR"

# The ACK is written after the counters are bumped: no wait needed.
curl -sf -o m.prom -D m.head "$URL/metrics"
assert_eq 0 "$?" "GET /metrics"
assert_match 'text/plain; version=0.0.4' "$(cat m.head)" "Content-Type of the text format"
promtool_ok m.prom "the live scrape passes promtool check metrics"
M=$(cat m.prom)
val() { # val 'NAME{LABELS}': the sample's value, or "missing"
    awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "missing" : v) }' m.prom
}
assert_eq "$((N + 1))" "$(val 'pvwatch_messages_received_total{feed="mllp"}')" "received{mllp} = N + 1"
assert_eq "$N" "$(val 'pvwatch_messages_stored_total{feed="mllp",ack="AA"}')" "stored{mllp,AA} = N"
assert_eq 1 "$(val 'pvwatch_messages_stored_total{feed="mllp",ack="AR"}')" "stored{mllp,AR} = 1"
assert_eq 0 "$(val 'pvwatch_messages_failed_total{feed="mllp"}')" "failed{mllp} = 0"
assert_eq 1 "$(val 'pvwatch_rows_rejected_total{feed="mllp"}')" "rows_rejected{mllp} = 1"
assert_eq 2 "$(val 'pvwatch_mllp_connections_total')" "two connections accepted"
assert_eq "$N" "$(val 'pvwatch_rule_calls_total{rule="t.metrics"}')" "t.metrics called N times"
assert_eq 0 "$(val 'pvwatch_rule_errors_total{rule="t.metrics"}')" "t.metrics never failed"
assert_eq "$N" "$(val 'pvwatch_rule_errors_total{rule="t.broken"}')" "t.broken failed N times"
assert_eq "$N" "$(q "SELECT count(*) FROM alerts WHERE rule = 't.metrics'")" "N alerts in the database"
assert_eq "$N" "$(val 'pvwatch_alert_events_total{rule="t.metrics",severity="low",event="opened"}')" \
    "alert events opened = the alerts in the database"
assert_eq 1 "$(val 'pvwatch_ready{part="db"}')" "ready{db} = 1"
assert_eq 1 "$(val 'pvwatch_ready{part="rules"}')" "ready{rules} = 1"
batches=$(val 'pvwatch_commit_batch_messages_count')
assert_match '^[1-9][0-9]*$' "$batches" "group commits counted"
assert_eq "$batches" "$(val 'pvwatch_commit_batch_messages_bucket{le="+Inf"}')" "+Inf bucket = count"
assert_eq "$((N + 1))" "$(val 'pvwatch_commit_batch_messages_sum')" "batch sizes sum to the messages"
assert_match '^[1-9][0-9]*$' "$(val 'pvwatch_wal_sync_seconds_count')" "WAL syncs timed"
assert_eq 0 "$(val 'pvwatch_outbox_messages{status="pending"}')" \
    "outbox gauge read from the database (no e-mail configured: 0)"
assert_no_match 'P-MET' "$M" "no patient id in /metrics"
assert_no_match 'saw the lab' "$M" "no alert title in /metrics"
assert_eq 1 "$(grep -c '^# TYPE pvwatch_rule_calls_total ' m.prom)" "one TYPE line per family"

# ---------------------------------------------------------------------------
section "the inbox and a tailed file"
# One CSV file with a bad row: one message stored as AE, one row rejected.
printf 'patient_id,code,value,unit,observed_at\nP-MET-IN,718-7,13,g/dL,2026-02-01T00:00:00Z\nP-MET-IN,718-7,13,g/dL,not-a-time\n' >inbox/.labs.tmp
mv inbox/.labs.tmp inbox/labs.csv
check_wait "[ -f inbox/rejected/labs.csv.error ]" 20 "the inbox took the file"
printf 'patient_id,code,value,unit,observed_at\nP-MET-TL,718-7,12,g/dL,2026-02-01T00:00:00Z\n' >>feed.csv
check_wait "[ \"\$(q \"SELECT count(*) FROM observations WHERE patient_id = 'P-MET-TL'\")\" = 1 ]" 20 \
    "the tailed row is stored"
# The tail's commit and its counters come before the next scrape.
check_wait "curl -sf '$URL/metrics' >m2.prom && grep -qx 'pvwatch_messages_stored_total{feed=\"tail\",ack=\"AA\"} 1' m2.prom" 10 \
    "stored{tail,AA} = 1"
promtool_ok m2.prom "the second scrape passes promtool too"
val2() { awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "missing" : v) }' m2.prom; }
assert_eq 1 "$(val2 'pvwatch_messages_received_total{feed="inbox_csv"}')" "received{inbox_csv} = 1"
assert_eq 1 "$(val2 'pvwatch_messages_stored_total{feed="inbox_csv",ack="AE"}')" "stored{inbox_csv,AE} = 1"
assert_eq 1 "$(val2 'pvwatch_rows_rejected_total{feed="inbox_csv"}')" "rows_rejected{inbox_csv} = 1"
assert_eq 1 "$(val2 'pvwatch_messages_received_total{feed="tail"}')" "received{tail} = 1"
assert_eq 0 "$(val2 'pvwatch_messages_received_total{feed="inbox_hl7"}')" "received{inbox_hl7} = 0"

stop_pv "$PV_PID"
assert_eq 0 "$STOP_RC" "pvwatch run stops cleanly"

finish
