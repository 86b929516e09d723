-- Specs for plugins/hbv.lua: baricitinib.hbv (domain §1.7; issue 14).

local RULE = "baricitinib.hbv"

local function bari(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function dna(t, pid, value, at, extra)
  local l = { patient_id = pid, code = "29615-2", value = value,
    unit = "[IU]/mL", at = at or "2026-03-01" }
  for k, v in pairs(extra or {}) do l[k] = v end
  return t:lab(l)
end

do
  local t = pv.test "hbv: HBV DNA detected and HBsAg positive: high"
  bari(t, "D1")
  dna(t, "D1", 250, nil, { ref_low = 10 })
  bari(t, "S1")
  t:lab { patient_id = "S1", code = "5196-1", value = "Reactive",
    at = "2026-03-01" }
  t:expect_alert { rule = RULE, patient_id = "D1", count = 1,
    severity = "high", key = "hbv_dna", title = "HBV DNA detected on baricitinib",
    detail = "HBV DNA 29615-2 250 [IU]/mL on 2026-03-01 (LOINC 29615-2), "
      .. "limit 10. On baricitinib 2 mg since 2026-01-01.",
    action_has = "consult with a hepatologist" }
  t:expect_alert { rule = RULE, patient_id = "S1", key = "hbsag",
    severity = "high", detail_has = "HBsAg 5196-1 Reactive on 2026-03-01" }
end

do
  local t = pv.test "hbv: the lower limit and the window's boundary days"
  bari(t, "AT"); dna(t, "AT", 10, nil, { ref_low = 10 })     -- at the limit
  bari(t, "BELOW"); dna(t, "BELOW", 9, nil, { ref_low = 10 })
  bari(t, "LT"); dna(t, "LT", "<10")
  for _, p in ipairs { "BEFORE", "WASHOUT", "AFTER" } do
    bari(t, p, "2026-01-10", "2026-01-31")
  end
  dna(t, "BEFORE", 100, "2026-01-09T23:59:59Z")
  dna(t, "WASHOUT", 100, "2026-02-28T23:59:59Z")
  dna(t, "AFTER", 100, "2026-03-01")
  t:expect_alert { patient_id = "AT", rule = RULE }
  t:expect_no_alert { patient_id = "BELOW" }
  t:expect_no_alert { patient_id = "LT" }
  t:expect_no_alert { patient_id = "BEFORE" }
  t:expect_alert { patient_id = "WASHOUT", rule = RULE }
  t:expect_no_alert { patient_id = "AFTER" }
end

do
  local t = pv.test "hbv: the other order"
  dna(t, "L1", "Detected", "2026-02-01")
  t:expect_no_alert {}
  bari(t, "L1")
  t:expect_alert { rule = RULE, patient_id = "L1", count = 1,
    key = "hbv_dna", detail_has = "Detected" }
end

do
  local t = pv.test "hbv: unexposed and the negative neighbours"
  dna(t, "N1", 5000)                                 -- no baricitinib
  bari(t, "N2")
  dna(t, "N2", "Not detected")
  t:lab { patient_id = "N2", code = "5196-1", value = "Non-reactive",
    at = "2026-03-01" }
  t:lab { patient_id = "N2", code = "16935-9", value = "Positive",
    at = "2026-03-01" }                              -- anti-HBs: immune
  t:lab { patient_id = "N2", code = "13952-7", value = "Reactive",
    at = "2026-03-01" }                              -- anti-HBc: not judged
  dna(t, "N2", 500, "2026-03-02", { status = "D" })  -- deleted
  t:expect_no_alert {}
end

do
  local t = pv.test "hbv: text where a number was expected"
  bari(t, "X1")
  dna(t, "X1", "pending")
  dna(t, "X1", "see comment")
  t:lab { patient_id = "X1", code = "5196-1", value = "1.9", unit = "S/CO",
    flag = "A", at = "2026-03-01" }
  t:expect_alert { rule = RULE, patient_id = "X1", count = 1, key = "hbsag" }
  t:expect_no_alert { signal = "engine" }
end

do
  local t = pv.test "hbv: repeats count on one alert"
  bari(t, "R1")
  dna(t, "R1", 50, "2026-03-01")
  dna(t, "R1", 500, "2026-04-01")
  t:expect_alert { rule = RULE, patient_id = "R1", count = 1, occurrences = 2 }
end
