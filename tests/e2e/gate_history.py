#!/usr/bin/env python3
"""gate_history.py: a deterministic history for tests/e2e/test_rule_gate.sh.

Writes N_ROUNDS rounds of CSV files (labs, medications, events) into a
directory, about FACTS facts in all, for the rule gate's equivalence test
(issue 17): the same files ingested with the gate on and off must give the
same alerts. The mix is meant to reach every rule and every way the gate
could go wrong:

- patients on baricitinib spelled as feeds spell it (name, brand, NDC code
  only, ATC code only), with ends, gaps (new courses) and dose changes;
  patients on probenecid only (an on.exposure drug of dose_adjustment that
  is not baricitinib), on methotrexate, prednisone, adalimumab, live
  vaccines; patients with no medication at all;
- exposures that arrive after the labs and events they cover (the rules'
  look-back), as the rounds interleave the three kinds of file;
- labs of every analyte the pack listens to, mostly normal, some abnormal,
  some in units a rule cannot grade (engine alerts), text results (hCG,
  HBsAg, HBV DNA);
- events of every ICD set of the pack, some serious, some fatal.

usage: gate_history.py DIR [FACTS] [SEED]
"""
import os
import random
import sys

out = sys.argv[1]
facts = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 17)
N_ROUNDS = 6
DAY = 86400

# (codes, normal (lo, hi), abnormal (lo, hi), unit, ref_low, ref_high)
LABS = [
    (["751-8", "26499-4"], (1.8, 7.0), (0.2, 1.4), "10*9/L", 1.8, 7.5),
    (["731-0"], (1.0, 4.0), (0.1, 0.9), "10*9/L", 1.0, 4.8),
    (["6690-2"], (4.0, 10.0), (0.5, 3.0), "10*9/L", 4.0, 11.0),
    (["718-7"], (12.0, 16.0), (6.0, 9.5), "g/dL", 12.0, 16.0),
    (["777-3"], (150, 400), (20, 90), "10*9/L", 150, 400),
    (["1742-6"], (7, 40), (130, 400), "U/L", 7, 40),
    (["1920-8"], (10, 40), (130, 400), "U/L", 10, 40),
    (["1975-2"], (0.2, 1.1), (2.5, 6.0), "mg/dL", 0.1, 1.2),
    (["2093-3"], (120, 190), (310, 520), "mg/dL", None, 200),
    (["2571-8"], (50, 140), (320, 1100), "mg/dL", None, 150),
    (["33914-3"], (65, 110), (10, 55), "mL/min/{1.73_m2}", 60, None),
    (["48065-7"], (0.1, 0.4), (0.8, 4.0), "ug/mL", 0.0, 0.5),
]
TEXT_LABS = [
    ("2106-3", ["negative", "positive", "Negative", "detected"]),
    ("5196-1", ["non-reactive", "reactive", "negative", "positive"]),
    ("29615-2", ["not detected", "detected", "<10"]),
    ("64084-6", ["negative", "positive"]),
]
# Units no rule can grade, on codes the rules grade (engine alerts).
AWKWARD = [("26474-7", 12.0, "%"), ("751-8", 3.1, "furlongs"),
           ("2093-3", 180, "stone")]
EVENTS = ["A41.9", "J18.9", "B02.9", "A15.0", "B37.1", "B59", "L03.1",
          "I26.99", "I82.40", "I74.3", "I63.9", "I21.4", "C34.1", "C44.9",
          "C83.3", "K63.1", "K57.20", "O09.90", "Z33.1", "R99", "I46.9",
          "M79.1", "E11.9"]
BARI = [("baricitinib", "", ""), ("Olumiant 2 MG Oral Tablet", "0002-4182-30",
        "NDC"), ("Oral Tablet 4 MG", "00002447930", "NDC"), ("JAK tablets", "L04AF02", "ATC"),
        ("BARICITINIB 4mg", "", "")]
OTHER = [("Methotrexate 15 MG", "", ""), ("Prednisone 20 MG Oral Tablet", "",
         ""), ("Adalimumab 40 MG", "", ""), ("probenecid 500 mg", "", ""),
         ("Tofacitinib 5 MG", "", ""), ("Ibuprofen 400 MG", "", ""),
         ("zoster vaccine live", "", "")]

