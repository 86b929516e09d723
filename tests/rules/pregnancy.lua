-- Specs for plugins/pregnancy.lua: baricitinib.pregnancy (domain §1.3;
-- issue 14).  The default label is US (the EU action is in
-- tests/rules-label/eu/pregnancy.lua).

local RULE = "baricitinib.pregnancy"

local function bari(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function hcg(t, pid, value, at, extra)
  local l = { patient_id = pid, code = "2106-3", value = value,
    at = at or "2026-03-01" }
  for k, v in pairs(extra or {}) do l[k] = v end
  return t:lab(l)
end

do
  local t = pv.test "pregnancy: positive hCG and an O code: high (US text)"
  bari(t, "H1"); hcg(t, "H1", "Positive")
  bari(t, "O1")
  t:event { patient_id = "O1", code = "Z34.00", onset = "2026-03-01",
    term = "Normal pregnancy supervision" }
  t:expect_alert { rule = RULE, patient_id = "H1", count = 1,
    signal = "pregnancy", severity = "high", key = "pregnancy",
    detail = "Positive hCG 2106-3 Positive (LOINC 2106-3) on 2026-03-01. "
      .. "On baricitinib 2 mg since 2026-01-01.",
    action_has = "The US label advises against" }
  t:expect_alert { rule = RULE, patient_id = "O1",
    detail_has = "ICD-10-CM Z34.00 'Normal pregnancy supervision'" }
end

do
  local t = pv.test "pregnancy: the window's boundary days"
  for _, p in ipairs { "BEFORE", "START", "WASHOUT", "AFTER" } do
    bari(t, p, "2026-01-10", "2026-01-31")
  end
  hcg(t, "BEFORE", "positive", "2026-01-09T23:59:59Z")
  hcg(t, "START", "positive", "2026-01-10")
  hcg(t, "WASHOUT", "positive", "2026-02-28T23:59:59Z")
  hcg(t, "AFTER", "positive", "2026-03-01")
  t:expect_no_alert { patient_id = "BEFORE" }
  t:expect_alert { patient_id = "START", rule = RULE }
  t:expect_alert { patient_id = "WASHOUT", rule = RULE }
  t:expect_no_alert { patient_id = "AFTER" }
end

do
  local t = pv.test "pregnancy: the other order, one alert"
  hcg(t, "L1", "POS", "2026-02-01")
  t:event { patient_id = "L1", code = "O09.91", onset = "2026-02-15" }
  t:expect_no_alert {}
  bari(t, "L1")
  t:expect_alert { rule = RULE, patient_id = "L1", count = 1,
    occurrences = 2, detail_has = "Positive hCG" }
end

do
  local t = pv.test "pregnancy: unexposed and the negative neighbours"
  hcg(t, "N1", "Positive")                           -- no baricitinib
  bari(t, "N2")
  hcg(t, "N2", "Negative")
  hcg(t, "N2", 3, nil, { unit = "m[IU]/mL", ref_high = 5, code = "21198-7" })
  t:event { patient_id = "N2", code = "Z32.02", onset = "2026-03-01" }
  t:event { patient_id = "N2", code = "N96", onset = "2026-03-01" }
  t:expect_no_alert {}
end

do
  local t = pv.test "pregnancy: numbers, and text where a number was expected"
  bari(t, "X1")
  hcg(t, "X1", 1200, nil, { unit = "m[IU]/mL", ref_high = 5, code = "21198-7" })
  bari(t, "X2")
  hcg(t, "X2", "hemolysed", nil, { unit = "m[IU]/mL", code = "21198-7" })
  hcg(t, "X2", "5", nil, { unit = "m[IU]/mL", ref_high = 5, code = "21198-7" })
  t:expect_alert { rule = RULE, patient_id = "X1",
    detail_has = "Positive hCG 21198-7 1200 m[IU]/mL" }
  t:expect_no_alert { patient_id = "X2" }
  t:expect_no_alert { signal = "engine" }
end

do
  local t = pv.test "pregnancy: a flagged quantitative result"
  bari(t, "F1")
  hcg(t, "F1", 40, nil, { unit = "m[IU]/mL", flag = "H", code = "2119-6" })
  t:expect_alert { rule = RULE, patient_id = "F1", count = 1 }
end
