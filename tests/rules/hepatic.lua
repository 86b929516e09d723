-- Specs for plugins/hepatic.lua: baricitinib.transaminase_rise and
-- baricitinib.hys_law (domain §1.4, §2, §6 cases 15-17).

local function on(t, pid, start, stop)
  return t:exposure { patient_id = pid, drug = "baricitinib", dose = 2,
    start = start or "2026-01-01", ["end"] = stop }
end

local function alt(t, pid, value, at, ref_high, unit)
  return t:lab { patient_id = pid, code = "1742-6", value = value,
    unit = unit or "U/L", ref_high = ref_high or 40, at = at or "2026-02-01" }
end

local function ast(t, pid, value, at)
  return t:lab { patient_id = pid, code = "1920-8", value = value,
    unit = "U/L", ref_high = 40, at = at or "2026-02-01" }
end

local function bili(t, pid, value, at, unit, ref_high)
  return t:lab { patient_id = pid, code = unit and "14631-6" or "1975-2",
    value = value, unit = unit or "mg/dL", ref_high = ref_high or 1.2,
    at = at or "2026-02-01" }
end

----------------------------------------------------------------------------
-- transaminase_rise
----------------------------------------------------------------------------

do
  local t = pv.test "transaminase_rise: case 15, normal baseline, ULN 40"
  local cases = { { "A", 120, nil }, { "B", 121, 2 }, { "C", 200, 2 },
    { "D", 201, 3 }, { "E", 800, 3 }, { "F", 801, 4 } }
  for _, c in ipairs(cases) do
    alt(t, c[1], 30, "2025-12-15") -- normal baseline before the start
    on(t, c[1])
    alt(t, c[1], c[2])
    if c[3] then
      t:expect_alert { rule = "baricitinib.transaminase_rise",
        patient_id = c[1], grade = c[3], count = 1 }
    else
      t:expect_no_alert { patient_id = c[1] }
    end
  end
  t:expect_alert { patient_id = "B", severity = "medium", signal = "hepatic",
    title = "ALT rise grade 2 on baricitinib",
    detail_has = "ALT 121 U/L on 2026-02-01 (ULN 40 U/L, 3.0 x ULN)",
    action_has = "interrupt baricitinib if drug-induced liver injury is "
      .. "suspected, until DILI is excluded (EU SmPC" }
  t:expect_alert { patient_id = "B", detail_has = "Baseline: ALT 30 U/L on "
    .. "2025-12-15" }
  t:expect_alert { patient_id = "D", severity = "high" }
  t:expect_alert { patient_id = "F", severity = "critical" }
end

do
  local t = pv.test "transaminase_rise: case 16, abnormal baseline 80"
  local cases = { { "A", 110, nil }, { "B", 121, nil }, { "C", 241, 2 },
    { "D", 401, 3 }, { "E", 1601, 4 } }
  for _, c in ipairs(cases) do
    alt(t, c[1], 80, "2025-12-15")
    on(t, c[1])
    alt(t, c[1], c[2])
    if c[3] then
      t:expect_alert { rule = "baricitinib.transaminase_rise",
        patient_id = c[1], grade = c[3], count = 1,
        detail_has = "baseline 80 > ULN 40" }
    else
      t:expect_no_alert { patient_id = c[1] }
    end
  end
end

do
  local t = pv.test "transaminase_rise: no baseline is taken as normal"
  on(t, "N0")
  alt(t, "N0", 241)
  t:expect_alert { rule = "baricitinib.transaminase_rise", grade = 3,
    detail_has = "none before the course (taken as normal)" }
end

do
  local t = pv.test("transaminase_rise: the baseline precedes the course, "
    .. "not the refill")
  alt(t, "R1", 30, "2025-09-20")
  on(t, "R1", "2025-10-01", "2025-12-31")
  alt(t, "R1", 80, "2025-12-15")     -- on treatment: grade 1 only
  on(t, "R1", "2026-01-01")          -- refill
  alt(t, "R1", 241, "2026-02-01")    -- > 5 x ULN on a normal baseline
  t:expect_alert { rule = "baricitinib.transaminase_rise", grade = 3,
    detail_has = "Baseline: ALT 30 U/L on 2025-09-20" }
end

do
  local t = pv.test "transaminase_rise: AST, IU/L, one key for ALT and AST"
  on(t, "S1")
  ast(t, "S1", 201)
  on(t, "S2")
  alt(t, "S2", 130, nil, 40, "IU/L")
  alt(t, "S2", 210, "2026-02-05", 40, "IU/L")
  ast(t, "S2", 150, "2026-02-05")
  t:expect_alert { patient_id = "S1", rule = "baricitinib.transaminase_rise",
    grade = 3, title = "AST rise grade 3 on baricitinib" }
  t:expect_alert { patient_id = "S2", rule = "baricitinib.transaminase_rise",
    grade = 3, count = 1, occurrences = 3 }
end

