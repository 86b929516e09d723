-- Specs for baricitinib.neutropenia (plugins/cytopenia.lua), run by
-- 'pvwatch test' (core/cli_test.c): each pv.test case is a fresh in-memory
-- database with the configured plugins.  Default label: US, RA.
--
-- CTCAE v5 "Neutrophil count decreased" (domain §2): grade 2 is
-- 1000 <= ANC < 1500, grade 3 is 500 <= ANC < 1000, grade 4 ANC < 500
-- cells/mm3; the label interrupts below 1000 (domain §1.4).  The exposure
-- window is core/rules_api.lua covers(): from the start instant; with an
-- end, through the end's day plus exposure.washout_days (28).

local RULE = "baricitinib.neutropenia"

-- on(t, pid, start, stop): a baricitinib 2 mg exposure.
local function on(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function anc(t, pid, value, unit, at, code)
  return t:lab { patient_id = pid, code = code or "751-8", value = value,
    unit = unit or "cells/mm3", at = at or "2026-02-01" }
end

-- The boundaries, one patient per value so that dedup does not merge
-- them: { value, grade (nil: no alert), severity, interrupts }.
local BOUNDS = {
  cells = {
    unit = "cells/mm3",
    { 1500, nil }, { 1499, 2, "medium", false }, { 1000, 2, "medium", false },
    { 999, 3, "high", true }, { 500, 3, "high", true },
    { 499, 4, "critical", true },
  },
  giga = {
    unit = "10*9/L",
    { 1.5, nil }, { 1.499, 2, "medium", false }, { 1.0, 2, "medium", false },
    { 0.999, 3, "high", true }, { 0.5, 3, "high", true },
    { 0.499, 4, "critical", true },
  },
  per_ul = {
    unit = "/uL",
    { 1500, nil }, { 1499, 2, "medium", false }, { 1000, 2, "medium", false },
    { 999, 3, "high", true }, { 500, 3, "high", true },
    { 499, 4, "critical", true },
  },
  kilo_per_ul = {
    unit = "10*3/uL",
    { 1.5, nil }, { 1.499, 2, "medium", false }, { 0.999, 3, "high", true },
    { 0.499, 4, "critical", true },
  },
}

for _, name in ipairs { "cells", "giga", "per_ul", "kilo_per_ul" } do
  local set = BOUNDS[name]
  local t = pv.test("neutropenia boundaries in " .. set.unit)
  for i, c in ipairs(set) do
    local pid = ("%s-%d"):format(name, i)
    on(t, pid)
    anc(t, pid, c[1], set.unit)
    if c[2] then
      t:expect_alert { rule = RULE, patient_id = pid, grade = c[2],
        severity = c[3], signal = "cytopenia", count = 1,
        title_has = ("grade %d"):format(c[2]) }
      if c[4] then
        t:expect_alert { rule = RULE, patient_id = pid,
          action_has = "Interrupt baricitinib until ANC >= 1000" }
      else
        t:expect_no_alert { rule = RULE, patient_id = pid,
          action_has = "Interrupt" }
      end
    else
      t:expect_no_alert { rule = RULE, patient_id = pid }
    end
  end
end

do
  local t = pv.test "neutropenia: every neutrophil code, and what does not count"
  on(t, "A")
  anc(t, "A", 900, "cells/mm3", "2026-02-01", "26499-4")
  t:expect_alert { rule = RULE, patient_id = "A", grade = 3, count = 1 }
  on(t, "B")
  anc(t, "B", 900, "cells/mm3", "2026-02-01", "753-4")
  t:expect_alert { rule = RULE, patient_id = "B", grade = 3, count = 1 }
  -- A lymphocyte count is not a neutrophil count.
  on(t, "C")
  t:lab { patient_id = "C", code = "731-0", value = 300, unit = "cells/mm3",
    at = "2026-02-01" }
  t:expect_no_alert { rule = RULE, patient_id = "C" }
  -- A value without a number (kept as text) is not graded.
  on(t, "D")
  anc(t, "D", "see comment")
  t:expect_no_alert { rule = RULE, patient_id = "D" }
  -- Normal and grade 1 (below the default LLN 2000) do not alert.
  on(t, "E")
  anc(t, "E", 1800)
  anc(t, "E", 4000, "cells/mm3", "2026-02-02")
  t:expect_no_alert { rule = RULE, patient_id = "E" }
end

do
  local t = pv.test "neutropenia: exposure start and drug"
  -- Not exposed at all, or to another drug.
  anc(t, "NONE", 400)
  t:expect_no_alert { rule = RULE, patient_id = "NONE" }
  t:exposure { patient_id = "MTX", drug = "methotrexate", dose = 15,
    start = "2026-01-01" }
  anc(t, "MTX", 400)
  t:expect_no_alert { rule = RULE, patient_id = "MTX" }
  -- The day before the start, and one second before it.
  on(t, "S1", "2026-03-10")
  anc(t, "S1", 400, nil, "2026-03-09")
  anc(t, "S1", 400, nil, "2026-03-09T23:59:59Z")
  t:expect_no_alert { rule = RULE, patient_id = "S1" }
  -- The start instant itself.
  on(t, "S2", "2026-03-10")
  anc(t, "S2", 400, nil, "2026-03-10T00:00:00Z")
  t:expect_alert { rule = RULE, patient_id = "S2", grade = 4,
    severity = "critical", count = 1 }
  -- The brand name, with strength text, is the same drug.
  t:exposure { patient_id = "OLU", drug = "Olumiant 4 MG Oral Tablet",
    dose = 4, start = "2026-01-01" }
  anc(t, "OLU", 900)
  t:expect_alert { rule = RULE, patient_id = "OLU", grade = 3, count = 1 }
end

do
  local t = pv.test "neutropenia: the 28-day washout after an end"
  -- End on 2026-01-31 (at any time of day): covered through the end of
  -- 2026-02-28, the 28th day after; not from 2026-03-01T00:00:00Z.
  on(t, "W1", "2026-01-01", "2026-01-31T15:00:00Z")
  anc(t, "W1", 400, nil, "2026-02-28")
  t:expect_alert { rule = RULE, patient_id = "W1", grade = 4, count = 1 }
  on(t, "W2", "2026-01-01", "2026-01-31")
  anc(t, "W2", 400, nil, "2026-02-28T23:59:59Z")
  t:expect_alert { rule = RULE, patient_id = "W2", grade = 4, count = 1 }
  on(t, "W3", "2026-01-01", "2026-01-31")
  anc(t, "W3", 400, nil, "2026-03-01T00:00:00Z")
  t:expect_no_alert { rule = RULE, patient_id = "W3" }
  on(t, "W4", "2026-01-01", "2026-01-31")
  anc(t, "W4", 400, nil, "2026-03-02")
  t:expect_no_alert { rule = RULE, patient_id = "W4" }
  -- During the course itself.
  on(t, "W5", "2026-01-01", "2026-01-31")
  anc(t, "W5", 1200, nil, "2026-01-15")
  t:expect_alert { rule = RULE, patient_id = "W5", grade = 2, count = 1 }
end

do
  local t = pv.test "neutropenia: a later exposure looks back at the labs it covers"
  -- Labs first, the exposure after: the same alerts as the other order.
  anc(t, "L1", 1200, nil, "2026-02-01")
  anc(t, "L1", 900, nil, "2026-02-08")
  anc(t, "L2", 900, nil, "2025-12-31") -- before the start: not covered
  on(t, "L1", "2026-01-01")
  on(t, "L2", "2026-01-01")
  t:expect_alert { rule = RULE, patient_id = "L1", grade = 3,
    severity = "high", count = 1 }
  t:expect_no_alert { rule = RULE, patient_id = "L2" }
end

do
  local t = pv.test "neutropenia: escalation and dedup"
  on(t, "E1")
  anc(t, "E1", 1200, nil, "2026-02-01")
  t:expect_alert { rule = RULE, patient_id = "E1", grade = 2,
    severity = "medium", count = 1 }
  anc(t, "E1", 900, nil, "2026-02-08")
  t:expect_alert { rule = RULE, patient_id = "E1", grade = 3,
    severity = "high", count = 1, action_has = "Interrupt" }
  t:expect_no_alert { rule = RULE, patient_id = "E1", grade = 2 }
  anc(t, "E1", 900, nil, "2026-02-15")
  anc(t, "E1", 1200, nil, "2026-02-22") -- a lower grade does not downgrade
  t:expect_alert { rule = RULE, patient_id = "E1", grade = 3, count = 1 }
  local e1
  for _, a in ipairs(t:alerts()) do
    if a.patient_id == "E1" and a.rule == RULE then e1 = a end
  end
  t:expect(e1 and e1.occurrences == 4,
    ("E1: 4 occurrences (opened, escalated, 2 repeats), got %s")
      :format(e1 and tostring(e1.occurrences) or "no alert"))
  t:expect(e1 and e1.status == "open", "E1: the alert stays open")

  on(t, "E2")
  anc(t, "E2", 900, nil, "2026-02-01")
  anc(t, "E2", 900, nil, "2026-02-02")
  t:expect_alert { rule = RULE, patient_id = "E2", grade = 3, count = 1,
    occurrences = 2 }
  -- One alert per patient: E1 and E2 are not merged.
  t:expect_alert { rule = RULE, count = 2 }
end

do
  local t = pv.test "neutropenia: evidence names the lab and the exposure"
  on(t, "V1")
  anc(t, "V1", 0.9, "10*9/L", "2026-02-01T08:30:00Z")
  local a = t:alerts()[1]
  t:expect(a ~= nil and a.key == "neutropenia", "dedup key is 'neutropenia'")
  t:expect(a ~= nil and a.evidence ~= nil
    and a.evidence:find('"code":"751-8"', 1, true) ~= nil
    and a.evidence:find('"kind":"exposure"', 1, true) ~= nil,
    "evidence lists the ANC and the exposure: " .. tostring(a and a.evidence))
  t:expect(a ~= nil and a.detail ~= nil
    and a.detail:find("900 cells/mm3", 1, true) ~= nil,
    "detail gives the value in cells/mm3: " .. tostring(a and a.detail))
end
