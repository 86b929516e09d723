-- Specs for plugins/thrombosis.lua: baricitinib.vte, .arterial_thrombosis,
-- .ddimer (domain §1.2, §1.8, §3.3, §6 case 25).

local function on(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 4,
    start = start or "2026-01-01", ["end"] = stop }
end

local function event(t, pid, code, onset)
  return t:event { patient_id = pid, code = code, onset = onset or "2026-02-01" }
end

local function ddimer(t, pid, value, ref_high, unit, at, code)
  return t:lab { patient_id = pid, code = code or "48065-7", value = value,
    unit = unit or "mg{FEU}/L", ref_high = ref_high, at = at or "2026-02-01" }
end

do
  local t = pv.test "vte: case 25 I26.99 and I82.401 are critical"
  on(t, "V1"); event(t, "V1", "I26.99")
  on(t, "V2"); event(t, "V2", "I82.401")
  on(t, "V3"); event(t, "V3", "i82.4z1")
  t:expect_alert { patient_id = "V1", rule = "baricitinib.vte",
    signal = "thrombosis", severity = "critical", grade = 3,
    title = "Pulmonary embolism on baricitinib",
    action_has = "Discontinue baricitinib in a patient with suspected VTE, "
      .. "regardless of dose or indication (EU SmPC, MIMS-TH)",
    detail_has = "I26.99 with onset 2026-02-01" }
  t:expect_alert { patient_id = "V2", severity = "critical",
    title = "Deep vein thrombosis on baricitinib" }
  t:expect_no_alert { patient_id = "V2", grade = 3 }
  t:expect_alert { patient_id = "V3", rule = "baricitinib.vte" }
end

do
  local t = pv.test "vte: chronic PE, PE history and other veins do nothing"
  on(t, "X1")
  event(t, "X1", "I27.82")   -- chronic PE
  event(t, "X1", "Z86.711")  -- history of PE
  event(t, "X1", "I82.0")    -- Budd-Chiari, not lower-limb DVT
  t:expect_no_alert {}
end

do
  local t = pv.test "arterial thrombosis: I74, I63, I21 are critical"
  on(t, "A1"); event(t, "A1", "I74.3")
  on(t, "A2"); event(t, "A2", "I63.9")
  on(t, "A3"); event(t, "A3", "I21.4")
  t:expect_alert { patient_id = "A1", rule = "baricitinib.arterial_thrombosis",
    severity = "critical", grade = 3, title = "Arterial thrombosis on baricitinib",
    action_has = "boxed warning (USPI-HL22" }
  t:expect_alert { patient_id = "A2", severity = "critical",
    title = "Ischaemic stroke on baricitinib", detail_has = "MACE" }
  t:expect_alert { patient_id = "A3", severity = "critical",
    title = "Myocardial infarction on baricitinib" }
  t:expect_no_alert { rule = "baricitinib.vte" }
end

do
  local t = pv.test "thrombosis: exposure window edges and arrival order"
  on(t, "W1", "2026-01-01", "2026-03-31"); event(t, "W1", "I26.99", "2025-12-31")
  on(t, "W2", "2026-01-01", "2026-03-31"); event(t, "W2", "I26.99", "2026-04-28")
  on(t, "W3", "2026-01-01", "2026-03-31"); event(t, "W3", "I26.99", "2026-04-29")
  event(t, "L1", "I82.401", "2026-02-10")
  event(t, "L1", "I63.9", "2026-02-11")
  on(t, "L1", "2026-01-01")
  t:expect_no_alert { patient_id = "W1" }
  t:expect_alert { patient_id = "W2", rule = "baricitinib.vte" }
  t:expect_no_alert { patient_id = "W3" }
  t:expect_alert { patient_id = "L1", rule = "baricitinib.vte", count = 1 }
  t:expect_alert { patient_id = "L1", rule = "baricitinib.arterial_thrombosis",
    count = 1 }
end

do
  local t = pv.test "ddimer: above the record's range only"
  on(t, "D1"); ddimer(t, "D1", 1.2, 0.5)
  on(t, "D2"); ddimer(t, "D2", 0.5, 0.5)          -- at the limit
  on(t, "D3"); ddimer(t, "D3", 3.0, nil)          -- no range: no guess
  on(t, "D4"); ddimer(t, "D4", 300, 230, "ng/mL{DDU}", nil, "48066-5")
  t:expect_alert { patient_id = "D1", rule = "baricitinib.ddimer",
    signal = "thrombosis", severity = "medium", title = "D-dimer above range "
      .. "on baricitinib", detail_has = "D-dimer 1.2 mg{FEU}/L on 2026-02-01, "
      .. "above the reference range (upper limit 0.5 mg{FEU}/L",
    action_has = "Evaluate for venous thromboembolism" }
  t:expect_no_alert { patient_id = "D2" }
  t:expect_no_alert { patient_id = "D3" }
  t:expect_alert { patient_id = "D4", rule = "baricitinib.ddimer" }
end

do
  local t = pv.test "ddimer: window edges and the lab before the exposure"
  on(t, "W1", "2026-01-01", "2026-03-31"); ddimer(t, "W1", 2, 0.5, nil, "2025-12-31")
  on(t, "W2", "2026-01-01", "2026-03-31"); ddimer(t, "W2", 2, 0.5, nil, "2026-04-28")
  on(t, "W3", "2026-01-01", "2026-03-31"); ddimer(t, "W3", 2, 0.5, nil, "2026-04-29")
  ddimer(t, "L1", 2, 0.5, nil, "2026-02-01")
  t:expect_no_alert { patient_id = "L1" }
  on(t, "L1", "2026-01-01")
  t:expect_no_alert { patient_id = "W1" }
  t:expect_alert { patient_id = "W2", rule = "baricitinib.ddimer" }
  t:expect_no_alert { patient_id = "W3" }
  t:expect_alert { patient_id = "L1", rule = "baricitinib.ddimer", count = 1 }
end

do
  local t = pv.test "thrombosis: not exposed, nothing"
  event(t, "N1", "I26.99")
  event(t, "N1", "I74.3")
  event(t, "N1", "I21.4")
  ddimer(t, "N1", 5, 0.5)
  t:exposure { patient_id = "N1", drug = "apixaban", dose = 5,
    start = "2026-01-01" }
  t:expect_no_alert {}
end
