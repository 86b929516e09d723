-- Specs for the cytopenia rules other than neutropenia (plugins/cytopenia.lua):
-- baricitinib.lymphopenia, .anemia, .thrombocytopenia, .initiation_blocked.
-- Default label: US, RA (no config).  The COVID-19 and EU cases (domain §6
-- cases 5-8) are in tests/rules-label/.
-- Domain §6 case numbers are cited per test.

-- on(t, pid, start, stop): a baricitinib 2 mg exposure.
local function on(t, pid, start, stop, dose)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = dose or 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function alc(t, pid, value, unit, at)
  return t:lab { patient_id = pid, code = "731-0", value = value,
    unit = unit or "cells/mm3", at = at or "2026-02-01" }
end

local function hb(t, pid, value, unit, at)
  return t:lab { patient_id = pid, code = unit == "mmol/L" and "59260-0"
    or "718-7", value = value, unit = unit or "g/dL",
    at = at or "2026-02-01" }
end

local function plt(t, pid, value, unit, at)
  return t:lab { patient_id = pid, code = "777-3", value = value,
    unit = unit or "cells/mm3", at = at or "2026-02-01" }
end

local function anc(t, pid, value, unit, at)
  return t:lab { patient_id = pid, code = "751-8", value = value,
    unit = unit or "cells/mm3", at = at or "2026-02-01" }
end

----------------------------------------------------------------------------
-- Lymphopenia: CTCAE bands (case 11) and the label threshold (case 3)
----------------------------------------------------------------------------

do
  local t = pv.test "lymphopenia: case 11 CTCAE bands, case 3 label"
  local cases = {
    { "A", 800, nil }, { "B", 799, 2 }, { "C", 500, 2 }, { "D", 499, 3 },
    { "E", 200, 3 }, { "F", 199, 4 },
  }
  for _, c in ipairs(cases) do
    on(t, c[1])
    alc(t, c[1], c[2])
    if c[3] then
      t:expect_alert { rule = "baricitinib.lymphopenia", patient_id = c[1],
        grade = c[3], count = 1 }
    else
      t:expect_no_alert { rule = "baricitinib.lymphopenia",
        patient_id = c[1] }
    end
  end
  t:expect_alert { patient_id = "B", severity = "medium",
    title_has = "Lymphopenia grade 2", action_has = "not reached",
    detail_has = "2026-02-01" }
  -- case 3: ALC 500 -> maintain; ALC 499 -> interrupt
  t:expect_alert { patient_id = "C", action_has = "maintain dose" }
  t:expect_no_alert { patient_id = "C", action_has = "Interrupt" }
  t:expect_alert { patient_id = "D", severity = "high",
    action_has = "Interrupt baricitinib until ALC >= 500 cells/mm3 "
      .. "(US label, RA/AA)" }
  t:expect_alert { patient_id = "F", severity = "critical",
    signal = "cytopenia" }
end

do
  local t = pv.test "lymphopenia: unit variants"
  on(t, "U1"); alc(t, "U1", 0.499, "10*9/L")
  on(t, "U2"); alc(t, "U2", 0.5, "10*3/uL")
  on(t, "U3"); alc(t, "U3", 499, "/uL")
  on(t, "U4"); alc(t, "U4", 0.8, "x10E3/uL")
  on(t, "U5"); alc(t, "U5", 0.49, "G/L")
  t:expect_alert { patient_id = "U1", grade = 3,
    detail_has = "0.499 10*9/L (= 499 cells/mm3)", action_has = "Interrupt" }
  t:expect_alert { patient_id = "U2", grade = 2 }
  t:expect_alert { patient_id = "U3", grade = 3 }
  t:expect_no_alert { patient_id = "U4" }
  t:expect_alert { patient_id = "U5", grade = 3 }
end

do
  local t = pv.test "lymphopenia: a percentage is refused, not guessed"
  on(t, "P1")
  t:lab { patient_id = "P1", code = "26474-7", value = 12, unit = "%",
    at = "2026-02-01" }
  t:expect_alert { rule = "baricitinib.lymphopenia", patient_id = "P1",
    key = "rule-error", signal = "engine" }
  t:expect_no_alert { rule = "baricitinib.lymphopenia", signal = "cytopenia" }
end

