-- Specs for the shared "judged if exposed; a late exposure looks back"
-- helper (scripts/pack.lua: pack.when_exposed, pack.judge, pack.look_back,
-- pack.covered) through the plugins that use it.  Default label: US, RA.
-- Exposure windows: docs/rules.md "Exposure windows" (washout 28 days
-- after the last day of dosing; domain §1.4 "while exposed").

local EXPOSURE = { drug = "baricitinib", dose = 2, start = "2026-01-01",
  ["end"] = "2026-03-31" } -- covered up to 2026-04-28T23:59:59Z

-- Facts of every rule that uses the helper, inside, before and after the
-- exposure window.  Each is stored for one patient by add(t, pid).
local LABS = {
  { code = "751-8", value = 1200, unit = "cells/mm3", at = "2026-02-01" },
  { code = "751-8", value = 800, unit = "cells/mm3", at = "2026-02-08" },
  { code = "751-8", value = 300, unit = "cells/mm3", at = "2025-12-31" },
  { code = "731-0", value = 450, unit = "cells/mm3", at = "2026-04-28" },
  { code = "731-0", value = 100, unit = "cells/mm3", at = "2026-04-29" },
  { code = "718-7", value = 7.5, unit = "g/dL", at = "2026-02-02" },
  { code = "777-3", value = 60000, unit = "cells/mm3", at = "2026-02-03" },
  { code = "1742-6", value = 150, unit = "U/L", ref_high = 40,
    at = "2026-02-04" },
  { code = "1975-2", value = 3.0, unit = "mg/dL", ref_high = 1.2,
    at = "2026-02-10" },
  { code = "2093-3", value = 350, unit = "mg/dL", at = "2026-02-05" },
  -- eGFR: the dose rule counts dosing days only (taking = true).
  { code = "33914-3", value = 45, unit = "mL/min/{1.73_m2}",
    at = "2026-03-31T23:00:00Z" },
  { code = "33914-3", value = 20, unit = "mL/min/{1.73_m2}",
    at = "2026-04-01" },
  { code = "5196-1", value = "positive", at = "2026-02-06" },
  { code = "2106-3", value = "positive", at = "2026-02-07" },
  { code = "48065-7", value = 1.2, unit = "ug/mL", ref_high = 0.5,
    at = "2026-02-09" },
}
local EVENTS = {
  { code = "I26.99", term = "Pulmonary embolism", onset = "2026-02-11" },
  { code = "B02.9", term = "Zoster", onset = "2026-02-12", serious = true },
  { code = "K63.1", onset = "2026-02-13" },
  { code = "C34.90", onset = "2026-02-14" },
  { code = "O09.91", onset = "2026-02-07" },
  { code = "R99", outcome = "fatal", onset = "2026-04-20" },
}

local function add(t, pid)
  for _, l in ipairs(LABS) do
    local row = { patient_id = pid }
    for k, v in pairs(l) do row[k] = v end
    t:lab(row)
  end
  for _, e in ipairs(EVENTS) do
    local row = { patient_id = pid }
    for k, v in pairs(e) do row[k] = v end
    t:event(row)
  end
end

local function expose(t, pid, e)
  local row = { patient_id = pid }
  for k, v in pairs(e or EXPOSURE) do row[k] = v end
  return t:exposure(row)
end

-- The alerts of one patient, by rule and key, without ids.
local function by_rule(t, pid)
  local out, n = {}, 0
  for _, a in ipairs(t:alerts()) do
    if a.patient_id == pid then
      out[a.rule .. " " .. a.key] = ("%s|%s|%s|%s|%s|%s"):format(a.severity,
        tostring(a.grade), a.occurrences, a.title, a.detail, a.action)
      n = n + 1
    end
  end
  return out, n
end

do
  local t = pv.test "pack: the same alerts whatever the order of arrival"
  expose(t, "FIRST"); add(t, "FIRST")
  add(t, "LAST"); expose(t, "LAST")
  local first, nfirst = by_rule(t, "FIRST")
  local last, nlast = by_rule(t, "LAST")
  t:expect(nfirst == nlast, ("%d alerts with the exposure first, %d with it "
    .. "last"):format(nfirst, nlast))
  for k, v in pairs(first) do
    t:expect(last[k] == v, ("%s: exposure first %s, last %s"):format(k, v,
      tostring(last[k])))
  end
  -- What the window covers, for each rule of the helper.
  for _, pid in ipairs { "FIRST", "LAST" } do
    t:expect_alert { patient_id = pid, rule = "baricitinib.neutropenia",
      grade = 3, occurrences = 2, count = 1 }
    -- 2026-04-28 is the last washout day: covered; 04-29 is not.
    t:expect_alert { patient_id = pid, rule = "baricitinib.lymphopenia",
      grade = 3, occurrences = 1, detail_has = "ALC 450 cells/mm3" }
    t:expect_alert { patient_id = pid, rule = "baricitinib.anemia",
      grade = 3 }
    t:expect_alert { patient_id = pid, rule = "baricitinib.thrombocytopenia",
      grade = 2 }
    t:expect_alert { patient_id = pid, rule = "baricitinib.transaminase_rise",
      grade = 2 }
    t:expect_alert { patient_id = pid, rule = "baricitinib.hys_law",
      count = 1 }
    t:expect_alert { patient_id = pid, rule = "baricitinib.lipid_rise",
      grade = 2 }
    -- The last day of dosing counts whole; the washout does not.
    t:expect_alert { patient_id = pid, rule = "baricitinib.dose_adjustment",
      key = "renal", occurrences = 1, detail_has = "eGFR 45" }
    t:expect_no_alert { patient_id = pid,
      rule = "baricitinib.dose_adjustment", detail_has = "eGFR 20" }
    t:expect_alert { patient_id = pid, rule = "baricitinib.hbv",
      key = "hbsag" }
    t:expect_alert { patient_id = pid, rule = "baricitinib.pregnancy",
      occurrences = 2, count = 1 }
    t:expect_alert { patient_id = pid, rule = "baricitinib.ddimer" }
    t:expect_alert { patient_id = pid, rule = "baricitinib.vte" }
    t:expect_alert { patient_id = pid, rule = "baricitinib.herpes_zoster",
      severity = "high" }
    t:expect_alert { patient_id = pid, rule = "baricitinib.gi_perforation",
      severity = "critical" }
    t:expect_alert { patient_id = pid, rule = "baricitinib.malignancy",
      key = "malignancy:C34" }
    t:expect_alert { patient_id = pid, rule = "baricitinib.death" }
    t:expect_no_alert { patient_id = pid, signal = "engine" }
  end
