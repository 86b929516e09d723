-- Specs for plugins/combination.lua: baricitinib.combination (domain
-- §1.9, §1.10; issue 14).  Washout 28 days (the default config).

local RULE = "baricitinib.combination"

local function bari(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-02-01", ["end"] = stop }
end

local function drug(t, pid, name, start, stop, extra)
  local e = { patient_id = pid, drug = name, start = start or "2026-01-01",
    ["end"] = stop }
  for k, v in pairs(extra or {}) do e[k] = v end
  return t:exposure(e)
end

do
  local t = pv.test "combination: azathioprine then baricitinib fires"
  drug(t, "P1", "Azathioprine 50 MG Oral Tablet", "2026-01-01", nil,
    { dose = 100 })
  bari(t, "P1")
  t:expect_alert { rule = RULE, patient_id = "P1", count = 1,
    signal = "interaction", severity = "high",
    key = "combination:azathioprine",
    title = "Baricitinib combined with azathioprine (a potent "
      .. "immunosuppressant)",
    detail = "Azathioprine 50 MG Oral Tablet 100 mg, 2026-01-01 to ongoing, "
      .. "and baricitinib 2 mg, 2026-02-01 to ongoing (washout 28 days), "
      .. "overlap from 2026-02-01: ongoing.",
    action_has = "not recommended together with biologic DMARDs" }
  t:expect_no_alert { signal = "engine" }
end

do
  local t = pv.test "combination: the other order, brand and ATC code"
  bari(t, "P2")
  drug(t, "P2", "Humira 40 mg pen", "2026-03-01", "2026-03-10")
  bari(t, "P3")
  drug(t, "P3", "TNF blocker", "2026-03-01", "2026-03-01",
    { drug_code = "L04AB02", code_system = "ATC" })
  t:expect_alert { rule = RULE, patient_id = "P2", count = 1,
    key = "combination:adalimumab", title_has = "(a biologic DMARD)",
    detail_has = "overlap from 2026-03-01: 10 days." }
  t:expect_alert { rule = RULE, patient_id = "P3",
    key = "combination:infliximab",
    detail_has = "TNF blocker (ATC L04AB02), 2026-03-01 to 2026-03-01" }
  t:expect_alert { rule = RULE, patient_id = "P3", detail_has = ": 1 day." }
end

do
  local t = pv.test "combination: the washout boundary days"
  -- baricitinib last day 2026-01-31: covered to 2026-02-28T23:59:59Z.
  bari(t, "IN", "2026-01-01", "2026-01-31")
  drug(t, "IN", "tofacitinib", "2026-02-28")
  bari(t, "OUT", "2026-01-01", "2026-01-31")
  drug(t, "OUT", "tofacitinib", "2026-03-01")
  -- the other drug ended the day before baricitinib started: no overlap.
  drug(t, "BEFORE", "tacrolimus", "2026-01-01", "2026-01-31")
  bari(t, "BEFORE", "2026-02-01")
  drug(t, "LASTDAY", "tacrolimus", "2026-01-01", "2026-02-01T08:00:00Z")
  bari(t, "LASTDAY", "2026-02-01T20:00:00Z")
  t:expect_alert { rule = RULE, patient_id = "IN", title_has =
    "(another JAK inhibitor)", detail_has = "overlap from 2026-02-28: 1 day." }
  t:expect_no_alert { patient_id = "OUT" }
  t:expect_no_alert { patient_id = "BEFORE" }
  t:expect_alert { rule = RULE, patient_id = "LASTDAY",
    detail_has = "overlap from 2026-02-01: 1 day." }
end

do
  local t = pv.test "combination: rituximab counts 183 days after its last dose"
  -- last dose 2025-06-01: counted to 2025-12-01T23:59:59Z.
  drug(t, "R1", "Rituximab 1000 mg IV", "2025-05-18", "2025-06-01")
  bari(t, "R1", "2025-12-01")
  drug(t, "R2", "Rituximab 1000 mg IV", "2025-05-18", "2025-06-01")
  bari(t, "R2", "2025-12-02")
  t:expect_alert { rule = RULE, patient_id = "R1", count = 1,
    key = "combination:rituximab",
    detail_has = "overlap from 2025-12-01: 1 day. Rituximab counts for "
      .. "183 days after its last dose (B-cell depletion)." }
  t:expect_no_alert { patient_id = "R2" }
end

do
  local t = pv.test "combination: unexposed patient, negative neighbours"
  drug(t, "N1", "azathioprine", "2026-01-01")  -- no baricitinib at all
  drug(t, "N1", "tofacitinib", "2026-01-01")
  bari(t, "N2")
  drug(t, "N2", "Methotrexate 15 MG", "2026-01-01") -- a csDMARD: allowed
  drug(t, "N2", "Hydroxychloroquine 200 MG", "2026-01-01")
  drug(t, "N2", "Tacrolimus 0.1% ointment", "2026-01-01", nil,
    { route = "topical" })                            -- not systemic
  drug(t, "N2", "Ciclosporin eye drops", "2026-01-01", nil,
    { route = "ophthalmic" })
  t:expect_no_alert {}
end

do
  -- A text dose is refused by the store ("field 'dose' must be a
  -- number"), so the text arrives as the unit, with no number.
  local t = pv.test "combination: a dose in words, a code with spaces"
  bari(t, "X1")
  drug(t, "X1", "mycophenolate mofetil", "2026-01-15", nil,
    { dose_unit = "1 g twice daily", drug_code = " L04AA06 " })
  t:expect_alert { rule = RULE, patient_id = "X1",
    key = "combination:mycophenol" }
  t:expect_no_alert { signal = "engine" }
end