do
  local t = pv.test "lymphopenia: escalation keeps one alert"
  on(t, "E1")
  alc(t, "E1", 700, nil, "2026-02-01")
  alc(t, "E1", 450, nil, "2026-02-08")
  alc(t, "E1", 600, nil, "2026-02-15")
  t:expect_alert { rule = "baricitinib.lymphopenia", grade = 3,
    severity = "high", occurrences = 3, count = 1 }
end

----------------------------------------------------------------------------
-- Exposure window edges (washout 28 days by default) and arrival order
----------------------------------------------------------------------------

do
  local t = pv.test("exposure window: day before start, last washout day, "
    .. "day after")
  -- exposure 2026-01-01 .. 2026-03-31; washout to 2026-04-28 inclusive
  on(t, "W1", "2026-01-01", "2026-03-31"); alc(t, "W1", 450, nil,
    "2025-12-31T23:59:59Z")
  on(t, "W2", "2026-01-01", "2026-03-31"); alc(t, "W2", 450, nil,
    "2026-04-28T23:59:59Z")
  on(t, "W3", "2026-01-01", "2026-03-31"); alc(t, "W3", 450, nil,
    "2026-04-29")
  on(t, "W4", "2026-01-01", "2026-03-31"); hb(t, "W4", 7.5, nil,
    "2026-01-01")
  t:expect_no_alert { rule = "baricitinib.lymphopenia", patient_id = "W1" }
  t:expect_alert { rule = "baricitinib.lymphopenia", patient_id = "W2",
    grade = 3 }
  t:expect_no_alert { rule = "baricitinib.lymphopenia", patient_id = "W3" }
  t:expect_alert { rule = "baricitinib.anemia", patient_id = "W4" }
end

do
  -- Issue 21: the detail says whether the lab fell while taking the drug
  -- (through the whole last day) or in the washout after it
  -- (pack.exposure_text; washout 28 days, config default).
  local t = pv.test "lymphopenia: detail wording during exposure and washout"
  on(t, "D1", "2025-11-01", "2026-01-15"); alc(t, "D1", 450, nil,
    "2025-12-01")
  on(t, "D2", "2025-11-01", "2026-01-15"); alc(t, "D2", 450, nil,
    "2026-01-15T23:59:59Z")                 -- last day of dosing
  on(t, "D3", "2025-11-01", "2026-01-15"); alc(t, "D3", 450, nil,
    "2026-01-16")                           -- one day after the end
  t:expect_alert { rule = "baricitinib.lymphopenia", patient_id = "D1",
    detail = "ALC 450 cells/mm3 on 2025-12-01; ALC 450 cells/mm3 < 500: "
      .. "grade 3 (CTCAE v5 lymphocyte count decreased). On baricitinib 2 mg "
      .. "since 2025-11-01." }
  t:expect_alert { rule = "baricitinib.lymphopenia", patient_id = "D2",
    detail_has = ". On baricitinib 2 mg since 2025-11-01." }
  t:expect_alert { rule = "baricitinib.lymphopenia", patient_id = "D3",
    detail_has = "lymphocyte count decreased). Baricitinib 2 mg 2025-11-01 to "
      .. "2026-01-15, within the 28-day washout." }
  t:expect_no_alert { detail_has = "On baricitinib 2 mg since 2025-11-01.",
    patient_id = "D3" }
end

do
  -- A dose change: the 4 mg exposure is in its washout on 2026-02-10 but
  -- the 2 mg one is being taken, so the detail names the 2 mg one.
  local t = pv.test "lymphopenia: detail after a dose change says the new dose"
  on(t, "C1", "2026-01-01", "2026-01-31", 4); on(t, "C1", "2026-02-01")
  alc(t, "C1", 450, nil, "2026-02-10")
  t:expect_alert { rule = "baricitinib.lymphopenia", patient_id = "C1",
    detail_has = "decreased). On baricitinib 2 mg since 2026-02-01." }
end

do
  local t = pv.test "out of order: the lab arrives before the exposure"
  alc(t, "O1", 450, nil, "2026-02-01")
  hb(t, "O1", 9.0, nil, "2026-02-01")
  plt(t, "O1", 40000, nil, "2026-02-01")
  alc(t, "O1", 300, nil, "2025-12-20") -- before start: not an on-drug lab
  t:expect_no_alert {}
  on(t, "O1", "2026-01-01")
  t:expect_alert { rule = "baricitinib.lymphopenia", grade = 3, count = 1,
    detail_has = "450 cells/mm3 on 2026-02-01" }
  t:expect_alert { rule = "baricitinib.anemia", grade = 2 }
  t:expect_alert { rule = "baricitinib.thrombocytopenia", grade = 3 }
