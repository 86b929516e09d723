-- After an alert is closed, a new one may open for the same patient, rule
-- and key (DESIGN "Lua rule API": dedup only while one is open).
local t = pv.test "close then reopen"
t:patient { patient_id = "P1", birth_date = "1950-03-01", sex = "F" }
t:exposure { patient_id = "P1", drug = "baricitinib", dose = 2, start = "2026-01-01" }
t:lab { patient_id = "P1", code = "751-8", value = 0.9, unit = "10*9/L", at = "2026-02-01" }
local a = t:alerts()
t:expect(#a == 1, "one alert")
t:close(a[1].id, "recovered")
t:lab { patient_id = "P1", code = "751-8", value = 0.8, unit = "10*9/L", at = "2026-03-01" }
t:expect_alert { rule = "baricitinib.neutropenia", status = "open", count = 1 }
t:expect_alert { rule = "baricitinib.neutropenia", status = "closed", count = 1 }
t:expect(pv.time("2026-01-01") == 1767225600, "pv.time")
