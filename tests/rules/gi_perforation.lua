-- Specs for plugins/gi_perforation.lua: baricitinib.gi_perforation
-- (domain §1.8, §3.3; issue 14).  Washout 28 days.

local RULE = "baricitinib.gi_perforation"

local function bari(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function event(t, pid, code, onset)
  return t:event { patient_id = pid, code = code, onset = onset or "2026-03-01" }
end

do
  local t = pv.test "gi_perforation: perforation codes while exposed: critical"
  for _, p in ipairs { "A", "B", "C", "D" } do bari(t, p) end
  event(t, "A", "K63.1")
  event(t, "B", "K25.1")
  event(t, "C", "K57.20")
  event(t, "D", "K65.0")
  t:expect_alert { rule = RULE, patient_id = "A", count = 1,
    signal = "gi_perforation", severity = "critical",
    key = "gi_perforation:K63",
    title = "Gastrointestinal perforation on baricitinib",
    detail = "ICD-10-CM K63.1 with onset 2026-03-01. On baricitinib 2 mg "
      .. "since 2026-01-01.", action_has = "evaluate new abdominal signs" }
  t:expect_alert { patient_id = "B", severity = "critical" }
  t:expect_alert { patient_id = "C", severity = "critical", count = 1 }
  t:expect_alert { patient_id = "D", severity = "critical" }
end

do
  local t = pv.test "gi_perforation: the window's boundary days"
  for _, p in ipairs { "BEFORE", "START", "WASHOUT", "AFTER" } do
    bari(t, p, "2026-01-10", "2026-01-31")
  end
  event(t, "BEFORE", "K63.1", "2026-01-09T23:59:59Z")
  event(t, "START", "K63.1", "2026-01-10")
  event(t, "WASHOUT", "K63.1", "2026-02-28T23:59:59Z")
  event(t, "AFTER", "K63.1", "2026-03-01")
  t:expect_no_alert { patient_id = "BEFORE" }
  t:expect_alert { patient_id = "START", severity = "critical" }
  t:expect_alert { patient_id = "WASHOUT", severity = "critical" }
  t:expect_no_alert { patient_id = "AFTER" }
end

do
  local t = pv.test "gi_perforation: risk factors at initiation: medium"
  event(t, "DIV", "K57.30", "2025-06-01")
  bari(t, "DIV")
  t:exposure { patient_id = "PRED", drug = "Prednisone 20 MG", dose = 20,
    start = "2025-11-01" }
  t:exposure { patient_id = "PRED", drug = "Naproxen 500 mg", dose = 1000,
    start = "2025-10-01", ["end"] = "2025-12-31" }   -- stopped before
  bari(t, "PRED")
  t:expect_alert { rule = RULE, patient_id = "DIV", count = 1,
    severity = "medium", key = "gi_risk:2026-01-01",
    detail = "Baricitinib 2 mg course started 2026-01-01 with: "
      .. "diverticular disease (K57.30, 2025-06-01).",
    action_has = "chronic NSAIDs, corticosteroids or opioids" }
  t:expect_alert { rule = RULE, patient_id = "PRED", count = 1,
    detail = "Baricitinib 2 mg course started 2026-01-01 with: "
      .. "corticosteroid Prednisone 20 MG 20 mg since 2025-11-01." }
end

do
  local t = pv.test "gi_perforation: the other order"
  event(t, "L1", "K63.1", "2026-02-01")
  t:expect_no_alert {}
  bari(t, "L1")
  t:expect_alert { rule = RULE, patient_id = "L1", count = 1,
    severity = "critical" }
  bari(t, "L2")
  t:exposure { patient_id = "L2", drug = "Oxycodone 5 mg", dose = 10,
    start = "2025-12-01" }                         -- recorded late
  event(t, "L2", "K57.90", "2025-01-01")           -- recorded late too
  t:expect_alert { rule = RULE, patient_id = "L2", count = 1,
    key = "gi_risk:2026-01-01", occurrences = 2,
    detail_has = "opioid Oxycodone 5 mg 10 mg since 2025-12-01" }
end

do
  local t = pv.test "gi_perforation: unexposed, refills, negative neighbours"
  event(t, "N1", "K63.1")                          -- no baricitinib
  t:exposure { patient_id = "N1", drug = "prednisone", dose = 20,
    start = "2026-01-01" }
  bari(t, "N2", "2026-01-01", "2026-01-31")
  t:exposure { patient_id = "N2", drug = "ibuprofen", dose = 400,
    start = "2026-02-01" }
  bari(t, "N2", "2026-02-01")                      -- a refill: no initiation
  event(t, "N2", "K63.2")                          -- fistula, not perforation
  event(t, "N2", "K25.0")                          -- ulcer with bleeding
  event(t, "N2", "K56.0")
  t:exposure { patient_id = "N2", drug = "hydrocortisone cream", dose = 1,
    route = "topical", start = "2025-12-01" }      -- not systemic
  t:expect_no_alert {}
end

do
  local t = pv.test "gi_perforation: text terms and odd doses do not fail"
  bari(t, "X1")
  t:event { patient_id = "X1", code = "k631", onset = "2026-03-01",
    term = "perforated bowel, 'sigmoid'", serious = true }
  t:exposure { patient_id = "X1", drug = "Tramadol", dose_unit = "as needed",
    start = "2026-01-01" }
  t:expect_alert { rule = RULE, patient_id = "X1", severity = "critical" }
  t:expect_alert { rule = RULE, patient_id = "X1", key = "gi_risk:2026-01-01",
    detail_has = "opioid Tramadol since 2026-01-01" }
  t:expect_no_alert { signal = "engine" }
end
