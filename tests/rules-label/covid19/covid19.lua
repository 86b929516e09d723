-- Rule specs under the US COVID-19 label (tests/rules-label/covid19.conf):
-- domain §6 cases 5, 6, 7 and 22, and the COVID-19 OAT3 row (UNVERIFIED,
-- domain §1.9).

local function on(t, pid, dose, start)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = dose or 4,
    start = start or "2026-01-01" }
end

local function lab(t, pid, code, value, unit, at)
  return t:lab { patient_id = pid, code = code, value = value,
    unit = unit or "cells/mm3", at = at or "2026-01-05" }
end

do
  local t = pv.test "covid19: case 5 ALC 199 / 200"
  on(t, "A"); lab(t, "A", "731-0", 199)
  on(t, "B"); lab(t, "B", "731-0", 200)
  t:expect_alert { patient_id = "A", rule = "baricitinib.lymphopenia",
    grade = 4, severity = "critical",
    action_has = "Avoid initiation or interrupt baricitinib until ALC >= 200 "
      .. "cells/mm3 (US label, COVID-19)" }
  t:expect_alert { patient_id = "B", rule = "baricitinib.lymphopenia",
    grade = 3, action_has = "maintain dose (US label, COVID-19)" }
  t:expect_no_alert { patient_id = "B", action_has = "Avoid initiation" }
end

do
  local t = pv.test "covid19: case 6 ANC 499 / 500"
  on(t, "A"); lab(t, "A", "751-8", 499)
  on(t, "B"); lab(t, "B", "751-8", 500)
  t:expect_alert { patient_id = "A", rule = "baricitinib.neutropenia",
    action_has = "Avoid initiation or interrupt baricitinib until ANC >= 500" }
  t:expect_no_alert { patient_id = "B", action_has = "Avoid initiation" }
end

do
  local t = pv.test "covid19: case 7 Hb 7.5 g/dL, no label threshold"
  on(t, "A"); lab(t, "A", "718-7", 7.5, "g/dL")
  t:expect_alert { rule = "baricitinib.anemia", grade = 3, severity = "high",
    action_has = "No label action" }
  t:expect_no_alert { action_has = "Interrupt" }
end

do
  local t = pv.test "covid19: initiation thresholds ALC 200, ANC 500, no Hb"
  local cases = {
    { "A1", "731-0", 199, "cells/mm3", true },
    { "A2", "731-0", 200, "cells/mm3", false },
    { "A3", "731-0", 499, "cells/mm3", false },  -- RA would block
    { "N1", "751-8", 0.499, "10*9/L", true },
    { "N2", "751-8", 500, "/uL", false },
    { "N3", "751-8", 999, "cells/mm3", false },  -- RA would block
    { "H1", "718-7", 7.5, "g/dL", false },
  }
  for _, c in ipairs(cases) do
    lab(t, c[1], c[2], c[3], c[4], "2026-01-05")
    on(t, c[1], 4, "2026-01-10")
    if c[5] then
      t:expect_alert { patient_id = c[1],
        rule = "baricitinib.initiation_blocked", severity = "high" }
    else
      t:expect_no_alert { patient_id = c[1],
        rule = "baricitinib.initiation_blocked" }
    end
  end
end

do
  local t = pv.test "covid19: case 22 renal dosing on 4 mg"
  local cases = { { "E60", 60, nil }, { "E59", 59, 2 }, { "E29", 29, 1 },
    { "E15", 15, 1 }, { "E14", 14, false } }
  for _, c in ipairs(cases) do
    on(t, c[1], 4)
    t:lab { patient_id = c[1], code = "98979-8", value = c[2],
      unit = "mL/min/1.73m2", at = "2026-01-05" }
    if c[3] == nil then
      t:expect_no_alert { patient_id = c[1] }
    elseif c[3] then
      t:expect_alert { patient_id = c[1], rule = "baricitinib.dose_adjustment",
        severity = "medium", action_has = ("Reduce baricitinib to %d mg once "
          .. "daily"):format(c[3]) }
    else
      t:expect_alert { patient_id = c[1], rule = "baricitinib.dose_adjustment",
        severity = "high", grade = 4,
        action_has = "also not recommended on dialysis, in ESRD or AKI" }
    end
  end
end

do
  local t = pv.test "covid19: probenecid halves 4 mg (UNVERIFIED row)"
  on(t, "P1", 4)
  t:exposure { patient_id = "P1", drug = "probenecid", dose = 500,
    start = "2026-01-03" }
  t:expect_alert { rule = "baricitinib.dose_adjustment", key = "oat3",
    action_has = "Reduce baricitinib to 2 mg", detail_has = "UNVERIFIED" }
end

do
  local t = pv.test "covid19: the CBC reminder names the COVID-19 limits"
  on(t, "C1", 4)
  t:tick "2026-03-27T00:00:00Z"
  t:expect_alert { rule = "baricitinib.cbc_overdue",
    action_has = "with ANC < 500 cells/mm3, ALC < 200 cells/mm3 (" }
end
