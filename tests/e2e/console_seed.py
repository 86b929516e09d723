#!/usr/bin/env python3
"""console_seed.py DIR: writes the feeds of a realistic review-console
database into DIR, to be read by `pvwatch ingest` (so every alert in it is
raised by the real rule pack, never inserted by hand):

  medications.csv  40 patients: 30 on baricitinib (2 or 4 mg, from
                   2026-01-05 on, some stopped), 10 on methotrexate only
                   (no baricitinib: they must raise nothing)
  labs.csv         a CBC with differential (ANC 751-8, ALC 731-0, Hb 718-7,
                   PLT 777-3) and an ALT (1742-6) every 21 days from
                   2025-12-01 to 2026-09-30 for each of them; most values
                   normal, some patients drift into CTCAE grades 2-4
  events.csv       herpes zoster, a pulmonary embolism, a deep vein
                   thrombosis
  labs.hl7         ORU^R01 results (ANC, ALC) for six more patients on
                   baricitinib, as a lab system sends them (their
                   exposures are in medications.csv); one of them, PV-143,
                   falls into neutropenia through HL7 alone
  hostile.csv, hostile_labs.csv, hostile_events.csv
                   patients whose id or event term is an XSS payload (the
                   console must show them as text)

Deterministic (a fixed seed): the same files every run, so the counts the
browser test expects can be computed from the database, and the
screenshots in docs/img/ can be made again. Patients are ids only, never
names (synthetic data).
"""
import datetime as dt
import os
import random
import sys

if len(sys.argv) != 2:
    sys.exit("usage: console_seed.py DIR")
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rnd = random.Random(16)

DAY0 = dt.datetime(2025, 12, 1, 8, 30)
DRAWS = 15  # every 21 days: 2025-12-01 .. 2026-09-28

# Patients on baricitinib, and what their labs do after the start:
# "anc" drifts the ANC to a floor (10^9/L), "alc" the ALC, "hb" the Hb,
# "plt" the platelets, "alt" raises the ALT (U/L).
TRENDS = {
    101: ("anc", 1.2), 102: ("anc", 0.8), 103: ("anc", 0.42),
    104: ("anc", 1.35), 105: ("alc", 0.45), 106: ("alc", 0.8),
    107: ("hb", 7.6), 108: ("plt", 45.0), 109: ("alt", 260.0),
    110: ("anc", 0.9), 111: ("alt", 180.0), 112: ("anc", 0.6),
    113: ("alc", 0.3), 114: ("hb", 9.1), 115: ("anc", 1.1),
}


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


meds = ["patient_id,drug,drug_code,code_system,start,end,dose,dose_unit,route"]
labs = ["patient_id,code,code_system,name,value,unit,observed_at,ref_low,ref_high"]
exposed = {}
for n in range(101, 131):
    pid = "PV-%d" % n
    start = dt.date(2026, 1, 5) + dt.timedelta(days=2 * (n - 101))
    dose = 4 if n % 3 == 0 else 2
    end = ""
    if n % 7 == 0:  # a quarter or so stopped
        end = (start + dt.timedelta(days=120)).isoformat()
    spell = rnd.choice([
        ("Olumiant %d MG Oral Tablet" % dose,
         "0002-4182-30" if dose == 2 else "0002-4479-30", "NDC"),
        ("baricitinib", "L04AF02", "ATC"),
        ("BARICITINIB %dmg" % dose, "", ""),
    ])
    meds.append("%s,%s,%s,%s,%s,%s,%d,mg,oral" %
                (pid, spell[0], spell[1], spell[2], start.isoformat(), end,
                 dose))
    exposed[n] = start
for n in range(131, 141):
    meds.append("PV-%d,Methotrexate 15 MG,,,2025-06-01,,15,mg,oral" % n)
for n in range(141, 147):
    start = dt.date(2026, 2, 1) + dt.timedelta(days=n - 141)
    meds.append("PV-%d,Olumiant 4 MG Oral Tablet,0002-4479-30,NDC,%s,,4,mg,oral"
                % (n, start.isoformat()))
    exposed[n] = start

NORMAL = {
    "anc": (3.4, 0.7), "alc": (1.9, 0.35), "hb": (13.6, 0.8),
    "plt": (255.0, 35.0), "alt": (24.0, 6.0),
}
SPEC = [
    ("anc", "751-8", "Neutrophils [#/volume] in Blood by Automated count",
     "10*9/L", "2.0", "7.5"),
    ("alc", "731-0", "Lymphocytes [#/volume] in Blood by Automated count",
     "10*9/L", "1.0", "4.8"),
    ("hb", "718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", "12", "16"),
    ("plt", "777-3", "Platelets [#/volume] in Blood by Automated count",
     "10*9/L", "150", "400"),
    ("alt", "1742-6", "Alanine aminotransferase [Enzymatic activity/volume]",
     "U/L", "7", "56"),
]


