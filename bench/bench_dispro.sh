#!/usr/bin/env bash
# bench_dispro: 'pvwatch report disproportionality' over N spontaneous
# reports (default 1,000,000; about 3 rows each: 1-2 drugs x 1-2 events from
# 200 drugs and 2,000 events, skewed) against the reference measured in the
# same run: the sqlite3 shell importing the same CSV into a :memory:
# database and counting the (drug, event) pairs by report with GROUP BY
# (the least any tool must do to get cell a). Reports wall time and peak
# RSS of each, and the ratio (issue 18).
#
#   bench/bench_dispro.sh [--reports N] [--pvwatch PATH]
set -euo pipefail
N=1000000
PV=${PVWATCH:-build/pvwatch}
while [ $# -gt 0 ]; do
    case $1 in
    --reports) N=$2; shift 2 ;;
    --pvwatch) PV=$2; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench_dispro: unknown option $1" >&2; exit 2 ;;
    esac
done
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
awk -v n="$N" 'BEGIN {
    srand(42); print "case_id,drug,event"
    for (i = 1; i <= n; i++) {
        nd = 1 + (rand() < 0.4); ne = 1 + (rand() < 0.5)
        for (j = 0; j < nd; j++) {
            d = int(200 * rand() ^ 2)
            for (k = 0; k < ne; k++)
                print i ",DRUG" d ",EVENT" int(2000 * rand() ^ 3)
        }
    }
}' >"$W/r.csv"
rows=$(($(wc -l <"$W/r.csv") - 1))

measure() { # label command...: prints "label seconds kib"
    local label=$1
    shift
    /usr/bin/time -f "%e %M" -o "$W/t" "$@" >"$W/out.$label" 2>"$W/err.$label"
    echo "$label $(cat "$W/t")"
}
pv=$(measure pvwatch "$PV" report disproportionality "$W/r.csv" --format csv \
    --min-count 1)
ref=$(measure sqlite3 sqlite3 :memory: -cmd ".mode csv" \
    -cmd ".import $W/r.csv r" \
    "SELECT drug, event, count(DISTINCT case_id) FROM r GROUP BY drug, event;")
read -r _ pv_s pv_kb <<<"$pv"
read -r _ ref_s ref_kb <<<"$ref"
pairs=$(($(wc -l <"$W/out.pvwatch") - 1))
ref_pairs=$(wc -l <"$W/out.sqlite3")
echo "reports $N, rows $rows, pairs $pairs (sqlite3 GROUP BY: $ref_pairs)"
printf '%-10s %8s s %8s MiB\n' pvwatch "$pv_s" $((pv_kb / 1024)) \
    "sqlite3" "$ref_s" $((ref_kb / 1024))
awk -v a="$pv_s" -v b="$ref_s" -v c="$pv_kb" -v d="$ref_kb" 'BEGIN {
    printf "ratio pvwatch/sqlite3: time %.2f, peak RSS %.2f\n",
           a / (b > 0 ? b : 0.01), c / d }'
