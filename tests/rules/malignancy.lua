-- Specs for plugins/malignancy.lua: baricitinib.malignancy (domain §1.2,
-- §1.8; issue 14).  Washout 28 days.

local RULE = "baricitinib.malignancy"

local function bari(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 4,
    start = start or "2026-01-01", ["end"] = stop }
end

local function event(t, pid, code, onset, term)
  return t:event { patient_id = pid, code = code,
    onset = onset or "2026-03-01", term = term }
end

do
  local t = pv.test "malignancy: lymphoma, lung, NMSC, other, uncertain"
  for _, p in ipairs { "LY", "LU", "SK", "BR", "MD" } do bari(t, p) end
  event(t, "LY", "C83.30", nil, "Diffuse large B-cell lymphoma")
  event(t, "LU", "C34.90")
  event(t, "SK", "C44.91")
  event(t, "BR", "C50.911")
  event(t, "MD", "D46.9")
  t:expect_alert { rule = RULE, patient_id = "LY", severity = "high",
    signal = "malignancy", key = "malignancy:C83",
    title = "Lymphoma on baricitinib (boxed warning)",
    detail = "ICD-10-CM C83.30 'Diffuse large B-cell lymphoma' with onset "
      .. "2026-03-01. On baricitinib 4 mg since 2026-01-01 (course started "
      .. "2026-01-01).", action_has = "lymphomas and lung cancers" }
  t:expect_alert { patient_id = "LU", severity = "high",
    title = "Lung cancer on baricitinib (boxed warning)" }
  t:expect_alert { patient_id = "SK", severity = "medium",
    action_has = "Periodic skin examination" }
  t:expect_alert { patient_id = "BR", severity = "high",
    title = "Malignancy (C50) on baricitinib" }
  t:expect_alert { patient_id = "MD", severity = "low",
    title = "Neoplasm of uncertain behaviour (D46) on baricitinib" }
end

do
  local t = pv.test "malignancy: the window's boundary days"
  -- last day 2026-01-31: covered to 2026-02-28T23:59:59Z.
  for _, p in ipairs { "BEFORE", "START", "WASHOUT", "AFTER" } do
    bari(t, p, "2026-01-10", "2026-01-31")
  end
  event(t, "BEFORE", "C34.1", "2026-01-09")   -- a history instead
  event(t, "START", "C34.1", "2026-01-10")
  event(t, "WASHOUT", "C34.1", "2026-02-28")
  event(t, "AFTER", "C34.1", "2026-03-01")
  t:expect_no_alert { patient_id = "BEFORE", key = "malignancy:C34" }
  t:expect_alert { patient_id = "START", key = "malignancy:C34" }
  t:expect_alert { patient_id = "WASHOUT", key = "malignancy:C34" }
  t:expect_no_alert { patient_id = "AFTER" }
end

do
  local t = pv.test "malignancy: a history at initiation, never both"
  event(t, "H1", "C50.911", "2024-05-01")
  bari(t, "H1")
  event(t, "H1", "C50.912", "2026-03-01")     -- the known breast cancer
  t:expect_alert { rule = RULE, patient_id = "H1", count = 1,
    severity = "medium", key = "malignancy_history:2026-01-01",
    title = "Baricitinib started with a history of malignancy",
    detail_has = "malignancy on record before it: ICD-10-CM C50.911 with "
      .. "onset 2024-05-01 (C50; 1 record).", occurrences = 2 }
  event(t, "H1", "C83.30", "2026-04-01")      -- a new cancer: its own alert
  t:expect_alert { rule = RULE, patient_id = "H1", key = "malignancy:C83" }
end

do
  local t = pv.test "malignancy: the other order (exposure last)"
  event(t, "L1", "C34.90", "2026-02-01")
  event(t, "L2", "C44.91", "2025-06-01")
  t:expect_no_alert {}
  bari(t, "L1")
  bari(t, "L2")
  t:expect_alert { rule = RULE, patient_id = "L1", count = 1,
    key = "malignancy:C34" }
  t:expect_alert { rule = RULE, patient_id = "L2", count = 1,
    key = "malignancy_history:2026-01-01" }
  -- an old cancer recorded after the course is stored: the history alert
  bari(t, "L3")
  event(t, "L3", "C50.1", "2020-01-01")
  t:expect_alert { rule = RULE, patient_id = "L3", count = 1,
    key = "malignancy_history:2026-01-01" }
end

do
  local t = pv.test "malignancy: unexposed, and the negative neighbours"
  event(t, "N1", "C34.90", "2026-03-01")      -- no baricitinib
  t:exposure { patient_id = "N1", drug = "tofacitinib", start = "2026-01-01" }
  bari(t, "N2")
  event(t, "N2", "D03.9", "2026-03-01")       -- melanoma in situ
  event(t, "N2", "Z85.3", "2026-03-01")       -- personal history code
  event(t, "N2", "D48.5", "2026-03-01")       -- uncertain, not D45-D47
  event(t, "N2", "C97", "2026-03-01")
  t:expect_no_alert {}
end

do
  local t = pv.test "malignancy: odd codes and text do not fail the rule"
  bari(t, "X1")
  t:event { patient_id = "X1", code = "c34 90", onset = "2026-03-01",
    term = "lung ca, 'NSCLC'", serious = true, outcome = "ongoing" }
  t:event { patient_id = "X1", code = "C", onset = "2026-03-02" }
  t:expect_alert { rule = RULE, patient_id = "X1", count = 1,
    key = "malignancy:C34", severity = "high" }
  t:expect_no_alert { signal = "engine" }
end