end

do
  local t = pv.test "not exposed: no cytopenia alert"
  alc(t, "N1", 150)
  hb(t, "N1", 6.5)
  plt(t, "N1", 10000)
  anc(t, "N1", 300)
  t:exposure { patient_id = "N1", drug = "methotrexate", dose = 15,
    start = "2026-01-01" }
  t:expect_no_alert {}
end

----------------------------------------------------------------------------
-- Anemia: CTCAE bands (case 14) in g/dL, g/L, mmol/L; label (case 4)
----------------------------------------------------------------------------

do
  local t = pv.test "anemia: case 14 bands and case 4 label threshold"
  local cases = {
    { "A", 10.0, "g/dL", nil }, { "B", 9.9, "g/dL", 2 },
    { "C", 8.0, "g/dL", 2 }, { "D", 7.9, "g/dL", 3 },
    { "E", 79, "g/L", 3 }, { "F", 4.8, "mmol/L", 3 },
    { "G", 80, "g/L", 2 }, { "H", 100, "g/L", nil },
    { "I", 6.2, "mmol/L", nil }, { "J", 6.1, "mmol/L", 2 },
  }
  for _, c in ipairs(cases) do
    on(t, c[1])
    hb(t, c[1], c[2], c[3])
    if c[4] then
      t:expect_alert { rule = "baricitinib.anemia", patient_id = c[1],
        grade = c[4], count = 1 }
    else
      t:expect_no_alert { rule = "baricitinib.anemia", patient_id = c[1] }
    end
  end
  t:expect_alert { patient_id = "B", severity = "medium",
    title_has = "Anemia grade 2" }
  t:expect_alert { patient_id = "C", action_has = "maintain dose" }
  t:expect_alert { patient_id = "D", severity = "high",
    action_has = "Interrupt baricitinib until Hb >= 8 g/dL" }
  t:expect_alert { patient_id = "E", action_has = "Interrupt",
    detail_has = "79 g/L (= 7.9 g/dL)" }
  t:expect_alert { patient_id = "F", action_has = "Interrupt" }
  t:expect_no_alert { patient_id = "G", action_has = "Interrupt" }
end

do
  local t = pv.test "anemia: Hb 4.9 mmol/L is CTCAE grade 2 but below 8 g/dL"
  on(t, "M1")
  hb(t, "M1", 4.9, "mmol/L")
  t:expect_alert { rule = "baricitinib.anemia", grade = 2,
    severity = "high", action_has = "Interrupt baricitinib until Hb >= 8" }
end

----------------------------------------------------------------------------
-- Thrombocytopenia: CTCAE bands (case 13); no label threshold
----------------------------------------------------------------------------

do
  local t = pv.test "thrombocytopenia: case 13 bands and units"
  local cases = {
    { "A", 75000, "cells/mm3", nil }, { "B", 74999, "cells/mm3", 2 },
    { "C", 50000, "cells/mm3", 2 }, { "D", 49999, "cells/mm3", 3 },
    { "E", 24999, "cells/mm3", 4 }, { "F", 74.999, "10*9/L", 2 },
    { "G", 49.9, "10*3/uL", 3 }, { "H", 75, "10*3/uL", nil },
    { "I", 24000, "/uL", 4 },
  }
  for _, c in ipairs(cases) do
    on(t, c[1])
    plt(t, c[1], c[2], c[3])
    if c[4] then
      t:expect_alert { rule = "baricitinib.thrombocytopenia",
        patient_id = c[1], grade = c[4], count = 1 }
    else
      t:expect_no_alert { rule = "baricitinib.thrombocytopenia",
        patient_id = c[1] }
    end
  end
  t:expect_alert { patient_id = "B", severity = "medium",
    action_has = "no platelet threshold" }
  t:expect_alert { patient_id = "D", severity = "high" }
  t:expect_alert { patient_id = "E", severity = "critical",
    title_has = "Thrombocytopenia grade 4" }
end

----------------------------------------------------------------------------
-- initiation_blocked (cases 1-4, 9): US RA thresholds
----------------------------------------------------------------------------

