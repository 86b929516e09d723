#!/usr/bin/env python3
"""bench_console_gen.py DB [--alerts N] [--patients P] [--seed S]

Fills DB -- a database made by pvwatch itself, so that it has exactly
pvwatch's schema and every migration's indexes (bench_console.sh makes it
with `pvwatch ingest` of an empty feed) -- with N alerts (default 100,000)
for the worklist load bench. A LOAD FIXTURE, not clinical data: the rows
are inserted by direct SQL in one transaction (running the rule pack over
enough labs to raise 100k alerts would take far longer and is not what is
measured), shaped like what the pack writes:

  - rules, signals and severities of the real pack (neutropenia the most
    frequent, as in a hospital feed), a grade for the graded ones
  - created_at rising with id over the year before 2026-12-01, several
    alerts per patient (P patients, default 20,000)
  - status: 60 % open, 25 % acknowledged, 15 % closed; acknowledged and
    closed ones have the matching alert_actions rows (actor "bench-rev"),
    closed ones an outcome from the fixed list (when the column exists),
    a third of the live ones an assignee (when the column exists)
  - every alert an 'opened' action by pvwatch, dedup keys unique among the
    live alerts (alerts_live_key)
Deterministic for a seed. Prints what it wrote.
"""
import argparse
import datetime as dt
import json
import random
import sqlite3
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("db")
ap.add_argument("--alerts", type=int, default=100000)
ap.add_argument("--patients", type=int, default=20000)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
rnd = random.Random(a.seed)

# rule, signal, weight, severities (with the grade each means), title
RULES = [
    ("baricitinib.neutropenia", "cytopenia", 30,
     [("medium", 2), ("high", 3), ("critical", 4)], "Neutropenia grade %d on baricitinib"),
    ("baricitinib.lymphopenia", "cytopenia", 15,
     [("medium", 2), ("high", 3), ("critical", 4)], "Lymphopenia grade %d on baricitinib"),
    ("baricitinib.anemia", "cytopenia", 8,
     [("medium", 2), ("high", 3)], "Anemia grade %d on baricitinib"),
    ("baricitinib.thrombocytopenia", "cytopenia", 5,
     [("medium", 2), ("high", 3)], "Thrombocytopenia grade %d on baricitinib"),
    ("baricitinib.transaminase_rise", "hepatotoxicity", 10,
     [("medium", None), ("high", None)], "Transaminase rise on baricitinib"),
    ("baricitinib.herpes_zoster", "infection", 8,
     [("medium", None)], "Herpes zoster on baricitinib"),
    ("baricitinib.vte", "thrombosis", 4,
     [("critical", None)], "Venous thromboembolism on baricitinib"),
    ("baricitinib.combination", "interaction", 6,
     [("high", None)], "Baricitinib combined with a potent immunosuppressant"),
    ("baricitinib.lipids", "lipids", 9,
     [("low", None), ("medium", None)], "Lipids not monitored on baricitinib"),
    ("baricitinib.renal", "renal", 5,
     [("medium", None), ("high", None)], "eGFR below the label's dose threshold"),
]
OUTCOMES = ["intervention:dose_interrupted", "intervention:dose_reduced",
            "intervention:drug_stopped", "intervention:labs_repeated",
            "intervention:referred", "not_clinically_relevant", "duplicate",
            "false_positive_data_error"]
REVIEWERS = ["dr.okafor", "dr.lindqvist", "pharm.reyes", "pharm.tanaka"]

con = sqlite3.connect(a.db)
cols = {r[1] for r in con.execute("PRAGMA table_info(alerts)")}
act_cols = {r[1] for r in con.execute("PRAGMA table_info(alert_actions)")}
if "dedup_key" not in cols:
    sys.exit("%s: not a pvwatch database (no alerts.dedup_key)" % a.db)
has_assignee = "assignee" in cols
has_outcome = "outcome" in act_cols
first = (con.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0]
         + 1)

weights = [r[2] for r in RULES]
t_end = dt.datetime(2026, 12, 1)
span = 365 * 86400
started = time.time()
con.execute("BEGIN")
alert_rows, action_rows = [], []
counts = {"open": 0, "acknowledged": 0, "closed": 0}


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


for i in range(a.alerts):
    aid = first + i
    rule, signal, _, sevs, title = rnd.choices(RULES, weights)[0]
    sev, grade = rnd.choice(sevs)
    pid = "B-%05d" % rnd.randrange(a.patients)
    at = t_end - dt.timedelta(seconds=span * (a.alerts - i) / a.alerts)
    r = rnd.random()
    status = "open" if r < 0.60 else "acknowledged" if r < 0.85 else "closed"
    counts[status] += 1
    ev = json.dumps([{"kind": "lab", "id": aid, "code": "751-8",
                      "value": round(rnd.uniform(0.2, 1.4), 2),
                      "unit": "10*9/L", "at": iso(at)}],
                    separators=(",", ":"))
    row = [aid, pid, rule, signal, sev, grade,
           title % grade if "%d" in title else title,
           "Generated for the console load bench (bench_console_gen.py).",
           "Review.", "%s:%d" % (rule.split(".")[1], aid), status, iso(at),
           iso(at + dt.timedelta(hours=6)), 1, ev]
    if has_assignee:
        row.append(rnd.choice(REVIEWERS) if status != "closed" and
                   rnd.random() < 0.33 else None)
    alert_rows.append(row)
    action_rows.append((aid, iso(at), "pvwatch", "opened", None, None))
    if status != "open":
        action_rows.append((aid, iso(at + dt.timedelta(hours=2)), "bench-rev",
                            "acknowledged", None, None))
    if status == "closed":
        action_rows.append((aid, iso(at + dt.timedelta(hours=6)), "bench-rev",
                            "closed", "generated", rnd.choice(OUTCOMES)))

names = ["id", "patient_id", "rule", "signal", "severity", "grade", "title",
         "detail", "action", "dedup_key", "status", "created_at",
         "updated_at", "occurrences", "evidence"]
if has_assignee:
    names.append("assignee")
con.executemany("INSERT INTO alerts (%s) VALUES (%s)" %
                (",".join(names), ",".join("?" * len(names))), alert_rows)
if has_outcome:
    con.executemany("INSERT INTO alert_actions (alert_id, at, actor, action,"
                    " note, outcome) VALUES (?,?,?,?,?,?)", action_rows)
else:
    con.executemany("INSERT INTO alert_actions (alert_id, at, actor, action,"
                    " note) VALUES (?,?,?,?,?)",
                    [r[:5] for r in action_rows])
con.execute("COMMIT")
# No ANALYZE: pvwatch never runs it, so the planner sees what it sees in
# production (no sqlite_stat1).
con.close()
print("bench_console_gen: %d alerts (%d open, %d acknowledged, %d closed) "
      "for %d patients, %d actions, in %.1f s (direct SQL: a load fixture)"
      % (a.alerts, counts["open"], counts["acknowledged"], counts["closed"],
         a.patients, len(action_rows), time.time() - started))
