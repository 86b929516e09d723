-- Specs for plugins/renal.lua: baricitinib.dose_adjustment (domain §1.5,
-- §1.9, §6 cases 21 and 24) with the default label (US, RA).  Cases 22
-- (US COVID-19), 23 and 24-EU are in tests/rules-label/.

local function on(t, pid, dose, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = dose,
    start = start or "2026-01-01", ["end"] = stop }
end

local function egfr(t, pid, value, at, unit)
  return t:lab { patient_id = pid, code = "62238-1", value = value,
    unit = unit or "mL/min/{1.73_m2}", at = at or "2026-02-01" }
end

local function probenecid(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "Probenecid 500 MG Oral Tablet",
    dose = 500, start = start or "2026-01-10", ["end"] = stop }
end

do
  local t = pv.test "renal: case 21, US RA on 2 mg"
  on(t, "E60", 2); egfr(t, "E60", 60)
  on(t, "E59", 2); egfr(t, "E59", 59)
  on(t, "E30", 2); egfr(t, "E30", 30)
  on(t, "E29", 2); egfr(t, "E29", 29)
  t:expect_no_alert { patient_id = "E60" }
  t:expect_alert { patient_id = "E59", rule = "baricitinib.dose_adjustment",
    signal = "renal", severity = "medium", grade = 2, key = "renal",
    title = "Baricitinib 2 mg too high for eGFR 59: label dose 1 mg",
    action_has = "Reduce baricitinib to 1 mg once daily: eGFR 59 (30 to <60): "
      .. "1 mg once daily (US label, RA) [domain §1.5: LILLY-US-RA",
    detail_has = "eGFR 59 mL/min/{1.73_m2} on 2026-02-01 (CTCAE v5 chronic "
      .. "kidney disease grade 2); on baricitinib 2 mg since 2026-01-01." }
  t:expect_alert { patient_id = "E30", severity = "medium",
    action_has = "Reduce baricitinib to 1 mg" }
  t:expect_alert { patient_id = "E29", severity = "high", grade = 3,
    title = "Baricitinib not recommended at eGFR 29",
    action_has = "Stop baricitinib: eGFR 29 (< 30): baricitinib is not "
      .. "recommended (US label, RA)" }
end

do
  local t = pv.test "renal: already on 1 mg; dose unknown; mL/min"
  on(t, "D1", 1); egfr(t, "D1", 45)
  on(t, "D2", 1); egfr(t, "D2", 29)
  on(t, "D3", nil); egfr(t, "D3", 45)
  on(t, "D4", nil); egfr(t, "D4", 75)
  on(t, "D5", 2); egfr(t, "D5", 45, nil, "mL/min")
  t:expect_no_alert { patient_id = "D1" }
  t:expect_alert { patient_id = "D2", severity = "high",
    title_has = "not recommended" }
  t:expect_alert { patient_id = "D3", severity = "medium",
    title = "Baricitinib dose to verify at eGFR 45: label dose 1 mg",
    detail_has = "dose not recorded" }
  t:expect_no_alert { patient_id = "D4" }
  t:expect_alert { patient_id = "D5", rule = "baricitinib.dose_adjustment" }
end

do
  local t = pv.test "renal: the current dose is the newest record"
  on(t, "C1", 2, "2026-01-01", "2026-02-28")
  on(t, "C1", 1, "2026-03-01")                -- dose reduced
  egfr(t, "C1", 45, "2026-03-10")
  egfr(t, "C1", 45, "2026-02-20")             -- still on 2 mg then
  t:expect_alert { patient_id = "C1", count = 1,
    detail_has = "on 2026-02-20" }
  t:expect_no_alert { detail_has = "on 2026-03-10" }
end

do
  local t = pv.test "renal: dosing days only - start, last day, washout"
  on(t, "W1", 2, "2026-01-01", "2026-03-31"); egfr(t, "W1", 45, "2025-12-31")
  on(t, "W2", 2, "2026-01-01", "2026-03-31"); egfr(t, "W2", 45,
    "2026-03-31T23:59:59Z")
  on(t, "W3", 2, "2026-01-01", "2026-03-31"); egfr(t, "W3", 25, "2026-04-01")
  on(t, "W4", 2, "2026-01-01", "2026-03-31"); egfr(t, "W4", 25, "2026-04-28")
  t:expect_no_alert { patient_id = "W1" }
  t:expect_alert { patient_id = "W2", rule = "baricitinib.dose_adjustment" }
  t:expect_no_alert { patient_id = "W3" }
  t:expect_no_alert { patient_id = "W4" }
end

do
  local t = pv.test "renal: eGFR before the exposure record; escalation"
  egfr(t, "L1", 45, "2026-02-01")
  egfr(t, "L1", 50, "2025-12-01")   -- before the start: not judged
  t:expect_no_alert {}
  on(t, "L1", 2, "2026-01-01")
  t:expect_alert { patient_id = "L1", severity = "medium", count = 1,
    occurrences = 1 }
  egfr(t, "L1", 25, "2026-03-01")
  t:expect_alert { patient_id = "L1", severity = "high", grade = 3,
    count = 1, title_has = "not recommended" }
end

do
  local t = pv.test "renal: case 24 probenecid, US RA on 2 mg -> 1 mg"
  on(t, "P1", 2, "2026-01-01"); probenecid(t, "P1", "2026-01-10")
  probenecid(t, "P2", "2026-01-10"); on(t, "P2", 2, "2026-01-01")
  on(t, "P3", 1, "2026-01-01"); probenecid(t, "P3", "2026-01-10")
  on(t, "P4", 2, "2026-02-01"); probenecid(t, "P4", "2026-01-01", "2026-01-31")
  on(t, "P5", 2, "2026-02-01"); probenecid(t, "P5", "2026-01-01", "2026-02-01")
  t:expect_alert { patient_id = "P1", rule = "baricitinib.dose_adjustment",
    key = "oat3", severity = "medium",
    title = "Baricitinib 2 mg with Probenecid 500 MG Oral Tablet: label dose 1 mg",
    action_has = "Reduce baricitinib to 1 mg once daily while Probenecid",
    detail_has = "are taken together from 2026-01-10" }
  t:expect_alert { patient_id = "P1", action_has = "LILLY-US-RA" }
  t:expect_alert { patient_id = "P2", key = "oat3", count = 1 }
  t:expect_no_alert { patient_id = "P3" }
  t:expect_no_alert { patient_id = "P4" }
  t:expect_alert { patient_id = "P5", key = "oat3" } -- one shared day
end

do
  local t = pv.test "renal: not exposed, nothing"
  egfr(t, "N1", 20)
  egfr(t, "N1", 45, "2026-02-02")
  probenecid(t, "N1", "2026-01-10")
  t:expect_no_alert {}
end
