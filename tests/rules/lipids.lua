-- Specs for plugins/lipids.lua: baricitinib.lipid_rise (domain §1.4, §2,
-- §6 cases 19-20).

local function on(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 4,
    start = start or "2026-01-01", ["end"] = stop }
end

local function chol(t, pid, value, unit, at)
  return t:lab { patient_id = pid, code = unit == "mmol/L" and "14647-2"
    or "2093-3", value = value, unit = unit or "mg/dL",
    at = at or "2026-03-25" }
end

local function tg(t, pid, value, unit, at)
  return t:lab { patient_id = pid, code = unit == "mmol/L" and "14927-8"
    or "2571-8", value = value, unit = unit or "mg/dL",
    at = at or "2026-03-25" }
end

do
  local t = pv.test "lipid_rise: case 19 total cholesterol"
  local cases = { { "A", 300, "mg/dL", nil }, { "B", 301, "mg/dL", 2 },
    { "C", 7.76, "mmol/L", 2 }, { "D", 501, "mg/dL", 4 },
    { "E", 401, "mg/dL", 3 }, { "F", 7.75, "mmol/L", nil },
    { "G", 10.35, "mmol/L", 3 } }
  for _, c in ipairs(cases) do
    on(t, c[1])
    chol(t, c[1], c[2], c[3])
    if c[4] then
      t:expect_alert { rule = "baricitinib.lipid_rise", patient_id = c[1],
        grade = c[4], count = 1 }
    else
      t:expect_no_alert { patient_id = c[1] }
    end
  end
  t:expect_alert { patient_id = "B", severity = "medium", signal = "lipids",
    title = "Hypercholesterolaemia grade 2 on baricitinib",
    detail_has = "Total cholesterol 301 mg/dL on 2026-03-25",
    action_has = "hyperlipidaemia (EU SmPC via LILLY-EU-LAB" }
  t:expect_alert { patient_id = "E", severity = "high" }
  t:expect_alert { patient_id = "D", severity = "critical" }
end

do
  local t = pv.test "lipid_rise: case 20 triglycerides"
  local cases = { { "A", 150, "mg/dL", nil }, { "B", 301, "mg/dL", 2 },
    { "C", 1001, "mg/dL", 4 }, { "D", 1.70, "mmol/L", nil },
    { "E", 3.43, "mmol/L", 2 }, { "F", 300, "mg/dL", nil },
    { "G", 5.71, "mmol/L", 3 } }
  for _, c in ipairs(cases) do
    on(t, c[1])
    tg(t, c[1], c[2], c[3])
    if c[4] then
      t:expect_alert { rule = "baricitinib.lipid_rise", patient_id = c[1],
        grade = c[4], count = 1, title_has = "Hypertriglyceridaemia" }
    else
      t:expect_no_alert { patient_id = c[1] }
    end
  end
end

do
  local t = pv.test "lipid_rise: LDL is not graded; cholesterol and TG are "
  on(t, "K1")
  t:lab { patient_id = "K1", code = "13457-7", value = 250, unit = "mg/dL",
    at = "2026-03-25" }
  t:expect_no_alert {}
  chol(t, "K1", 320)
  tg(t, "K1", 600)
  t:expect_alert { rule = "baricitinib.lipid_rise", key = "cholesterol",
    grade = 2 }
  t:expect_alert { rule = "baricitinib.lipid_rise", key = "triglycerides",
    grade = 3 }
end

do
  local t = pv.test "lipid_rise: window edges, arrival order"
  on(t, "W1", "2026-01-01", "2026-03-31"); chol(t, "W1", 350, nil, "2025-12-31")
  on(t, "W2", "2026-01-01", "2026-03-31"); chol(t, "W2", 350, nil, "2026-04-28")
  on(t, "W3", "2026-01-01", "2026-03-31"); chol(t, "W3", 350, nil, "2026-04-29")
  tg(t, "L1", 4.0, "mmol/L", "2026-03-25")
  t:expect_no_alert { patient_id = "L1" }
  on(t, "L1", "2026-01-01")
  t:expect_no_alert { patient_id = "W1" }
  t:expect_alert { patient_id = "W2", rule = "baricitinib.lipid_rise" }
  t:expect_no_alert { patient_id = "W3" }
  t:expect_alert { patient_id = "L1", rule = "baricitinib.lipid_rise",
    grade = 2, count = 1 }
end

do
  local t = pv.test "lipid_rise: not exposed, nothing"
  chol(t, "N1", 600)
  tg(t, "N1", 1500)
  t:expect_no_alert {}
end