def value(n, key, t):
    mean, sd = NORMAL[key]
    v = rnd.gauss(mean, sd * 0.5)
    trend = TRENDS.get(n)
    start = exposed.get(n)
    if trend and trend[0] == key and start is not None:
        days = (t.date() - start).days
        if days > 20:
            # Down (or up, for the ALT) to the floor over ~100 days, then
            # back halfway once the dose is interrupted.
            k = min(1.0, (days - 20) / 100.0)
            if days > 190:
                k = 0.5
            v = mean + (trend[1] - mean) * k + rnd.gauss(0, sd * 0.05)
    v = max(v, 0.05)
    return "%.0f" % v if key in ("plt", "alt") else "%.2f" % v


hl7 = []
for n in list(range(101, 141)) + list(range(141, 147)):
    for d in range(DRAWS):
        t = DAY0 + dt.timedelta(days=21 * d, minutes=7 * (n - 100))
        if n >= 141:
            if t.date() < dt.date(2026, 1, 20):
                continue
            obx = []
            for i, (key, code, name, unit, lo, hi) in enumerate(SPEC[:2], 1):
                v = value(n, key, t)
                if n == 143 and key == "anc":  # an HL7 neutropenia
                    v = "%.2f" % max(0.3, 3.2 - 0.35 * d)
                obx.append("OBX|%d|NM|%s^%s^LN||%s|%s^%s^UCUM|%s-%s||||F|||%s"
                           % (i, code, name, v, unit, unit, lo, hi,
                              t.strftime("%Y%m%d%H%M%S")))
            hl7.append("\r".join([
                "MSH|^~\\&|LAB|HOSP|PV|PV|%s||ORU^R01^ORU_R01|C%d%02d|P|2.5.1"
                % (t.strftime("%Y%m%d%H%M%S"), n, d),
                "PID|1||PV-%d^^^HOSP^MR" % n,
                "OBR|1|ORD%d%02d||58410-2^CBC^LN|||%s" %
                (n, d, t.strftime("%Y%m%d%H%M%S")),
            ] + obx))
            continue
        for key, code, name, unit, lo, hi in SPEC:
            if key == "alt" and d % 2:
                continue
            labs.append("PV-%d,%s,LN,%s,%s,%s,%s,%s,%s" %
                        (n, code, name, value(n, key, t), unit, iso(t), lo,
                         hi))

events = ["patient_id,code,code_system,term,onset,serious,outcome",
          "PV-104,B02.9,ICD10CM,Zoster without complications,2026-04-02,no,"
          "recovering",
          "PV-118,I26.99,ICD10CM,Other pulmonary embolism without acute cor "
          "pulmonale,2026-05-11,yes,",
          "PV-121,I82.401,ICD10CM,Acute embolism and thrombosis of unspecified "
          "deep veins of right lower extremity,2026-03-20,yes,",
          "PV-135,B02.9,ICD10CM,Zoster without complications,2026-04-10,no,"]

# XSS payloads in what feeds carry: a patient id and an event term. The
# first patient's id has no '/' so that its patient page has a plain URL.
XSS_PID = "<img src=x onerror=alert('pid')>"
XSS_PID2 = "\"><script>alert('pid2')</script>"
hostile = ["patient_id,drug,start,dose,dose_unit",
           '"%s",baricitinib,2026-01-01,2,mg' % XSS_PID,
           '"%s",baricitinib,2026-01-01,2,mg' % XSS_PID2.replace('"', '""')]
hostile_labs = ["patient_id,code,value,unit,observed_at",
                '"%s",751-8,0.70,10*9/L,2026-02-01T09:00:00Z' % XSS_PID,
                '"%s",751-8,0.40,10*9/L,2026-02-03T09:00:00Z'
                % XSS_PID2.replace('"', '""')]
hostile_events = ["patient_id,code,code_system,term,onset,serious,outcome",
                  '"%s",B02.9,ICD10CM,"Zoster <img src=x onerror=alert(\'term\')>",'
                  '2026-03-02,no,' % XSS_PID,
                  'PV-XSS,T88.7,ICD10CM,"<svg onload=alert(\'svg\')>",2026-03-05,,']


def write(name, rows, sep="\n"):
    with open(os.path.join(out, name), "w", encoding="utf-8", newline="") as f:
        f.write(sep.join(rows) + sep)


write("medications.csv", meds)
write("labs.csv", labs)
write("events.csv", events)
write("labs.hl7", hl7, "\r\n")
write("hostile.csv", hostile)
write("hostile_labs.csv", hostile_labs)
write("hostile_events.csv", hostile_events)
# A rule whose name and title are hostile (a rule author's mistake or
# worse): on the test event code T88.
with open(os.path.join(out, "xss_rule.lua"), "w", encoding="utf-8") as f:
    f.write('''-- A hostile rule title for the console's escaping test (never shipped).
return pv.rule {
  name = "test.<b>xss</b>",
  signal = "test",
  severities = { "low" },
  description = "a rule title with markup",
  on = { event = { "T88" } },
  when = function(ev)
    return pv.alert {
      severity = "low",
      title = "<script>alert('rule title')</script> hostile title",
      detail = "term: " .. tostring(ev.term),
      key = "xss",
      evidence = { ev },
    }
  end,
}
''')