do
  local t = pv.test "initiation_blocked: cases 1-4 at the threshold"
  local cases = {
    { "A", anc, 999, true }, { "B", anc, 1000, false },
    { "C", alc, 499, true }, { "D", alc, 500, false },
    { "E", hb, 7.9, true }, { "F", hb, 8.0, false },
  }
  for _, c in ipairs(cases) do
    c[2](t, c[1], c[3], nil, "2026-01-05")
    on(t, c[1], "2026-01-15")
    if c[4] then
      t:expect_alert { rule = "baricitinib.initiation_blocked",
        patient_id = c[1], severity = "high", count = 1 }
    else
      t:expect_no_alert { rule = "baricitinib.initiation_blocked",
        patient_id = c[1] }
    end
  end
  t:expect_alert { patient_id = "A", grade = 3,
    title_has = "Baricitinib started with ANC below",
    detail_has = "ANC 999 cells/mm3 on 2026-01-05, 10 days before "
      .. "baricitinib 2 mg started on 2026-01-15",
    action_has = "Baricitinib initiation is not recommended with ANC < 1000 "
      .. "cells/mm3 (US label, RA/AA)" }
  t:expect_alert { patient_id = "C", title_has = "ALC",
    action_has = "ALC < 500" }
  t:expect_alert { patient_id = "E", title_has = "Hb",
    action_has = "Hb < 8 g/dL" }
end

do
  local t = pv.test "initiation_blocked: case 9 ANC 0.9 10*3/uL"
  anc(t, "U1", 0.9, "10*3/uL", "2026-01-10")
  on(t, "U1", "2026-01-15")
  t:expect_alert { rule = "baricitinib.initiation_blocked", grade = 3,
    detail_has = "0.9 10*3/uL (= 900 cells/mm3)" }
end

do
  local t = pv.test "initiation_blocked: the 14-day window"
  anc(t, "W14", 900, nil, "2026-01-01")       -- exactly 14 days before
  on(t, "W14", "2026-01-15")
  anc(t, "W15", 900, nil, "2025-12-31T23:59:59Z") -- just over 14 days
  on(t, "W15", "2026-01-15")
  anc(t, "WD", 900, nil, "2026-01-15T08:00:00Z") -- the morning of day 1
  on(t, "WD", "2026-01-15")
  anc(t, "WA", 900, nil, "2026-01-16")        -- the day after start
  on(t, "WA", "2026-01-15")
  t:expect_alert { rule = "baricitinib.initiation_blocked",
    patient_id = "W14", detail_has = "14 days before" }
  t:expect_no_alert { rule = "baricitinib.initiation_blocked",
    patient_id = "W15" }
  t:expect_alert { rule = "baricitinib.initiation_blocked",
    patient_id = "WD", detail_has = "on the day of" }
  t:expect_no_alert { rule = "baricitinib.initiation_blocked",
    patient_id = "WA" }
  -- on treatment the interrupt rule speaks instead
  t:expect_alert { rule = "baricitinib.neutropenia", patient_id = "WA" }
end

do
  local t = pv.test "initiation_blocked: the lab arrives after the exposure"
  on(t, "L1", "2026-01-15")
  t:expect_no_alert {}
  alc(t, "L1", 400, nil, "2026-01-08")
  t:expect_alert { rule = "baricitinib.initiation_blocked",
    patient_id = "L1", grade = 3, detail_has = "7 days before" }
  -- a result dated before the window does nothing
  hb(t, "L1", 7.0, nil, "2025-12-01")
  t:expect_no_alert { rule = "baricitinib.initiation_blocked",
    title_has = "Hb" }
end

do
  local t = pv.test "initiation_blocked: a refill is not an initiation"
  on(t, "R1", "2025-10-01", "2026-01-10")
  anc(t, "R1", 900, nil, "2026-01-05")
  on(t, "R1", "2026-01-11")
  t:expect_no_alert { rule = "baricitinib.initiation_blocked" }
  t:expect_alert { rule = "baricitinib.neutropenia", patient_id = "R1" }
end

do
  local t = pv.test "initiation_blocked: not exposed, nothing"
  anc(t, "N1", 400, nil, "2026-01-05")
  alc(t, "N1", 100, nil, "2026-01-05")
  hb(t, "N1", 6.0, nil, "2026-01-05")
  t:exposure { patient_id = "N1", drug = "probenecid", dose = 500,
    start = "2026-01-10" }
  t:expect_no_alert {}
end