T0 = 1735689600  # 2025-01-01
SPAN = 500 * DAY
npat = max(50, facts // 40)


def iso(t):
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def day(t):
    import time
    return time.strftime("%Y-%m-%d", time.gmtime(t))


rounds = [{"labs": [], "meds": [], "events": []} for _ in range(N_ROUNDS)]
for p in range(npat):
    pid = "G%05d" % p
    kind = rng.random()
    meds = []
    if kind < 0.15:  # on baricitinib, one to three courses
        t = T0 + rng.randrange(SPAN)
        for _ in range(rng.randint(1, 3)):
            d = rng.choice(BARI)
            dose = rng.choice([1, 2, 4])
            end = t + rng.randrange(20, 200) * DAY if rng.random() < 0.6 else None
            meds.append((pid, d, t, end, dose))
            if end is None:
                break
            t = end + rng.randrange(1, 90) * DAY
    if kind < 0.5 and rng.random() < 0.7:
        for _ in range(rng.randint(1, 2)):
            d = rng.choice(OTHER)
            t = T0 + rng.randrange(SPAN)
            end = t + rng.randrange(10, 150) * DAY if rng.random() < 0.5 else None
            meds.append((pid, d, t, end, rng.choice([5, 15, 20, 40, 500])))
    for m in meds:
        rounds[rng.randrange(N_ROUNDS)]["meds"].append(m)

nlabs = int(facts * 0.85)
nevents = facts - nlabs - sum(len(r["meds"]) for r in rounds)
for _ in range(nlabs):
    pid = "G%05d" % rng.randrange(npat)
    t = T0 + rng.randrange(SPAN)
    r = rng.random()
    if r < 0.04:
        code, vals = rng.choice(TEXT_LABS)
        row = (pid, code, rng.choice(vals), "", t, "", "")
    elif r < 0.05:
        code, v, unit = rng.choice(AWKWARD)
        row = (pid, code, "%g" % v, unit, t, "", "")
    else:
        codes, norm, abn, unit, lo, hi = rng.choice(LABS)
        a, b = abn if rng.random() < 0.08 else norm
        v = round(rng.uniform(a, b), 2)
        row = (pid, rng.choice(codes), "%g" % v, unit, t,
               "" if lo is None else "%g" % lo,
               "" if hi is None else "%g" % hi)
    rounds[rng.randrange(N_ROUNDS)]["labs"].append(row)
for _ in range(max(0, nevents)):
    pid = "G%05d" % rng.randrange(npat)
    t = T0 + rng.randrange(SPAN)
    code = rng.choice(EVENTS)
    serious = rng.choice(["yes", "no", ""])
    outcome = rng.choice(["", "", "", "recovered", "fatal", "died"])
    rounds[rng.randrange(N_ROUNDS)]["events"].append(
        (pid, code, t, serious, outcome))

os.makedirs(out, exist_ok=True)
for i, r in enumerate(rounds):
    # The order the files of a round are ingested in changes from round to
    # round, so exposures come both before and after what they cover.
    with open(os.path.join(out, "r%d_labs.csv" % i), "w") as f:
        f.write("patient_id,code,value,unit,observed_at,ref_low,ref_high\n")
        for pid, code, v, unit, t, lo, hi in sorted(r["labs"], key=lambda x: x[4]):
            f.write("%s,%s,%s,%s,%s,%s,%s\n" % (pid, code, v, unit, iso(t), lo, hi))
    with open(os.path.join(out, "r%d_medications.csv" % i), "w") as f:
        f.write("patient_id,drug,drug_code,code_system,start,end,dose,dose_unit,route\n")
        for pid, (drug, code, system), t, end, dose in r["meds"]:
            f.write("%s,%s,%s,%s,%s,%s,%s,mg,oral\n" % (
                pid, drug, code, system, day(t), day(end) if end else "", dose))
    with open(os.path.join(out, "r%d_events.csv" % i), "w") as f:
        f.write("patient_id,code,code_system,term,onset,serious,outcome\n")
        for pid, code, t, serious, outcome in r["events"]:
            f.write("%s,%s,ICD10CM,,%s,%s,%s\n" % (pid, code, day(t), serious, outcome))
order = []
for i in range(N_ROUNDS):
    kinds = ["labs", "medications", "events"]
    rng.shuffle(kinds)
    order += ["r%d_%s.csv" % (i, k) for k in kinds]
with open(os.path.join(out, "order"), "w") as f:
    f.write("\n".join(order) + "\n")