do
  local t = pv.test("transaminase_rise: window edges, arrival order, "
    .. "not exposed")
  on(t, "W1", "2026-01-01", "2026-03-31"); alt(t, "W1", 300, "2025-12-31")
  on(t, "W2", "2026-01-01", "2026-03-31"); alt(t, "W2", 300, "2026-04-28")
  on(t, "W3", "2026-01-01", "2026-03-31"); alt(t, "W3", 300, "2026-04-29")
  alt(t, "L1", 30, "2025-12-01")
  alt(t, "L1", 201, "2026-02-01")
  t:expect_no_alert { patient_id = "L1" }
  on(t, "L1", "2026-01-01")
  alt(t, "N1", 900)
  t:expect_no_alert { patient_id = "W1" }
  t:expect_alert { patient_id = "W2", rule = "baricitinib.transaminase_rise" }
  t:expect_no_alert { patient_id = "W3" }
  t:expect_alert { patient_id = "L1", rule = "baricitinib.transaminase_rise",
    grade = 3, count = 1 }
  t:expect_no_alert { patient_id = "N1" }
end

----------------------------------------------------------------------------
-- hys_law
----------------------------------------------------------------------------

do
  local t = pv.test "hys_law: at 3 x and 2 x ULN, inclusive"
  on(t, "H1"); alt(t, "H1", 120, "2026-02-01"); bili(t, "H1", 2.4, "2026-02-03")
  on(t, "H2"); alt(t, "H2", 119, "2026-02-01"); bili(t, "H2", 2.4, "2026-02-03")
  on(t, "H3"); alt(t, "H3", 120, "2026-02-01"); bili(t, "H3", 2.39, "2026-02-03")
  t:expect_alert { patient_id = "H1", rule = "baricitinib.hys_law",
    severity = "critical", grade = 3, count = 1,
    title_has = "Hy's law",
    detail_has = "ALT 120 U/L on 2026-02-01 (ULN 40 U/L, 3.0 x ULN) and "
      .. "Total bilirubin 2.4 mg/dL on 2026-02-03 (ULN 1.2 mg/dL, 2.0 x ULN), "
      .. "2 days apart",
    action_has = "Interrupt baricitinib" }
  t:expect_no_alert { patient_id = "H2", rule = "baricitinib.hys_law" }
  t:expect_no_alert { patient_id = "H3", rule = "baricitinib.hys_law" }
end

do
  local t = pv.test "hys_law: either order, AST, umol/L, default ULN"
  on(t, "O1"); bili(t, "O1", 3.0, "2026-02-01"); ast(t, "O1", 150, "2026-02-20")
  on(t, "O2"); bili(t, "O2", 41, "2026-02-01", "µmol/L", 20.5)
  alt(t, "O2", 130, "2026-02-02")
  on(t, "O3")
  t:lab { patient_id = "O3", code = "1742-6", value = 125, unit = "U/L",
    at = "2026-02-01" }  -- no range: ULN 40
  t:lab { patient_id = "O3", code = "1975-2", value = 2.4, unit = "mg/dL",
    at = "2026-02-01" }  -- no range: ULN 1.2
  t:expect_alert { patient_id = "O1", rule = "baricitinib.hys_law",
    detail_has = "AST 150 U/L" }
  t:expect_alert { patient_id = "O2", rule = "baricitinib.hys_law",
    detail_has = "41 µmol/L" }
  t:expect_alert { patient_id = "O3", rule = "baricitinib.hys_law" }
end

do
  local t = pv.test "hys_law: within 30 days of each other"
  on(t, "D30"); alt(t, "D30", 200, "2026-02-01"); bili(t, "D30", 3, "2026-03-03")
  on(t, "D31"); alt(t, "D31", 200, "2026-02-01"); bili(t, "D31", 3, "2026-03-04")
  t:expect_alert { patient_id = "D30", rule = "baricitinib.hys_law",
    detail_has = "30 days apart" }
  t:expect_no_alert { patient_id = "D31", rule = "baricitinib.hys_law" }
end

do
  local t = pv.test "hys_law: both results while exposed"
  -- bilirubin raised before the start (e.g. Gilbert's): not drug-induced
  on(t, "B1", "2026-01-10")
  bili(t, "B1", 3, "2026-01-05")
  alt(t, "B1", 200, "2026-01-20")
  t:expect_no_alert { patient_id = "B1", rule = "baricitinib.hys_law" }
end

do
  local t = pv.test "hys_law: the exposure arrives last"
  alt(t, "L1", 200, "2026-02-01")
  bili(t, "L1", 3, "2026-02-10")
  t:expect_no_alert {}
  on(t, "L1", "2026-01-01")
  t:expect_alert { rule = "baricitinib.hys_law", count = 1 }
end

do
  local t = pv.test "hys_law: not exposed, nothing"
  alt(t, "N1", 500)
  bili(t, "N1", 5)
  t:expect_no_alert {}
end
