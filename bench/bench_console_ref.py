#!/usr/bin/env python3
"""bench_console_ref.py DB N LABEL SQL [LABEL SQL ...]

The reference of bench_console.sh: each SQL (a worklist page's SELECT, the
plain query the page's rows come from) run N times, after 5 untimed runs,
on one read-only connection kept open (as each console thread keeps one),
every row fetched. Prints one JSON line per LABEL: {"label", "n", "rows",
"p50_ms", "p99_ms", "max_ms"}. Python's sqlite3 module is the "plain
SELECT through sqlite3": the same SQLite library the console links, and
its per-call overhead (a few microseconds) is well below the figures.
"""
import json
import sqlite3
import sys
import time

db, n = sys.argv[1], int(sys.argv[2])
pairs = sys.argv[3:]
if not pairs or len(pairs) % 2:
    sys.exit("usage: bench_console_ref.py DB N LABEL SQL [LABEL SQL ...]")
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
for i in range(0, len(pairs), 2):
    label, sql = pairs[i], pairs[i + 1]
    t = []
    rows = 0
    for k in range(n + 5):
        t0 = time.perf_counter()
        rows = len(con.execute(sql).fetchall())
        dt = (time.perf_counter() - t0) * 1000
        if k >= 5:
            t.append(dt)
    t.sort()
    p99 = t[min(len(t) - 1, -(-99 * len(t) // 100) - 1)]
    print(json.dumps({"label": label, "n": n, "rows": rows,
                      "p50_ms": t[(len(t) + 1) // 2 - 1],
                      "p99_ms": p99, "max_ms": t[-1]}))
