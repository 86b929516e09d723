-- Specs for plugins/death.lua: baricitinib.death (domain §1.2, §1.8;
-- issue 14).  Washout 28 days.

local RULE = "baricitinib.death"

local function bari(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function event(t, pid, code, onset, outcome, term)
  return t:event { patient_id = pid, code = code,
    onset = onset or "2026-03-01", outcome = outcome, term = term }
end

do
  local t = pv.test "death: a fatal outcome, R99, a cardiovascular cause"
  bari(t, "F1"); event(t, "F1", "J18.9", nil, "fatal", "Pneumonia")
  bari(t, "R1"); event(t, "R1", "R99")
  bari(t, "C1"); event(t, "C1", "I21.4", nil, "died")
  t:expect_alert { rule = RULE, patient_id = "F1", count = 1,
    severity = "critical", signal = "mortality", key = "death",
    title = "Death of a patient on baricitinib",
    detail = "ICD-10-CM J18.9 'Pneumonia' on 2026-03-01; outcome: fatal. On "
      .. "baricitinib 2 mg since 2026-01-01.",
    action_has = "all-cause mortality" }
  t:expect_alert { rule = RULE, patient_id = "R1", severity = "critical" }
  t:expect_alert { rule = RULE, patient_id = "C1",
    title = "Cardiovascular death (MACE) on baricitinib",
    action_has = "MACE is 'cardiovascular death" }
end

do
  local t = pv.test "death: the window's boundary days"
  for _, p in ipairs { "BEFORE", "START", "WASHOUT", "AFTER" } do
    bari(t, p, "2026-01-10", "2026-01-31")
  end
  event(t, "BEFORE", "R99", "2026-01-09T23:59:59Z")
  event(t, "START", "R99", "2026-01-10")
  event(t, "WASHOUT", "R99", "2026-02-28T23:59:59Z")
  event(t, "AFTER", "R99", "2026-03-01")
  t:expect_no_alert { rule = RULE, patient_id = "BEFORE" }
  t:expect_alert { rule = RULE, patient_id = "START",
    detail_has = ". On baricitinib 2 mg since 2026-01-10." }
  t:expect_alert { rule = RULE, patient_id = "WASHOUT",
    detail_has = ". Baricitinib 2 mg 2026-01-10 to 2026-01-31, within the "
      .. "28-day washout." }
  t:expect_no_alert { rule = RULE, patient_id = "AFTER" }
end

do
  local t = pv.test "death: the other order"
  event(t, "L1", "I46.9", "2026-02-01", "fatal")
  t:expect_no_alert {}
  bari(t, "L1")
  t:expect_alert { rule = RULE, patient_id = "L1", count = 1,
    title = "Cardiovascular death (MACE) on baricitinib" }
end

do
  local t = pv.test "death: unexposed and the negative neighbours"
  event(t, "N1", "R99", nil, "fatal")                     -- no baricitinib
  bari(t, "N2")
  event(t, "N2", "R98", nil, "recovered")                 -- not R99
  event(t, "N2", "I47.1", nil, "recovering")              -- not I46
  event(t, "N2", "J18.9", nil, "not recovered")
  t:expect_no_alert { rule = RULE }
end

do
  local t = pv.test "death: other code systems and odd text"
  bari(t, "X1")
  t:event { patient_id = "X1", code = "10011906", code_system = "MEDDRA",
    onset = "2026-03-01", outcome = "EXPIRED", term = "Death" }
  bari(t, "X2")
  t:event { patient_id = "X2", code = "Z99.9", onset = "2026-03-01",
    outcome = "12" }
  t:expect_alert { rule = RULE, patient_id = "X1", count = 1 }
  t:expect_no_alert { rule = RULE, patient_id = "X2" }
  t:expect_no_alert { signal = "engine" }
end

do
  local t = pv.test "death: a second record adds an occurrence, no new alert"
  bari(t, "D1")
  event(t, "D1", "I21.4", "2026-03-01", "fatal")
  event(t, "D1", "R99", "2026-03-01")
  t:expect_alert { rule = RULE, patient_id = "D1", count = 1,
    occurrences = 2 }
end
