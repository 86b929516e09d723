-- Specs for plugins/steroid_burden.lua: baricitinib.steroid_burden
-- (domain §1.2, §1.7, §1.10; issue 14).  Washout 28 days.

local RULE = "baricitinib.steroid_burden"

local function bari(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function steroid(t, pid, name, dose, start, stop, extra)
  local e = { patient_id = pid, drug = name, dose = dose, start = start,
    ["end"] = stop }
  for k, v in pairs(extra or {}) do e[k] = v end
  return t:exposure(e)
end

do
  local t = pv.test "steroid_burden: 20 mg prednisone for 28 days fires"
  bari(t, "P1")
  steroid(t, "P1", "Prednisone 20 MG", 20, "2026-01-01", "2026-01-28")
  t:expect_alert { rule = RULE, patient_id = "P1", count = 1,
    severity = "medium", signal = "interaction",
    key = "steroid_burden:2026-01-01",
    title = "High corticosteroid burden on baricitinib",
    detail = "Prednisone-equivalent >= 20 mg/day for 28 days (2026-01-01 to "
      .. "2026-01-28, up to 20 mg/day) while exposed to baricitinib (course "
      .. "started 2026-01-01): Prednisone 20 MG 20 mg/day (= 20 mg "
      .. "prednisone) 2026-01-01 to 2026-01-28.",
    action_has = "Consider Pneumocystis (PJP) prophylaxis" }
end

do
  local t = pv.test "steroid_burden: the boundaries (27 days, 19 mg)"
  bari(t, "D27")
  steroid(t, "D27", "prednisone", 20, "2026-01-01", "2026-01-27")
  bari(t, "MG19")
  steroid(t, "MG19", "prednisone", 19, "2026-01-01", "2026-03-31")
  t:expect_no_alert { rule = RULE }
end

do
  local t = pv.test "steroid_burden: equivalences and concurrent records"
  local function course(pid, name, dose)
    bari(t, pid)
    steroid(t, pid, name, dose, "2026-01-01", "2026-02-28")
  end
  course("MP", "Methylprednisolone 16 mg", 16)  -- = 20
  course("DX", "Dexamethasone", 3)              -- = 20
  course("HC", "Hydrocortisone", 60)            -- = 15
  course("PL", "prednisolone", 20)
  bari(t, "SUM")
  steroid(t, "SUM", "prednisone", 10, "2026-01-01", "2026-02-28")
  steroid(t, "SUM", "prednisolone", 10, "2026-01-15", "2026-02-28")
  t:expect_alert { rule = RULE, patient_id = "MP",
    detail_has = "(= 20 mg prednisone)" }
  t:expect_alert { rule = RULE, patient_id = "DX" }
  t:expect_no_alert { rule = RULE, patient_id = "HC" }
  t:expect_alert { rule = RULE, patient_id = "PL" }
  t:expect_alert { rule = RULE, patient_id = "SUM", count = 1,
    detail_has = "for 45 days (2026-01-15 to 2026-02-28" }
end

do
  local t = pv.test "steroid_burden: the washout's boundary days"
  -- baricitinib last day 2026-01-31: covered to 2026-02-28T23:59:59Z.
  bari(t, "IN", "2025-12-01", "2026-01-31")
  steroid(t, "IN", "prednisone", 20, "2026-02-01", "2026-02-28")
  bari(t, "OUT", "2025-12-01", "2026-01-31")
  steroid(t, "OUT", "prednisone", 20, "2026-02-02", "2026-03-01")
  t:expect_alert { rule = RULE, patient_id = "IN",
    key = "steroid_burden:2025-12-01", detail_has = "for 28 days" }
  t:expect_no_alert { rule = RULE, patient_id = "OUT" }
end

do
  local t = pv.test "steroid_burden: the other order, and unexposed"
  steroid(t, "L1", "prednisone", 40, "2025-12-01", "2026-03-31")
  t:expect_no_alert { rule = RULE }
  bari(t, "L1", "2026-01-15")
  t:expect_alert { rule = RULE, patient_id = "L1", count = 1,
    detail_has = "for 76 days (2026-01-15 to 2026-03-31, up to 40 mg/day)" }
  steroid(t, "N1", "prednisone", 40, "2025-12-01", "2026-03-31")
  t:exposure { patient_id = "N1", drug = "azathioprine", dose = 100,
    start = "2026-01-01" }
  t:expect_no_alert { rule = RULE, patient_id = "N1" }
end

do
  local t = pv.test "steroid_burden: doses in words, local routes, ongoing"
  bari(t, "X1")
  steroid(t, "X1", "prednisone", nil, "2026-01-01", "2026-03-31",
    { dose_unit = "as directed" })
  steroid(t, "X1", "prednisone", 1, "2026-01-01", "2026-03-31",
    { dose_unit = "mg/kg" })
  steroid(t, "X1", "budesonide", 9, "2026-01-01", "2026-03-31")
  steroid(t, "X1", "hydrocortisone cream", 100, "2026-01-01", "2026-03-31",
    { route = "topical" })
  t:expect_no_alert { rule = RULE }
  t:expect_no_alert { signal = "engine" }
  -- ongoing records count up to the last recorded day: a refill proves it
  bari(t, "O1")
  steroid(t, "O1", "prednisone", 30, "2026-01-01")
  t:expect_no_alert { rule = RULE, patient_id = "O1" }
  steroid(t, "O1", "prednisone", 30, "2026-02-15")   -- the refill
  t:expect_alert { rule = RULE, patient_id = "O1", count = 1,
    detail_has = "for 46 days (2026-01-01 to 2026-02-15" }
end
