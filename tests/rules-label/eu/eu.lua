-- Rule specs under the EU SmPC (tests/rules-label/eu.conf): domain §6
-- cases 8, 23 and the EU half of case 24.

local function on(t, pid, dose, start)
  return t:exposure { patient_id = pid, drug = "Olumiant 4 mg film-coated "
    .. "tablets", dose = dose or 4, start = start or "2026-01-01" }
end

local function lab(t, pid, code, value, unit, at)
  return t:lab { patient_id = pid, code = code, value = value,
    unit = unit or "10*9/L", at = at or "2026-01-05" }
end

do
  local t = pv.test "eu: case 8 ANC 0.99 / 1.0 x 10^9/L"
  on(t, "A"); lab(t, "A", "751-8", 0.99)
  on(t, "B"); lab(t, "B", "751-8", 1.0)
  t:expect_alert { patient_id = "A", rule = "baricitinib.neutropenia",
    action_has = "Interrupt baricitinib; it may be restarted once ANC >= "
      .. "1000 cells/mm3 (1.0 x 10^9/L) (EU SmPC)" }
  t:expect_alert { patient_id = "B", rule = "baricitinib.neutropenia",
    action_has = "treatment may continue or be restarted (EU SmPC)" }
end

do
  local t = pv.test "eu: ALC 0.49 and Hb 7.9 interrupt; initiation"
  on(t, "L1"); lab(t, "L1", "731-0", 0.49)
  on(t, "H1"); lab(t, "H1", "718-7", 79, "g/L")
  lab(t, "I1", "751-8", 0.99, nil, "2026-01-05"); on(t, "I1", 4, "2026-01-10")
  lab(t, "I2", "751-8", 1.0, nil, "2026-01-05"); on(t, "I2", 4, "2026-01-10")
  t:expect_alert { patient_id = "L1", rule = "baricitinib.lymphopenia",
    action_has = "Interrupt baricitinib: ALC < 500 cells/mm3 (0.5 x 10^9/L) "
      .. "(EU SmPC)" }
  t:expect_alert { patient_id = "H1", rule = "baricitinib.anemia",
    action_has = "Interrupt baricitinib: Hb < 8 g/dL (EU SmPC)" }
  t:expect_alert { patient_id = "I1", rule = "baricitinib.initiation_blocked",
    action_has = "Do not initiate baricitinib: ANC < 1000 cells/mm3 "
      .. "(1.0 x 10^9/L) (EU SmPC)" }
  t:expect_no_alert { patient_id = "I2",
    rule = "baricitinib.initiation_blocked" }
end

do
  local t = pv.test("eu: case 23 adult on 4 mg, eGFR 45 -> 2 mg, 25 -> not "
    .. "recommended")
  on(t, "E45", 4); lab(t, "E45", "62238-1", 45, "mL/min/{1.73_m2}")
  on(t, "E25", 4); lab(t, "E25", "62238-1", 25, "mL/min/{1.73_m2}")
  on(t, "E2", 2); lab(t, "E2", "62238-1", 45, "mL/min/{1.73_m2}")
  on(t, "C60", 4); lab(t, "C60", "33914-3", 60, "mL/min")
  t:expect_alert { patient_id = "E45", rule = "baricitinib.dose_adjustment",
    severity = "medium", title = "Baricitinib 4 mg too high for eGFR 45: "
      .. "label dose 2 mg", action_has = "(EU SmPC) [domain §1.5: LILLY-EU-RA" }
  t:expect_alert { patient_id = "E25", severity = "high",
    title = "Baricitinib not recommended at eGFR 25" }
  t:expect_no_alert { patient_id = "E2" }
  t:expect_no_alert { patient_id = "C60" }
end

do
  local t = pv.test "eu: case 24 probenecid -> 2 mg"
  on(t, "P4", 4)
  t:exposure { patient_id = "P4", drug = "probenecid", dose = 500,
    start = "2026-01-03" }
  on(t, "P2", 2)
  t:exposure { patient_id = "P2", drug = "probenecid", dose = 500,
    start = "2026-01-03" }
  t:expect_alert { patient_id = "P4", rule = "baricitinib.dose_adjustment",
    key = "oat3", action_has = "Reduce baricitinib to 2 mg once daily while "
      .. "probenecid is given", detail_has = "from 2026-01-03" }
  t:expect_alert { patient_id = "P4", action_has = "MIMS-HK" }
  t:expect_no_alert { patient_id = "P2" }
end
