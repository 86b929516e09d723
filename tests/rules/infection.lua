-- Specs for plugins/infection.lua: baricitinib.serious_infection,
-- .herpes_zoster, .tuberculosis, .opportunistic (domain §1.2, §1.7, §3.3,
-- §6 case 26).

local function on(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function event(t, pid, code, onset, serious, outcome, term)
  return t:event { patient_id = pid, code = code, onset = onset or "2026-02-01",
    serious = serious, outcome = outcome, term = term }
end

do
  local t = pv.test "herpes zoster: case 26 B02.9 -> interrupt until resolved"
  on(t, "Z1")
  event(t, "Z1", "B02.9", "2026-02-01", nil, nil, "Zoster without complications")
  t:expect_alert { rule = "baricitinib.herpes_zoster", signal = "infection",
    severity = "medium", count = 1, title = "Herpes zoster on baricitinib",
    action_has = "Interrupt baricitinib until the herpes zoster episode "
      .. "resolves (OLU-HCP",
    detail_has = "ICD-10-CM B02.9 'Zoster without complications' with "
      .. "onset 2026-02-01 (seriousness not reported)" }
  -- only the zoster rule: no double alert from serious_infection
  t:expect_alert { count = 1 }
end

do
  -- Issue 21: during the exposure the detail says "since"; one day after
  -- its last day it names the range and the washout (pack.exposure_text).
  local t = pv.test "herpes zoster: detail wording during exposure and washout"
  on(t, "ON", "2025-11-01", "2026-01-15")
  event(t, "ON", "B02.9", "2026-01-15")
  on(t, "WO", "2025-11-01", "2026-01-15")
  event(t, "WO", "B02.9", "2026-01-16")
  t:expect_alert { rule = "baricitinib.herpes_zoster", patient_id = "ON",
    detail = "ICD-10-CM B02.9 with onset 2026-01-15 (seriousness not "
      .. "reported). On baricitinib 2 mg since 2025-11-01." }
  t:expect_alert { rule = "baricitinib.herpes_zoster", patient_id = "WO",
    detail = "ICD-10-CM B02.9 with onset 2026-01-16 (seriousness not "
      .. "reported). Baricitinib 2 mg 2025-11-01 to 2026-01-15, within the "
      .. "28-day washout." }
end

do
  local t = pv.test "herpes zoster: severity by seriousness and outcome"
  on(t, "Z2"); event(t, "Z2", "B02.7", nil, true)
  on(t, "Z3"); event(t, "Z3", "B029", nil, false)
  on(t, "Z4"); event(t, "Z4", "B02.0", nil, true, "fatal")
  t:expect_alert { patient_id = "Z2", rule = "baricitinib.herpes_zoster",
    severity = "high", action_has = "until the infection is controlled" }
  t:expect_alert { patient_id = "Z3", severity = "medium",
    detail_has = "not serious" }
  t:expect_alert { patient_id = "Z4", severity = "critical",
    detail_has = "outcome: fatal" }
end

do
  local t = pv.test "serious infection: sepsis, pneumonia, cellulitis"
  on(t, "S1"); event(t, "S1", "A41.9")                 -- flag missing
  on(t, "S2"); event(t, "S2", "J18.9", nil, true)
  on(t, "S3"); event(t, "S3", "J18.9", nil, false)
  on(t, "S4"); event(t, "S4", "L03.115", nil, true, "death")
  on(t, "S5"); event(t, "S5", "A40.0", nil, false)
  t:expect_alert { patient_id = "S1", rule = "baricitinib.serious_infection",
    severity = "high", title = "Sepsis on baricitinib",
    action_has = "Interrupt baricitinib until the infection is controlled "
      .. "(USPI-HL22", detail_has = "Sepsis is treated as serious" }
  t:expect_alert { patient_id = "S2", severity = "high",
    title = "Infection (J18) on baricitinib" }
  t:expect_alert { patient_id = "S3", severity = "medium",
    action_has = "Assess whether the infection is serious" }
  t:expect_alert { patient_id = "S4", severity = "critical" }
  t:expect_alert { patient_id = "S5", severity = "high" }
end

do
  local t = pv.test "tuberculosis: active TB is at least high"
  on(t, "T1"); event(t, "T1", "A15.0")
  on(t, "T2"); event(t, "T2", "A19.9", nil, true)
  t:expect_alert { patient_id = "T1", rule = "baricitinib.tuberculosis",
    severity = "high", title = "Active tuberculosis on baricitinib",
    action_has = "should not be given to patients with active tuberculosis" }
  t:expect_alert { patient_id = "T2", severity = "critical" }
  t:expect_no_alert { rule = "baricitinib.serious_infection" }
end

do
  local t = pv.test "opportunistic: candidiasis, pneumocystosis"
  on(t, "O1"); event(t, "O1", "B37.0", nil, false)
  on(t, "O2"); event(t, "O2", "B59", nil, true)
  t:expect_alert { patient_id = "O1", rule = "baricitinib.opportunistic",
    severity = "medium", title_has = "B37",
    action_has = "candidiasis and pneumocystosis" }
  t:expect_alert { patient_id = "O2", severity = "high",
    action_has = "Interrupt baricitinib until the infection is controlled" }
end

do
  local t = pv.test "infection: codes outside the sets do nothing"
  on(t, "X1")
  event(t, "X1", "J06.9", nil, true)   -- upper respiratory infection
  event(t, "X1", "B00.9", nil, false)  -- herpes simplex, not zoster
  event(t, "X1", "R76.11", nil, false) -- positive TB skin test (latent)
  t:expect_no_alert {}
end

do
  local t = pv.test "infection: exposure window edges"
  -- exposure 2026-01-01 .. 2026-03-31, washout to 2026-04-28
  on(t, "W1", "2026-01-01", "2026-03-31")
  event(t, "W1", "B02.9", "2025-12-31")
  on(t, "W2", "2026-01-01", "2026-03-31")
  event(t, "W2", "B02.9", "2026-04-28")
  on(t, "W3", "2026-01-01", "2026-03-31")
  event(t, "W3", "B02.9", "2026-04-29")
  t:expect_no_alert { patient_id = "W1" }
  t:expect_alert { patient_id = "W2", rule = "baricitinib.herpes_zoster" }
  t:expect_no_alert { patient_id = "W3" }
end

do
  local t = pv.test "infection: the event arrives before the exposure"
  event(t, "L1", "B02.9", "2026-02-01")
  event(t, "L1", "A41.9", "2026-03-01", true)
  event(t, "L1", "A15.0", "2025-12-01") -- before start: nothing
  t:expect_no_alert {}
  on(t, "L1", "2026-01-01")
  t:expect_alert { rule = "baricitinib.herpes_zoster", count = 1 }
  t:expect_alert { rule = "baricitinib.serious_infection", count = 1,
    severity = "high" }
  t:expect_no_alert { rule = "baricitinib.tuberculosis" }
end

do
  local t = pv.test "infection: dedup by ICD-10-CM category"
  on(t, "D1")
  event(t, "D1", "B02.9", "2026-02-01")
  event(t, "D1", "B02.9", "2026-02-02")
  event(t, "D1", "J18.9", "2026-02-03", true)
  event(t, "D1", "A41.9", "2026-02-04", true)
  t:expect_alert { rule = "baricitinib.herpes_zoster", count = 1,
    occurrences = 2, key = "herpes_zoster:B02" }
  t:expect_alert { rule = "baricitinib.serious_infection", count = 2 }
end

do
  local t = pv.test "infection: not exposed, nothing"
  event(t, "N1", "B02.9", nil, true)
  event(t, "N1", "A41.9", nil, true)
  event(t, "N1", "A15.0", nil, true)
  event(t, "N1", "B59", nil, true)
  t:exposure { patient_id = "N1", drug = "tofacitinib", dose = 5,
    start = "2026-01-01" }
  t:expect_no_alert {}
end