end

do
  -- The first hCG and the O code are on the same day: the merged list of
  -- the look-back is in order of time, so the lab that came first in the
  -- feed is not what decides the detail.
  local t = pv.test "pack: labs and events of one rule looked back in time order"
  t:event { patient_id = "P1", code = "O09.91", onset = "2026-02-01" }
  t:lab { patient_id = "P1", code = "2106-3", value = "positive",
    at = "2026-02-15" }
  expose(t, "P1")
  t:expect_alert { rule = "baricitinib.pregnancy", occurrences = 2,
    count = 1, detail_has = "ICD-10-CM O09.91 on 2026-02-01" }
end

do
  local t = pv.test "pack: a fact an older exposure covers is judged once"
  expose(t, "R1", { drug = "baricitinib", dose = 2, start = "2026-01-01",
    ["end"] = "2026-01-31" }) -- covered up to 2026-02-28T23:59:59Z
  t:lab { patient_id = "R1", code = "751-8", value = 800,
    unit = "cells/mm3", at = "2026-02-10" }
  t:lab { patient_id = "R1", code = "751-8", value = 700,
    unit = "cells/mm3", at = "2026-03-10" } -- no exposure yet
  t:expect_alert { rule = "baricitinib.neutropenia", occurrences = 1 }
  -- The refill arrives last and also covers 2026-02-10: only the result
  -- of 2026-03-10 is new to the rule.
  expose(t, "R1", { drug = "baricitinib", dose = 2, start = "2026-02-05" })
  t:expect_alert { rule = "baricitinib.neutropenia", occurrences = 2,
    count = 1 }
end

do
  local t = pv.test "pack: a result the look-back cannot grade fails the rule"
  -- On arrival the percentage would raise the engine alert (tests/rules/
  -- cytopenia.lua); found by a late exposure it does too, instead of a
  -- log line nobody reads, when the rule has nothing else to say (lipids:
  -- the only cholesterol is in '%').  Beside a result that does alert (the
  -- ALC of 450 cells/mm3, grade 3) the alert wins: one bad result must not
  -- hide a real one, so the ungradable one is logged (scripts/pack.lua).
  t:lab { patient_id = "E1", code = "26474-7", value = 12, unit = "%",
    at = "2026-02-01" }
  t:lab { patient_id = "E1", code = "731-0", value = 450,
    unit = "cells/mm3", at = "2026-02-02" }
  t:lab { patient_id = "E1", code = "2093-3", value = 350, unit = "%",
    at = "2026-02-03" }
  expose(t, "E1")
  t:expect_alert { rule = "baricitinib.lipid_rise", signal = "engine",
    key = "rule-error", detail_has = "cannot grade cholesterol 350" }
  t:expect_alert { rule = "baricitinib.lymphopenia", signal = "cytopenia",
    detail_has = "450" }
  t:expect_no_alert { rule = "baricitinib.lymphopenia", signal = "engine" }
  -- Rules whose results could be judged are not affected.
  t:expect_no_alert { rule = "baricitinib.neutropenia" }
end

do
  -- A pending (I) or unverified (R) result is never given to on.lab
  -- (docs/rules.md, the obs.status table), so a late exposure's look-back
  -- does not judge it either: the same alerts in any order of arrival.
  local t = pv.test "pack: the look-back skips results on.lab never sees"
  t:lab { patient_id = "S1", code = "751-8", value = 400,
    unit = "cells/mm3", at = "2026-02-10", status = "R" }
  t:lab { patient_id = "S1", code = "751-8", value = 300,
    unit = "cells/mm3", at = "2026-02-11", status = "I" }
  expose(t, "S1")
  t:expect_no_alert { patient_id = "S1", rule = "baricitinib.neutropenia" }
  t:lab { patient_id = "S1", code = "751-8", value = 900,
    unit = "cells/mm3", at = "2026-02-12" }
  t:expect_alert { patient_id = "S1", rule = "baricitinib.neutropenia",
    occurrences = 1, detail_has = "900" }
end
