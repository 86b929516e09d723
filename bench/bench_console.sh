#!/usr/bin/env bash
# bench_console.sh: the review console under load (issue 16, "Load"). Run by
# hand, not a timed test (bench/README.md, "bench_console"). Two parts:
#
#  (a) worklist: a database made by pvwatch (its migrations, via 'pvwatch
#      ingest' of an empty feed) filled with 100,000 alerts by direct SQL
#      (bench_console_gen.py: a load fixture, not rule output), served by
#      'pvwatch serve'; p50/p99 of GET / (default filter), a filtered view
#      and page 50 of all alerts (the keyset cursor, followed from page 1),
#      one client on one keep-alive connection, against the same page's
#      SELECT through SQLite (bench_console_ref.py, one kept connection) in
#      the same run -> ratio. Target: p99 < 100 ms.
#  (b) MLLP: bench_mllp's ACK p99 at K=16 with the console off and on
#      (8 clients hammering the pages: bench_console_pv.sh as pvwatch),
#      interleaved rounds on copies of the same 100k database -> per-round
#      ratio on/off of the p99. Target: <= 1.10.
#
# usage: bench/bench_console.sh [--build DIR] [--alerts N] [--n N]
#            [--rounds R] [--seconds S] [--clients C] [--mix worklist|all]
#            [--rate R] [--threads T] [--clients-nice N] [--only a|b] [--keep]
# --mix: what the clients of (b) GET: worklist (default; the worklist
# default, filtered, grouped by patient, page 2, and an alert page) or all
# (also /?group=rule and /rules, which read every live alert). --rate: at
# most R requests a second per client (default 0: as fast as answered).
# --threads: http.threads (default: unset, pvwatch's min(4, cores)).
# --clients-nice N: the clients of (b) under 'nice -n N' (default 0): they
# stand for browsers on other machines, but here share pvwatch's cores.
# DIR (default build-rel) must hold pvwatch and bench/bench_mllp, a
# Release build for figures that mean something.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build-rel
alerts=100000
n=300
rounds=3
seconds=10
clients=8
mix=worklist
rate=0
threads=
cnice=0
only=
keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --alerts) alerts=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --mix) mix=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --clients-nice) cnice=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
pv=$build/pvwatch
[ -x "$pv" ] || { echo "bench_console: no $pv (build it)" >&2; exit 2; }
for t in node python3; do
    command -v "$t" >/dev/null || { echo "bench_console: $t is needed" >&2; exit 2; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/pv-bench-console.XXXXXX")
serve_pid=
cleanup() {
    if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
        kill -TERM "$serve_pid"
        wait "$serve_pid" 2>/dev/null || true
    fi
    if [ "$keep" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
cd "$dir"

# pvwatch version, build type, load: a figure without them means nothing.
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
echo "bench_console: $("$pv" version) ($pv, CMAKE_BUILD_TYPE=${btype:-?})"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared machine: other work runs beside)"

echo "== fixture: $alerts alerts"
cat >pv.lua <<EOF
database = "pv.db"
alert_log = "alerts.jsonl"
http = { listen = "127.0.0.1:0"${threads:+, threads = $threads} }
EOF
printf 'patient_id,drug,start\n' >empty.csv
"$pv" ingest -c pv.lua empty.csv >/dev/null
python3 "$here/bench_console_gen.py" pv.db --alerts "$alerts"
pw=bench-$RANDOM-$RANDOM-pw
printf '%s\n' "$pw" | "$pv" users -c pv.lua add bench --role viewer --password-stdin >/dev/null
echo "database: $(du -m pv.db | cut -f1) MB"

pct_line() { # JSON-lines FILE KEY -> "label p50 p99"
    python3 -c '
import json, sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    print(j.get("label") or j.get("path"), j["p50_ms"], j["p99_ms"], j["max_ms"])' "$1"
}

if [ "$only" != b ]; then
    echo "== (a) worklist latency: $n GETs per page, one keep-alive client"
    "$pv" serve -c pv.lua 2>serve.log &
    serve_pid=$!
    addr=
    for _ in $(seq 1 300); do
        addr=$(sed -n 's|.*console on http://\([^/]*\)/.*|\1|p' serve.log | head -1)
        [ -n "$addr" ] && break
        kill -0 "$serve_pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$addr" ] || { echo "bench_console: pvwatch serve did not start:" >&2; cat serve.log >&2; exit 1; }
    url=http://$addr
    page50=$(node "$here/bench_console_client.mjs" pages "$url" bench "$pw" 50 2>/dev/null)
    cursor=$(python3 -c 'import sys, urllib.parse as u
print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["after"][0])' "$page50")
    at=${cursor%_*}
    id=${cursor##*_}
    filtered='/?severity=critical&rule=baricitinib.neutropenia'
    node "$here/bench_console_client.mjs" latency "$url" bench "$pw" "$n" \
        / "$filtered" "$page50" >http.jsonl
    kill -TERM "$serve_pid"
    wait "$serve_pid" || true
    serve_pid=
    # The pages' SELECTs, as core/web_pages.c (worklist_sql) writes them
    # for these filters: 51 rows (the 51st says there is a next page).
    cols="id, created_at, severity, grade, status, patient_id, rule, signal, title, assignee, occurrences, (CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END)"
    order="ORDER BY created_at DESC, id DESC LIMIT 51"
    python3 "$here/bench_console_ref.py" pv.db "$n" \
        default "SELECT $cols FROM alerts WHERE status != 'closed' $order" \
        filtered "SELECT $cols FROM alerts WHERE status != 'closed' AND severity = 'critical' AND rule = 'baricitinib.neutropenia' $order" \
        page50 "SELECT $cols FROM alerts WHERE 1 AND (created_at, id) < ('$at', $id) $order" >sql.jsonl
    paste -d' ' <(pct_line http.jsonl) <(pct_line sql.jsonl) | awk '
        BEGIN {
            printf "%-10s %10s %10s %10s   %10s %10s   %8s %8s\n", "view",
                "GET p50", "GET p99", "GET max", "SQL p50", "SQL p99", "p50 x", "p99 x"
        }
        {
            printf "%-10s %7.2f ms %7.2f ms %7.2f ms   %7.3f ms %7.3f ms   %8.1f %8.1f\n",
                $5, $2, $3, $4, $6, $7, $2 / $6, $3 / $7
            if ($3 > worst) worst = $3
        }
        END {
            printf "RESULT (a): worst GET p99 %.2f ms (target < 100 ms) %s\n", worst,
                worst < 100 ? "PASS" : "FAIL"
        }'
    echo "page 50 is $page50"
fi

if [ "$only" != a ]; then
    echo "== (b) MLLP ACK p99 at K=16, console off vs on with $clients clients on the pages (mix: $mix, rate per client: ${rate:-0}/s, 0 = unthrottled; http.threads ${threads:-default}; clients at nice $cnice)"
    mllp=$build/bench/bench_mllp
    [ -x "$mllp" ] || { echo "bench_console: no $mllp (build the bench_mllp target)" >&2; exit 2; }
    stats=$dir/hammer.jsonl
    : >"$stats"
    BENCH_CONSOLE_PVWATCH=$pv BENCH_CONSOLE_STATS=$stats BENCH_CONSOLE_PW=$pw \
        BENCH_CONSOLE_CLIENTS=$clients BENCH_CONSOLE_MIX=$mix BENCH_CONSOLE_RATE=$rate \
        BENCH_CONSOLE_THREADS=$threads BENCH_CONSOLE_CLIENT_NICE=$cnice \
        "$mllp" --db "$dir/pv.db" --k 16 --rounds "$rounds" --seconds "$seconds" \
        --config "off:$pv:$root/plugins" \
        --config "on:$here/bench_console_pv.sh:$root/plugins" | tee mllp.log
    python3 - "$dir/mllp.log" "$stats" <<'EOF'
import json, re, statistics, sys
p99 = {"off": [], "on": []}
for line in open(sys.argv[1]):
    m = re.match(r"round (\d+) (\S+)\s+K=16\s+\d+ msg/s p99\s+([\d.]+) ms", line)
    if m and m.group(2) in p99:
        p99[m.group(2)].append(float(m.group(3)))
ratios = [b / a for a, b in zip(p99["off"], p99["on"]) if a > 0]
if not ratios:
    sys.exit("bench_console: no K=16 rounds parsed from bench_mllp's output")
h = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
for i, s in enumerate(h, 1):
    print("round %d console clients: %d requests in %.1f s (%.0f/s), %d errors %s, page p50 %.1f ms p99 %.1f ms"
          % (i, s["requests"], s["seconds"], s["per_s"], s["errors"], s.get("error_kinds") or "",
             s["p50_ms"], s["p99_ms"]))
med = statistics.median(ratios)
print("K=16 ACK p99 per round: off %s ms, on %s ms" % (p99["off"], p99["on"]))
print("RESULT (b): ACK p99 on/off, median of the per-round ratios %.3f (%.3f-%.3f) (target <= 1.10) %s"
      % (med, min(ratios), max(ratios), "PASS" if med <= 1.10 else "FAIL"))
if not h or any(s["requests"] == 0 for s in h):
    print("WARNING: a round's console clients made no request: the 'on' figure is not under load")
EOF
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
