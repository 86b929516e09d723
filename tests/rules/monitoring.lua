-- Specs for plugins/monitoring.lua: baricitinib.lipids_overdue and
-- baricitinib.cbc_overdue (scheduled; domain §1.4).
-- Course start 2026-01-01: week 12 = 2026-03-26 (day 84), week 16 =
-- 2026-04-23 (day 112).

local function on(t, pid, start, stop, dose)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = dose or 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function chol(t, pid, at)
  return t:lab { patient_id = pid, code = "2093-3", value = 190,
    unit = "mg/dL", at = at }
end

local function cbc(t, pid, at)
  return t:lab { patient_id = pid, code = "718-7", value = 13.5,
    unit = "g/dL", at = at }
end

----------------------------------------------------------------------------
-- lipids_overdue
----------------------------------------------------------------------------

do
  local t = pv.test "lipids_overdue: fires once after week 16 without a panel"
  on(t, "A")
  t:tick "2026-04-23T00:00:00Z"
  t:expect_no_alert { rule = "baricitinib.lipids_overdue" }
  t:tick "2026-04-24T00:00:00Z"
  t:expect_alert { rule = "baricitinib.lipids_overdue", patient_id = "A",
    signal = "monitoring", severity = "low", count = 1,
    title = "Lipids not checked 12 weeks after starting baricitinib",
    detail_has = "On baricitinib 2 mg since 2026-01-01 (course started "
      .. "2026-01-01); no lipid result between week 12 "
      .. "(2026-03-26) and week 16 (2026-04-23). No lipid result on record.",
    action_has = "12 weeks after initiation (LILLY-US-MON" }
  t:tick "2026-04-25T00:00:00Z"
  t:tick "2026-05-25T00:00:00Z"
  t:expect_alert { rule = "baricitinib.lipids_overdue", count = 1,
    occurrences = 1 }
end

do
  local t = pv.test "lipids_overdue: the 12-16 week window, inclusive"
  on(t, "W12"); chol(t, "W12", "2026-03-26")            -- day 84
  on(t, "W16"); chol(t, "W16", "2026-04-23")            -- day 112
  on(t, "E11"); chol(t, "E11", "2026-03-25T23:59:59Z")  -- too early
  on(t, "L16"); chol(t, "L16", "2026-04-23T00:00:01Z")  -- too late
  on(t, "TG")
  t:lab { patient_id = "TG", code = "2571-8", value = 120, unit = "mg/dL",
    at = "2026-04-01" }                                 -- any lipid counts
  t:tick "2026-04-30T00:00:00Z"
  t:expect_no_alert { rule = "baricitinib.lipids_overdue", patient_id = "W12" }
  t:expect_no_alert { rule = "baricitinib.lipids_overdue", patient_id = "W16" }
  t:expect_alert { patient_id = "E11", rule = "baricitinib.lipids_overdue",
    detail_has = "Last lipid result: 2093-3 190 mg/dL on 2026-03-25" }
  t:expect_alert { patient_id = "L16", rule = "baricitinib.lipids_overdue" }
  t:expect_no_alert { rule = "baricitinib.lipids_overdue", patient_id = "TG" }
end

do
  local t = pv.test "lipids_overdue: stopped before week 12; refills"
  on(t, "S1", "2026-01-01", "2026-02-26")   -- washout ends 2026-03-26
  on(t, "R1", "2026-01-01", "2026-02-28")
  on(t, "R1", "2026-03-01")                 -- refill: same course
  t:tick "2026-04-24T00:00:00Z"
  t:expect_no_alert { rule = "baricitinib.lipids_overdue", patient_id = "S1" }
  t:expect_alert { patient_id = "R1", rule = "baricitinib.lipids_overdue",
    count = 1, detail_has = "On baricitinib 2 mg since 2026-03-01 (course "
      .. "started 2026-01-01)" }
end

do
  local t = pv.test "lipids_overdue and cbc_overdue: not exposed, nothing"
  t:exposure { patient_id = "N1", drug = "probenecid", dose = 500,
    start = "2025-06-01" }
  t:tick "2026-04-24T00:00:00Z"
  t:tick "2026-06-24T00:00:00Z"
  t:expect_no_alert {}
end

----------------------------------------------------------------------------
-- cbc_overdue
----------------------------------------------------------------------------

do
  local t = pv.test "cbc_overdue: 12 weeks after the start without a CBC"
  on(t, "A")
  cbc(t, "A", "2025-12-20")                 -- baseline before the start
  t:tick "2026-03-26T00:00:00Z"             -- exactly 84 days
  t:expect_no_alert { rule = "baricitinib.cbc_overdue" }
  t:tick "2026-03-27T00:00:00Z"
  t:expect_alert { rule = "baricitinib.cbc_overdue", patient_id = "A",
    signal = "monitoring", severity = "medium", count = 1,
    title = "CBC overdue on baricitinib: none for 12 weeks",
    detail_has = "no CBC result since 2026-01-01. Last CBC result: 718-7 "
      .. "13.5 g/dL on 2025-12-20.",
    action_has = "ANC < 1000 cells/mm3, ALC < 500 cells/mm3, Hb < 8 g/dL" }
  t:tick "2026-03-28T00:00:00Z"
  t:expect_alert { rule = "baricitinib.cbc_overdue", count = 1,
    occurrences = 1 }
end

do
  local t = pv.test "cbc_overdue: counted from the last CBC; a new gap"
  on(t, "B")
  cbc(t, "B", "2026-02-01")                 -- due after 2026-04-26
  t:tick "2026-04-26T00:00:00Z"
  t:expect_no_alert { rule = "baricitinib.cbc_overdue" }
  t:tick "2026-04-27T00:00:00Z"
  t:expect_alert { rule = "baricitinib.cbc_overdue",
    key = "cbc_overdue:2026-02-01", detail_has = "since 2026-02-01" }
  t:lab { patient_id = "B", code = "751-8", value = 2.5, unit = "10*9/L",
    at = "2026-05-01" }                     -- due after 2026-07-24
  t:tick "2026-07-24T00:00:00Z"
  t:expect_alert { rule = "baricitinib.cbc_overdue", count = 1 }
  t:tick "2026-07-25T00:00:00Z"
  t:expect_alert { rule = "baricitinib.cbc_overdue", count = 2 }
  t:expect_alert { rule = "baricitinib.cbc_overdue",
    key = "cbc_overdue:2026-05-01" }
end

do
  local t = pv.test "cbc_overdue: only while taking baricitinib"
  on(t, "S1", "2026-01-01", "2026-03-01")   -- in washout on 2026-03-27
  t:tick "2026-03-27T00:00:00Z"
  -- (baricitinib.screening_missing does raise its own alert here)
  t:expect_no_alert { rule = "baricitinib.cbc_overdue" }
end
