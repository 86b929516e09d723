-- Specs for plugins/screening_missing.lua: baricitinib.screening_missing
-- (scheduled; domain §1.2, §1.4, §1.7; issue 14).  Course start
-- 2026-03-01: window 2025-12-01 (day -90) to 2026-03-15 (day +14).

local RULE = "baricitinib.screening_missing"

local function bari(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-03-01", ["end"] = stop }
end

local function igra(t, pid, at, value)
  return t:lab { patient_id = pid, code = "64084-6", value = value or "Negative",
    at = at }
end

local function hbsag(t, pid, at)
  return t:lab { patient_id = pid, code = "5196-1", value = "Non-reactive",
    at = at }
end

do
  local t = pv.test "screening_missing: nothing on record, opened on day 14"
  bari(t, "P1")
  t:tick "2026-03-14T23:59:59Z"
  t:expect_no_alert { rule = RULE }
  t:tick "2026-03-15T00:00:00Z"
  t:expect_alert { rule = RULE, patient_id = "P1", count = 1,
    severity = "medium", signal = "monitoring",
    key = "screening_missing:2026-03-01",
    title = "Baricitinib started without TB and hepatitis B screening",
    detail = "Course started 2026-03-01; no latent-TB test (IGRA or "
      .. "tuberculin skin test) and no hepatitis B serology (HBsAg, "
      .. "anti-HBc, anti-HBs) between 2025-12-01 and 2026-03-15.",
    action_has = "Test for latent TB before and during therapy" }
  t:tick "2026-03-16"
  t:tick "2026-04-16"
  t:expect_alert { rule = RULE, count = 1, occurrences = 1 }
end

do
  local t = pv.test "screening_missing: the window's boundary days"
  bari(t, "EDGE"); igra(t, "EDGE", "2025-12-01"); hbsag(t, "EDGE", "2026-03-15")
  bari(t, "EARLY"); igra(t, "EARLY", "2025-11-30T23:59:59Z")
  hbsag(t, "EARLY", "2026-03-01")
  bari(t, "LATE"); igra(t, "LATE", "2026-03-01")
  hbsag(t, "LATE", "2026-03-15T00:00:01Z")
  t:tick "2026-03-20"
  t:expect_no_alert { rule = RULE, patient_id = "EDGE" }
  t:expect_alert { rule = RULE, patient_id = "EARLY",
    title = "Baricitinib started without TB screening" }
  t:expect_alert { rule = RULE, patient_id = "LATE",
    title = "Baricitinib started without hepatitis B screening" }
end

do
  local t = pv.test "screening_missing: a refill is not a new course"
  igra(t, "R1", "2026-02-01"); hbsag(t, "R1", "2026-02-01")
  bari(t, "R1", "2026-03-01", "2026-03-31")
  bari(t, "R1", "2026-04-10")                 -- inside the washout
  t:tick "2026-06-01"
  t:expect_no_alert { rule = RULE }
end

do
  local t = pv.test "screening_missing: unexposed patients are not asked"
  t:exposure { patient_id = "N1", drug = "azathioprine", start = "2026-01-01" }
  t:tick "2026-06-01"
  t:expect_no_alert { rule = RULE }
end

do
  local t = pv.test "screening_missing: text results count as tests done"
  bari(t, "X1")
  igra(t, "X1", "2026-02-20", "Indeterminate")
  t:lab { patient_id = "X1", code = "16933-4", value = "see comment",
    at = "2026-02-20" }
  t:tick "2026-04-01"
  t:expect_no_alert { rule = RULE }
  t:expect_no_alert { signal = "engine" }
end

do
  local t = pv.test "screening_missing: results arriving late, before the tick"
  bari(t, "L1")
  hbsag(t, "L1", "2026-02-10")                -- stored after the exposure
  t:lab { patient_id = "L1", code = "1648-5", value = 3, unit = "mm",
    at = "2026-03-10" }                       -- TST read on day 9
  t:tick "2026-03-20"
  t:expect_no_alert { rule = RULE }
end
