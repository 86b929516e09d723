-- Spec for plugins/screening_missing.lua under the COVID-19 label: the TB
-- part is exempt (domain §1.2 "except for COVID-19"; issue 14).
local t = pv.test "screening_missing (COVID-19): only hepatitis B is asked for"
t:exposure { patient_id = "C1", drug = "baricitinib", dose = 4,
  start = "2026-03-01", ["end"] = "2026-03-14" }
t:exposure { patient_id = "C2", drug = "baricitinib", dose = 4,
  start = "2026-03-01", ["end"] = "2026-03-14" }
t:lab { patient_id = "C2", code = "5196-1", value = "Non-reactive",
  at = "2026-03-01" }
t:tick "2026-03-20"
t:expect_alert { rule = "baricitinib.screening_missing", patient_id = "C1",
  title = "Baricitinib started without hepatitis B screening",
  detail_has = "TB screening is exempt under the COVID-19 label." }
t:expect_no_alert { rule = "baricitinib.screening_missing", patient_id = "C2" }
