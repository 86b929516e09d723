-- Specs for plugins/live_vaccine.lua: baricitinib.live_vaccine (domain
-- §1.7; issue 14).  Vaccines arrive as CVX-coded exposures.

local RULE = "baricitinib.live_vaccine"

local function bari(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function vaccine(t, pid, name, cvx, at)
  return t:exposure { patient_id = pid, drug = name, drug_code = cvx,
    code_system = "CVX", start = at or "2026-03-01", ["end"] = at or "2026-03-01" }
end

do
  local t = pv.test "live_vaccine: MMR on baricitinib: high"
  bari(t, "P1")
  vaccine(t, "P1", "MMR II vaccine", "03")
  t:expect_alert { rule = RULE, patient_id = "P1", count = 1,
    signal = "vaccine", severity = "high", key = "live_vaccine:03:2026-03-01",
    title = "Live vaccine (MMR) given on baricitinib",
    detail = "MMR II vaccine (CVX 03) given 2026-03-01. On baricitinib 2 mg "
      .. "since 2026-01-01.", action_has = "Avoid live vaccines" }
end

do
  local t = pv.test "live_vaccine: the window's boundary days"
  for _, p in ipairs { "BEFORE", "START", "WASHOUT", "AFTER" } do
    bari(t, p, "2026-01-10", "2026-01-31")
  end
  vaccine(t, "BEFORE", "Zostavax zoster vaccine live", "121", "2026-01-09")
  vaccine(t, "START", "Zostavax zoster vaccine live", "121", "2026-01-10")
  vaccine(t, "WASHOUT", "Zostavax zoster vaccine live", "121", "2026-02-28")
  vaccine(t, "AFTER", "Zostavax zoster vaccine live", "121", "2026-03-01")
  t:expect_no_alert { patient_id = "BEFORE" }
  t:expect_alert { patient_id = "START", rule = RULE,
    detail_has = ". On baricitinib 2 mg since 2026-01-10." }
  t:expect_alert { patient_id = "WASHOUT", rule = RULE,
    detail_has = ". Baricitinib 2 mg 2026-01-10 to 2026-01-31, within the "
      .. "28-day washout." }
  t:expect_no_alert { patient_id = "AFTER" }
end

do
  local t = pv.test "live_vaccine: the other order"
  vaccine(t, "L1", "Varivax varicella vaccine", "21", "2026-02-01")
  vaccine(t, "L1", "yellow fever vaccine", "37", "2025-12-01") -- before start
  t:expect_no_alert {}
  bari(t, "L1")
  t:expect_alert { rule = RULE, patient_id = "L1", count = 1,
    key = "live_vaccine:21:2026-02-01" }
end

do
  local t = pv.test "live_vaccine: unexposed and the non-live neighbours"
  vaccine(t, "N1", "MMR vaccine", "03")                 -- no baricitinib
  bari(t, "N2")
  vaccine(t, "N2", "Shingrix zoster vaccine", "187")    -- recombinant
  vaccine(t, "N2", "influenza vaccine, injectable", "141")
  vaccine(t, "N2", "IPV polio vaccine", "10")
  t:exposure { patient_id = "N2", drug = "MMR vaccine", drug_code = "03",
    code_system = "NDC", start = "2026-03-01" }         -- not CVX
  t:expect_no_alert {}
end

do
  local t = pv.test "live_vaccine: UNVERIFIED codes say so; no leading zero"
  bari(t, "U1")
  vaccine(t, "U1", "BCG vaccine", "19")
  vaccine(t, "U1", "MMR vaccine", "3", "2026-03-02")
  t:expect_alert { rule = RULE, patient_id = "U1", title_has = "(BCG)",
    detail_has = "(CVX 19, live status UNVERIFIED)" }
  t:expect_alert { rule = RULE, patient_id = "U1",
    key = "live_vaccine:03:2026-03-02" }
end

do
  local t = pv.test "live_vaccine: a text code where a number was expected"
  bari(t, "X1")
  vaccine(t, "X1", "measles vaccine", "MMR")
  vaccine(t, "X1", "rotavirus vaccine", " 116 ")
  t:expect_alert { rule = RULE, patient_id = "X1", count = 1,
    key = "live_vaccine:116:2026-03-01" }
  t:expect_no_alert { signal = "engine" }
end

do
  -- A vaccine given only as its CVX code (no name: the drug text is the
  -- code, docs/feeds.md) after baricitinib triggers the rule by the
  -- "live_vaccines" set of its on.exposure, not by a word.
  local t = pv.test "live_vaccine: a vaccine given only as a CVX code"
  bari(t, "C1")
  t:exposure { patient_id = "C1", drug_code = "03", code_system = "CVX",
    start = "2026-03-01", ["end"] = "2026-03-01" }
  t:expect_alert { rule = RULE, patient_id = "C1", count = 1,
    key = "live_vaccine:03:2026-03-01" }
end
